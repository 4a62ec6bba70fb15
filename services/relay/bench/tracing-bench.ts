// `--tracing`: what the relay's tracing costs on the ingest path. Scenario 1 runs on a fresh relay per mode
// (tracing off, sampled at 1 %, at 100 %), each started by `--import @msr/telemetry/register` and exporting
// over OTLP/HTTP to a sink inside the bench. Modes alternate (off, 1 %, 100 %, off, …) so that a change in the
// rest of the machine's load falls on every mode alike; the best round of each mode is compared.
import { join } from 'node:path'
import { nowUs, type Phase, type Stopped } from '@msr/bench'
import { closeSockets, openSockets } from './bench-socket.js'
import { startCpuShare, waitForQuiet, type CpuShare } from './machine.js'
import { startOtlpSink, type SinkCounts } from './otlp-sink.js'
import { publish, type PublishResult } from './publish.js'
import { startRelayProcess, type RelayLaunch } from './relay-process.js'

/** A tracing setting of the relay: no exporter, or OTLP with a trace-id ratio sampler. */
export interface TracingMode {
  label: string
  /** OTEL_TRACES_SAMPLER_ARG; undefined: tracing off (OTEL_TRACES_EXPORTER unset, the SDK is not loaded). */
  ratio: number | undefined
}

export const MODES: readonly TracingMode[] = [
  { label: 'off', ratio: undefined },
  { label: '1 %', ratio: 0.01 },
  { label: '100 %', ratio: 1 },
]

/** One ingest run on one fresh relay. */
export interface TracingRun {
  mode: string
  round: number
  ingest: PublishResult
  /** `OK true` (stored or duplicate) per second. */
  okPerSecond: number
  cpu: CpuShare
  /** What the sink got from this relay, its final flush at SIGTERM included. */
  sink: SinkCounts
  stop: Stopped
  warnings: Array<{ severity: string; message: string }>
  warningCount: number
  /** Seconds waited for other processes to calm down before the run (0.5 s at least: one sample). */
  waitedSeconds: number
  /** The `--cpu-prof` directory of this run, and the span of its ingest phase. */
  profDir: string | undefined
  phase: Phase
}

/** The figures a mode is judged by: its best round (highest OK/s), and its change against off's best round. */
export interface TracingSummary {
  mode: string
  best: TracingRun
  runs: TracingRun[]
  /** (OK/s − off's OK/s) / off's OK/s; 0 for off itself. */
  change: number
}

export interface TracingResults {
  protocol: string
  endpoint: string
  /** The OTEL_* variables of the sampled runs (endpoint and ratio vary). */
  otel: Record<string, string>
  runs: TracingRun[]
  summaries: TracingSummary[]
}

/** OTEL_* variables a caller may tune for the sampled runs; every other OTEL_* of the environment is dropped. */
const KEPT = /^OTEL_(EXPORTER_OTLP_PROTOCOL|BSP_[A-Z_]+)$/

/** The environment without the OTEL_* variables the bench sets itself (an inherited OTEL_TRACES_EXPORTER or endpoint would mislead). */
const withoutOtel = (env: Record<string, string | undefined>): Record<string, string | undefined> =>
  Object.fromEntries(Object.entries(env).filter(([key]) => !key.startsWith('OTEL_') || KEPT.test(key)))

/** The protocol the sink understands: OTEL_EXPORTER_OTLP_PROTOCOL, http/protobuf by default. */
const protocolOf = (env: Record<string, string | undefined>): string => {
  const protocol = env.OTEL_EXPORTER_OTLP_PROTOCOL?.trim() || 'http/protobuf'
  if (protocol !== 'http/protobuf' && protocol !== 'http/json') throw new Error(`--tracing: the sink speaks OTLP over HTTP (http/protobuf, http/json), not "${protocol}"`)
  return protocol
}

/** What runTracing needs of the bench. */
export interface TracingSetup {
  launch: Omit<RelayLaunch, 'otel' | 'cpuProfDir'>
  frames: readonly Buffer[]
  connections: number
  window: number
  rounds: number
  /** Parent of the per-run `--cpu-prof` directories; undefined: no profiling. */
  profDir: string | undefined
  /** Called once the sink listens, before the first run: what the sampled runs are given. */
  onSetup(setup: Pick<TracingResults, 'protocol' | 'endpoint' | 'otel'>): void
  /** Called after each run (the report prints a line, so a long run shows progress). */
  onRun(run: TracingRun): void
  /** Registers the running relay's stop for Ctrl-C; returns the function that unregisters it. */
  onRelay(stop: () => Promise<unknown>): () => void
}

const slug = (label: string): string => (label === 'off' ? 'off' : `${label.replace(/\D/g, '')}pct`)

/** Runs every mode `rounds` times, alternating, and compares each mode's best round to off's. */
export const runTracing = async (setup: TracingSetup): Promise<TracingResults> => {
  const protocol = protocolOf(setup.launch.env)
  const env = { ...withoutOtel(setup.launch.env), OTEL_EXPORTER_OTLP_PROTOCOL: protocol }
  const sink = await startOtlpSink()
  const otelFor = (ratio: number): Record<string, string> => ({
    OTEL_TRACES_EXPORTER: 'otlp',
    OTEL_EXPORTER_OTLP_ENDPOINT: sink.endpoint,
    OTEL_EXPORTER_OTLP_PROTOCOL: protocol,
    OTEL_TRACES_SAMPLER: 'parentbased_traceidratio',
    OTEL_TRACES_SAMPLER_ARG: String(ratio),
  })
  const { OTEL_EXPORTER_OTLP_ENDPOINT: _endpoint, OTEL_TRACES_SAMPLER_ARG: _ratio, ...otel } = otelFor(0)
  for (const [key, value] of Object.entries(env)) if (key.startsWith('OTEL_BSP_') && value !== undefined) otel[key] = value
  const runs: TracingRun[] = []
  try {
    setup.onSetup({ protocol, endpoint: sink.endpoint, otel })
    for (let round = 1; round <= setup.rounds; round++)
      for (const mode of MODES) {
        const profDir = setup.profDir && join(setup.profDir, `${slug(mode.label)}-${round}`)
        sink.reset()
        const relay = await startRelayProcess({ ...setup.launch, env, otel: mode.ratio === undefined ? undefined : otelFor(mode.ratio), cpuProfDir: profDir })
        const offInterrupt = setup.onRelay(relay.stop)
        let ingest: PublishResult
        let cpu: CpuShare
        let phase: Phase
        let stop: Stopped
        let waitedSeconds = 0
        try {
          const sockets = await openSockets(relay.url, setup.connections)
          // A build or test elsewhere on 2 cores moves the figures more than tracing does.
          waitedSeconds = await waitForQuiet([relay.pid])
          const endCpu = startCpuShare(relay.pid)
          const fromUs = nowUs()
          ingest = await publish(sockets, setup.frames, setup.window)
          phase = { name: `1. ingest, tracing ${mode.label}, round ${round}`, fromUs, toUs: nowUs() }
          cpu = endCpu()
          await closeSockets(sockets)
        } finally {
          // SIGTERM: the relay flushes its buffered spans before it exits, so the sink has them all afterwards.
          stop = await relay.stop()
          offInterrupt()
        }
        const run: TracingRun = {
          mode: mode.label, round, ingest, okPerSecond: (ingest.stored + ingest.duplicates) / ingest.seconds, cpu, sink: sink.counts(), stop,
          warnings: relay.warnings, warningCount: relay.warningCount, waitedSeconds, profDir, phase,
        }
        runs.push(run)
        setup.onRun(run)
      }
  } finally {
    await sink.stop()
  }
  const bestOf = (label: string): TracingRun =>
    runs.filter(r => r.mode === label).reduce((best, r) => (r.okPerSecond > best.okPerSecond ? r : best))
  const off = bestOf('off')
  const summaries = MODES.map(({ label }) => {
    const best = bestOf(label)
    return { mode: label, best, runs: runs.filter(r => r.mode === label), change: (best.okPerSecond - off.okPerSecond) / off.okPerSecond }
  })
  return { protocol, endpoint: sink.endpoint, otel, runs, summaries }
}
