#!/usr/bin/env node
// The relay benchmark (DESIGN.md §8): the real relay as a child process, real WebSocket clients, signed events.
// Order: sign every event ahead → start the relay → 1. ingest (after its warm-up) → store load → 2. REQ latency →
// 3. fan-out → stop.
// With --url the same scenarios run against a relay the bench does not start (NIP-42 AUTH answered if asked).
// With --tracing (tracing-bench.ts) or --replication (replication-bench.ts) only scenario 1 runs, on relays of its own.
import { createHash } from 'node:crypto'
import { writeFileSync } from 'node:fs'
import { availableParallelism } from 'node:os'
import { fileURLToPath } from 'node:url'
import {
  generateKeys, int, loadProfiles, loadSigner, machineInfo, measureMachineSpeed, ms, nowUs, otherProcessesText, processMemoryMiB, profileDir, resultsReplacer, runMain,
  stopOnInterrupt, type MachineSpeed, type Phase, type Signer,
} from '@msr/bench'
import { closeSockets, openSockets, useAuthenticator, type Authenticator } from './bench-socket.js'
import { signCorpus } from './corpus.js'
import { mulberry32, type CorpusJob, type Pools } from './event-factory.js'
import { measureFanout, type FanoutResult } from './fanout.js'
import { startCpuShare, type CpuShare } from './machine.js'
import { parseBenchOptions, USAGE, UsageError, type BenchOptions, type Scenario } from './options.js'
import { publish, type PublishResult } from './publish.js'
import { gcBetween, relayGcReader, type RelayGc } from './relay-gc.js'
import { fileSystemOf, startRelayProcess, type RelayProcess } from './relay-process.js'
import { idleConnections, type IdleResult } from './idle.js'
import { randomBytes } from 'node:crypto'
import { measureReqs, warmUp, type ReqResult, type StoreShape } from './req-latency.js'
import * as report from './report.js'
import { runTracing, type TracingResults } from './tracing-bench.js'
import { REPLICATION_WARMUP_EVENTS, replicationFigures, replicationSummary, runReplication } from './replication-bench.js'
import { findEmulator } from '@msr/hints/emulator'

const CLI = fileURLToPath(new URL('../src/cli.js', import.meta.url))
const DAY = 86_400

/** Every signed event of a run, by use. */
interface Corpus {
  /** Published before scenario 1, timed apart (a fresh relay's first events run cold code). */
  ingestWarmup: Buffer[]
  notes: Buffer[]
  extra: Buffer[]
  fanout: Buffer[]
  fanoutSeparate: Buffer[]
  fanoutSaturation: Buffer[]
  /** Untimed events published before each fan-out round, one slice per round. */
  fanoutWarmup: Buffer[][]
  /** `--replication`: untimed events each configuration's relays take first (a replica's first publishes are slow). */
  replicationWarmup: Buffer[]
  shape: StoreShape
  /** The signing keys (64 hex): with --url, one of them answers NIP-42 challenges. */
  secrets: string[]
}

/** The relay under test: the bench's child (pid, store on disk) or, with --url, any relay (neither known). */
interface Target {
  url: string
  pid: number | undefined
  storeMiB: (() => number) | undefined
  /** The event loop's collections so far (the bench's child, its /metrics on with a key made up for the run). */
  gc: (() => Promise<RelayGc | undefined>) | undefined
}

/**
 * The relay's collections over a phase, recorded under its name in `results.relayGc`: read before the phase
 * starts; the function returned reads again (undefined with --url, or when /metrics did not answer).
 */
const gcOver = async (relay: Target, name: string, results: Results): Promise<() => Promise<RelayGc | undefined>> => {
  const from = await relay.gc?.()
  return async () => {
    const to = await relay.gc?.()
    if (!from || !to) return undefined
    const gc = gcBetween(from, to)
    ;(results.relayGc ??= {})[name] = gc
    return gc
  }
}

/** The span of every timed step (to select the relay's profile samples). */
const phases: Phase[] = []

/** Runs a step of the benchmark and records its span. */
const phase = async <T>(name: string, step: () => Promise<T>): Promise<T> => {
  const fromUs = nowUs()
  try {
    return await step()
  } finally {
    phases.push({ name, fromUs, toUs: nowUs() })
  }
}

/** CPU shares of every timed phase, to say in the summary how busy the rest of the machine was. */
const shares: CpuShare[] = []
const cpuShare = (pid: number | undefined): (() => CpuShare) => {
  const end = startCpuShare(pid)
  return () => {
    const share = end()
    shares.push(share)
    return share
  }
}

interface Results {
  ingestWarmup?: PublishResult
  ingest?: PublishResult
  load?: PublishResult
  reqs?: ReqResult
  reqsBaseline?: ReqResult
  fanout?: FanoutResult
  fanoutSeparate?: FanoutResult
  fanoutSaturation?: FanoutResult
  idle?: IdleResult
  /** The machine's speed, read before the relay started. */
  machine?: MachineSpeed
  /** The relay event loop's collections by phase (the bench's child only). */
  relayGc?: Record<string, RelayGc>
}

/** Stored ids for the ids REQs: every `step`-th event of the store load (an `["EVENT",{"id":"…` frame). */
const ID_AT = '["EVENT",{"id":"'.length
const idSample = (frames: Buffer[], max: number): string[] => {
  const step = Math.max(1, Math.floor(frames.length / max))
  const ids: string[] = []
  for (let i = 0; i < frames.length && ids.length < max; i += step) ids.push((frames[i] as Buffer).toString('latin1', ID_AT, ID_AT + 64))
  return ids
}

const hexPool = (rng: () => number, n: number): string[] =>
  Array.from({ length: n }, () => Array.from({ length: 8 }, () => Math.floor(rng() * 2 ** 32).toString(16).padStart(8, '0')).join(''))

/**
 * With --url the keys are the same every run (derived from their index), so that the REQs of a `--no-load` run
 * find the events an earlier run left on that relay; a started relay is empty, so fresh keys do there.
 */
const fixedKeys = (signer: Signer, count: number): { secrets: string[]; pubkeys: string[] } => {
  const secrets = Array.from({ length: count }, (_, i) => createHash('sha256').update(`mls-secure-relay bench key ${i}`).digest('hex'))
  return { secrets, pubkeys: secrets.map(s => signer.publicKey(Buffer.from(s, 'hex'))) }
}

/** Plans and signs every event the run will publish, before the relay starts. */
const prepare = async (options: BenchOptions): Promise<Corpus & { seconds: number; signer: string }> => {
  const started = performance.now()
  const signer = loadSigner()
  const { secrets, pubkeys } = options.url ? fixedKeys(signer, options.keys) : generateKeys(signer, options.keys)
  const rng = mulberry32(42)
  const pools: Pools = { p: hexPool(rng, 64), h: hexPool(rng, 16), t: Array.from({ length: 20 }, (_, i) => `topic${i}`) }
  const now = Math.floor(Date.now() / 1000)
  const runTag = now.toString(36)
  const stored = { secrets, pools, createdFrom: now - 7 * DAY, createdTo: now - 120, runTag }
  const live = { ...stored, createdFrom: now, createdTo: now }
  // --no-load: the REQs query what the relay holds; nothing is published for them (ingest still runs if chosen).
  const wantStore = options.scenarios.has('ingest') || (options.scenarios.has('req') && options.load)
  const notes = wantStore ? options.events : 0
  // --tracing and --replication compare relays started alike, each with its own first events.
  const ingestWarmup = options.scenarios.has('ingest') && !options.tracing && !options.replication ? options.ingestWarmup : 0
  const extra = options.scenarios.has('req') && options.load ? Math.max(options.store - notes - ingestWarmup, Math.ceil(options.store / 2)) : 0
  const fanout = options.scenarios.has('fanout') ? options.fanoutEvents : 0
  const saturation = options.scenarios.has('fanout') && options.saturation ? options.saturationEvents : 0
  const rounds = 1 + (options.separate ? 1 : 0) + (saturation > 0 ? 1 : 0)
  const warm = Math.min(100, Math.ceil(fanout / 10))
  // The store's events (notes, store load, ingest warm-up) are dated in the past week; the fan-out's now.
  const specs: Array<[count: number, mix: 'notes' | 'mixed', dates: typeof stored]> = [
    [notes, 'notes', stored], [extra, 'mixed', stored], [fanout, 'notes', live], [options.separate ? fanout : 0, 'notes', live],
    [saturation, 'notes', live], [warm * rounds, 'notes', live], [options.replication ? REPLICATION_WARMUP_EVENTS : 0, 'notes', live],
    [ingestWarmup, 'notes', stored],
  ]
  let start = 0
  const jobs: CorpusJob[] = specs.map(([count, mix, dates]) => ({ ...dates, mix, start: (start += count) - count, count }))
  const [n, x, f, s, sat, w, rw, iw] = await signCorpus(jobs)
  return {
    ingestWarmup: iw ?? [],
    notes: n ?? [], extra: x ?? [], fanout: f ?? [], fanoutSeparate: s ?? [], fanoutSaturation: sat ?? [],
    fanoutWarmup: Array.from({ length: rounds }, (_, r) => (w ?? []).slice(r * warm, (r + 1) * warm)),
    replicationWarmup: rw ?? [],
    shape: { pubkeys, pools, ids: idSample([...(n ?? []), ...(x ?? [])], 20_000), createdFrom: stored.createdFrom, createdTo: stored.createdTo },
    secrets,
    seconds: (performance.now() - started) / 1000,
    signer: signer.name,
  }
}

/** Events the run's publishes before scenario 2 stored (the store the REQs query). */
const storedBy = (results: Results): number => [results.ingestWarmup, results.ingest, results.load].reduce((sum, r) => sum + (r?.stored ?? 0), 0)

/** Scenario 1 (its warm-up first), then the store load for scenario 2 over the same connections. */
const ingestAndLoad = async (relay: Target, options: BenchOptions, corpus: Corpus, results: Results): Promise<void> => {
  const sockets = await openSockets(relay.url, options.connections)
  if (corpus.ingestWarmup.length > 0) results.ingestWarmup = await phase('1. ingest warm-up', () => publish(sockets, corpus.ingestWarmup, options.window))
  let gc = await gcOver(relay, '1. ingest', results)
  const cpu = cpuShare(relay.pid)
  results.ingest = await phase('1. ingest', () => publish(sockets, corpus.notes, options.window))
  if (options.scenarios.has('ingest')) {
    const ingestCpu = cpu()
    report.printIngest(results.ingest, options.connections, options.window, ingestCpu, results.ingestWarmup, await gc())
  }
  if (corpus.extra.length > 0) {
    gc = await gcOver(relay, 'store load', results)
    results.load = await phase('store load', () => publish(sockets, corpus.extra, options.window))
    report.printLoad(results.load, storedBy(results), relay.storeMiB?.(), await gc())
  }
  await closeSockets(sockets)
}

/** Scenario 2: a single-connection pass (the relay's own latency), then the concurrent pass the target is judged on. */
const reqLatency = async (relay: Target, options: BenchOptions, corpus: Corpus, results: Results): Promise<void> => {
  const published = storedBy(results)
  const store = options.url === undefined ? published : `${int(published)} events stored by this run${options.load ? '' : ' (--no-load)'} plus what ${options.url} already held`
  const passes = [
    ...(options.reqBaseline && options.reqConnections > 1 ? [{ key: 'reqsBaseline' as const, connections: 1, reqs: options.baselineReqs }] : []),
    { key: 'reqs' as const, connections: options.reqConnections, reqs: options.reqs },
  ]
  for (const pass of passes) {
    const sockets = await openSockets(relay.url, pass.connections)
    await warmUp(sockets, corpus.shape, options.warmup)
    const name = `2. REQ latency, ${pass.connections} connection(s)`
    const gc = await gcOver(relay, name, results)
    const cpu = cpuShare(relay.pid)
    const r = await phase(name, () => measureReqs(sockets, corpus.shape, pass.reqs))
    results[pass.key] = r
    const reqCpu = cpu()
    report.printReqs(r, store, pass.connections, reqCpu, await gc())
    await closeSockets(sockets)
  }
}

/**
 * Scenario 3: the shared-connection layout and (optionally) one connection per subscriber, each from one publisher;
 * then (optionally) saturation: `--publishers` connections publishing as fast as the relay answers.
 */
const fanout = async (relay: Target, options: BenchOptions, corpus: Corpus, results: Results): Promise<void> => {
  const shared = `(${options.perConnection} subscriptions per connection)`
  const layouts = [
    { key: 'fanout' as const, frames: corpus.fanout, perConnection: options.perConnection, publishers: 1, window: options.fanoutWindow, title: shared },
    ...(options.separate
      ? [{ key: 'fanoutSeparate' as const, frames: corpus.fanoutSeparate, perConnection: 1, publishers: 1, window: options.fanoutWindow, title: '(one connection per subscriber)' }]
      : []),
    ...(corpus.fanoutSaturation.length > 0
      ? [{
          key: 'fanoutSaturation' as const, frames: corpus.fanoutSaturation, perConnection: options.perConnection, publishers: options.publishers,
          window: options.saturationWindow, title: `at saturation ${shared}`,
        }]
      : []),
  ]
  for (const [round, layout] of layouts.entries()) {
    const name = `3. fan-out ${layout.title}`
    const gc = await gcOver(relay, name, results)
    const cpu = cpuShare(relay.pid)
    // --url: only the bench's own notes, whatever else the relay carries.
    const settings = {
      subscribers: options.subscribers, perConnection: layout.perConnection, publishers: layout.publishers, window: layout.window,
      authors: options.url ? corpus.shape.pubkeys : undefined,
    }
    // The CPU reading ends with the last delivery, before the bench sorts millions of latencies.
    let share: CpuShare | undefined
    const r = await phase(name, () => measureFanout(relay.url, layout.frames, corpus.fanoutWarmup[round] ?? [], settings, () => (share = cpu())))
    results[layout.key] = r
    report.printFanout(r, layout.title, share ?? cpu(), await gc())
  }
}

/** The fan-out rounds that ran, with their label. */
const fanoutRounds = (results: Results): Array<[FanoutResult, 'shared connections' | 'one connection each' | 'saturation']> => {
  const rounds: Array<[FanoutResult | undefined, 'shared connections' | 'one connection each' | 'saturation']> = [
    [results.fanout, 'shared connections'], [results.fanoutSeparate, 'one connection each'], [results.fanoutSaturation, 'saturation'],
  ]
  return rounds.filter((round): round is [FanoutResult, (typeof round)[1]] => round[0] !== undefined)
}

const closedCount = (r: ReqResult | undefined): number => r?.samples.filter(s => s.closed !== undefined).length ?? 0

/**
 * NIP-01 prefixes of a relay refusing by policy. With --url such refusals are the relay's choice (e.g. kind 445
 * only after AUTH, a paid relay): reported, not faults. `invalid:`, `error:` and unknown ones stay faults: the
 * bench's events are valid. The relay the bench starts is configured to accept all of them, so there every
 * rejection is a fault.
 */
const POLICY_PREFIXES = new Set(['blocked', 'restricted', 'auth-required', 'pow'])

/** Rejections that count as faults: all of them, or with --url those not by policy. */
const faultyRejections = (r: PublishResult | undefined, remote: boolean): number => {
  if (!r) return 0
  if (!remote) return r.rejected
  return [...r.rejectReasons].reduce((sum, [prefix, { count }]) => sum + (POLICY_PREFIXES.has(prefix) ? 0 : count), 0)
}

/** Every publish of the run. */
const publishesOf = (results: Results): Array<PublishResult | undefined> =>
  [results.ingestWarmup, results.ingest, results.load, ...fanoutRounds(results).map(([r]) => r.publish)]

/** Rate-limited answers over the run: reported apart, never a fault. */
const rateLimitedText = (results: Results): string | undefined => {
  const events = publishesOf(results).reduce((sum, r) => sum + (r?.rateLimited ?? 0), 0)
  const reqs = (results.reqs?.rateLimited ?? 0) + (results.reqsBaseline?.rateLimited ?? 0)
  return events + reqs === 0 ? undefined : `${int(events)} EVENTs answered OK false "rate-limited:", ${int(reqs)} REQs CLOSED "rate-limited:" (the relay's policy; not faults)`
}

/** One line per headline figure, and how many correctness faults (rejects, missing or duplicate deliveries) occurred. */
const summarize = (results: Results, remote = false): { lines: string[]; faults: number } => {
  const lines: string[] = []
  let faults = 0
  const met = (ok: boolean) => (ok ? 'met' : 'MISSED')
  const { ingest, load, reqs, reqsBaseline: base } = results
  if (ingest) {
    const rate = (ingest.stored + ingest.duplicates) / ingest.seconds
    lines.push(`ingest      ${int(rate)} events/s (target ≥ ${int(report.TARGETS.ingestPerSecond)}: ${met(rate >= report.TARGETS.ingestPerSecond)})`)
    faults += faultyRejections(results.ingestWarmup, remote) + faultyRejections(ingest, remote) + faultyRejections(load, remote)
  }
  if (base) lines.push(`REQ 1 conn  p50 ${ms(base.all.p50)}, p99 ${ms(base.all.p99)}; limit-500 p99 ${ms(base.limit500.p99)} (service time, no queueing)`)
  if (reqs) {
    const ok = reqs.limit500.p99 < report.TARGETS.reqP99Ms
    lines.push(`${`REQ ${reqs.connections} conn`.padEnd(12)}p50 ${ms(reqs.all.p50)}, p99 ${ms(reqs.all.p99)}; limit-500 p99 ${ms(reqs.limit500.p99)} (target < ${report.TARGETS.reqP99Ms} ms: ${met(ok)})`)
  }
  const closed = closedCount(base) + closedCount(reqs)
  if (closed > 0) lines.push(`REQ CLOSED  ${closed} REQ(s) ended by the relay (see above; db_query_timeout under CPU contention)`)
  for (const [r, label] of fanoutRounds(results)) {
    const target = label === 'saturation' ? report.TARGETS.saturationPerSecond : report.TARGETS.fanoutPerSecond
    const ok = r.deliveriesPerSecond >= target && r.missing === 0
    const detail = label === 'saturation' ? `${r.publishers} publishers, p50 ${ms(r.publishToDeliver.p50)}, p99 ${ms(r.publishToDeliver.p99)}, ` : ''
    lines.push(`fan-out     ${int(r.deliveriesPerSecond)} deliveries/s, ${label}, ${detail}missing ${int(r.missing)} (target ≥ ${int(target)}: ${met(ok)})`)
    faults += r.missing + r.duplicates + r.outOfOrder + r.stray + faultyRejections(r.publish, remote)
  }
  if (results.idle) {
    const { idle } = results
    const perConnection = (idle.heapAfter - idle.heapBefore) / idle.connections
    lines.push(`idle        ${(perConnection / 1024).toFixed(2)} KB of relay heap per connection, ${int(idle.connections)} held (target ≤ 4 KB: ${met(perConnection <= 4096)})`)
  }
  const limited = rateLimitedText(results)
  if (limited) lines.push(`rate limits ${limited}`)
  const policy = publishesOf(results).reduce((sum, r) => sum + (r ? r.rejected - faultyRejections(r, remote) : 0), 0)
  if (policy > 0) lines.push(`policy      ${int(policy)} events refused by the relay's policy (${[...POLICY_PREFIXES].join(':, ')}:; see above): not faults with --url`)
  const others = otherProcessesText(shares)
  if (others) lines.push(`machine     ${others}`)
  if (faults > 0) lines.push(`FAULTS      ${faults} rejected events or missing/duplicate/out-of-order deliveries (exit code 1)`)
  return { lines, faults }
}

/** The rows of the final table (and the JSON's `figures`). */
const figuresOf = (results: Results, options: BenchOptions): report.Figure[] => {
  const figures: report.Figure[] = []
  const add = (figure: string, value: number, unit: string) => figures.push({ figure, value, unit })
  const remote = options.url !== undefined
  const { ingest, load, reqs, reqsBaseline: base } = results
  if (ingest && options.scenarios.has('ingest')) {
    add('ingest OK/s', (ingest.stored + ingest.duplicates) / ingest.seconds, 'events/s')
    add('ingest OK latency p50', ingest.ackLatency.p50, 'ms')
    add('ingest OK latency p99', ingest.ackLatency.p99, 'ms')
    if (results.ingestWarmup) add('ingest warm-up OK latency p99 (fresh relay)', results.ingestWarmup.ackLatency.p99, 'ms')
    if (remote || ingest.rateLimited) add('ingest rate-limited', ingest.rateLimited, 'events')
    if (ingest.rejected) add('ingest rejected', ingest.rejected, 'events')
  }
  if (load) {
    add('store load OK/s', (load.stored + load.duplicates) / load.seconds, 'events/s')
    if (load.rejected) add('store load rejected', load.rejected, 'events')
    if (load.rateLimited) add('store load rate-limited', load.rateLimited, 'events')
  }
  if (base) add('REQ p99 (limit 500, 1 connection)', base.limit500.p99, 'ms')
  if (reqs) {
    add('REQ p50', reqs.all.p50, 'ms')
    add('REQ p99', reqs.all.p99, 'ms')
    add('REQ p99 (limit 500)', reqs.limit500.p99, 'ms')
    add('REQ events per REQ (mean)', reqs.samples.length === 0 ? 0 : reqs.samples.reduce((sum, s) => sum + s.events, 0) / reqs.samples.length, 'events')
    if (remote || reqs.rateLimited) add('REQ rate-limited', reqs.rateLimited + (base?.rateLimited ?? 0), 'REQs')
  }
  const suffixes = { 'shared connections': '', 'one connection each': ' (one connection each)', saturation: ' (saturation)' }
  for (const [r, label] of fanoutRounds(results)) {
    const suffix = suffixes[label]
    add(`fan-out deliveries/s${suffix}`, r.deliveriesPerSecond, 'deliveries/s')
    add(`publish→deliver p50${suffix}`, r.publishToDeliver.p50, 'ms')
    add(`publish→deliver p99${suffix}`, r.publishToDeliver.p99, 'ms')
    add(`fan-out missing${suffix}`, r.missing, 'deliveries')
    if (label === 'saturation') {
      add(`fan-out publishers${suffix}`, r.publishers, 'connections')
      add(`fan-out duplicates${suffix}`, r.duplicates, 'deliveries')
      add(`fan-out out of order${suffix}`, r.outOfOrder, 'deliveries')
      add(`fan-out slow-reader disconnects${suffix}`, r.closedByRelay, 'connections')
    }
    if (remote || r.publish.rateLimited) add(`fan-out rate-limited${suffix}`, r.publish.rateLimited, 'events')
  }
  if (results.idle) {
    const { idle } = results
    add('idle connection, relay heap', (idle.heapAfter - idle.heapBefore) / idle.connections / 1024, 'KB/connection')
    add(`relay resident set, ${idle.connections} idle connections`, idle.rssAfter / 2 ** 20, 'MiB')
  }
  // Last: what the figures above were measured on (compare runs of different days only at like readings).
  if (results.machine) {
    add('machine: JavaScript work unit', results.machine.workMicros, 'µs')
    add('machine: loopback round trip p50', results.machine.roundTripMicros.p50, 'µs')
  }
  return figures
}

/** The kind-22242 answer to a NIP-42 challenge (tags relay = the --url given, challenge), signed with `secret`. */
const authenticator = (signer: Signer, secret: string, relayUrl: string): Authenticator => {
  const key = Buffer.from(secret, 'hex')
  const pubkey = signer.publicKey(key)
  return {
    onConnect: undefined,
    stats: { challenges: 0, accepted: 0, refused: 0 },
    answer: challenge => {
      const createdAt = Math.floor(Date.now() / 1000)
      const tags = JSON.stringify([['relay', relayUrl], ['challenge', challenge]])
      const id = createHash('sha256').update(`[0,"${pubkey}",${createdAt},22242,${tags},""]`).digest()
      const event = `{"id":"${id.toString('hex')}","pubkey":"${pubkey}","created_at":${createdAt},"kind":22242,"tags":${tags},"content":"","sig":"${signer.sign(id, key)}"}`
      return { frame: `["AUTH",${event}]`, id: id.toString('hex') }
    },
  }
}

/** Scenario 4: a fresh relay with its /metrics on (a key made up for the run), N idle connections, stopped after. */
const idleScenario = async (env: Record<string, string | undefined>, options: BenchOptions): Promise<IdleResult> => {
  const metricsKey = randomBytes(16).toString('hex')
  const relay = await startRelayProcess({ cli: CLI, env: { ...env, RELAY_METRICS__ENABLED: 'true', RELAY_METRICS__AUTH: metricsKey }, logLevel: options.relayLogLevel })
  const offInterrupt = stopOnInterrupt(relay.stop)
  try {
    const result = await idleConnections(relay.url, metricsKey, options.idle, options.quick ? 8 : 20)
    report.printIdle(result)
    return result
  } finally {
    await relay.stop()
    offInterrupt()
  }
}

/** --url: the scenarios against a relay the bench did not start; no CPU shares, profile, log or stop of the relay. */
const remoteMain = async (options: BenchOptions, url: string, corpus: Corpus, speed: MachineSpeed): Promise<number> => {
  const auth = authenticator(loadSigner(), corpus.secrets[0] as string, url)
  useAuthenticator(auth)
  report.printRemote(url, options.load)
  const target: Target = { url, pid: undefined, storeMiB: undefined, gc: undefined }
  const results: Results = { machine: speed }
  if (corpus.notes.length > 0 || corpus.extra.length > 0) await ingestAndLoad(target, options, corpus, results)
  if (options.scenarios.has('req')) await reqLatency(target, options, corpus, results)
  if (options.scenarios.has('fanout')) await fanout(target, options, corpus, results)
  if (options.scenarios.has('idle')) report.printIdleSkipped()
  report.printAuth(auth.stats, auth.onConnect)
  const { lines, faults } = summarize(results, true)
  report.printSummary(lines)
  const figures = figuresOf(results, options)
  report.printTable(figures, url)
  writeJson(options, results, figures, { url, started: false, auth: auth.stats })
  return faults > 0 ? 1 : 0
}

/** --json FILE: the options, every result (raw samples left out), the table's figures and what was measured. */
const writeJson = (options: BenchOptions, results: Results, figures: report.Figure[], relay: Record<string, unknown>): void => {
  if (!options.json) return
  const body = { options: { ...options, scenarios: [...options.scenarios] }, relay, results, figures }
  writeFileSync(options.json, JSON.stringify(body, resultsReplacer('samples'), 2))
}

const verifierText = (relay: Pick<RelayProcess, 'verifier'>, pinned: boolean): string => {
  if (relay.verifier) return `${relay.verifier} (from the relay's startup log line)`
  if (pinned) return 'bcrypto-native (RELAY_VERIFICATION__BACKEND=native: the relay does not start without it; its startup line is below log level warn)'
  return `${process.env.RELAY_VERIFICATION__BACKEND ?? 'auto'} (set by RELAY_VERIFICATION__BACKEND; run with --relay-log-level info to see the startup line)`
}

const main = async (): Promise<number> => {
  let options: BenchOptions
  try {
    options = parseBenchOptions(process.argv.slice(2), process.env)
  } catch (error) {
    if (!(error instanceof UsageError)) throw error
    process.stderr.write(`bench: ${error.message}\n(node services/relay/dist/bench/bench.js --help lists the options)\n`)
    return 2
  }
  if (options.help) {
    process.stdout.write(USAGE)
    return 0
  }
  const speed = await measureMachineSpeed()
  report.printHeader(machineInfo(), speed, options.quick)
  const emulator = options.replication ? findEmulator() : undefined
  if (emulator && 'missing' in emulator) return replicationSkipped(options, emulator.missing)
  const corpus = await prepare(options)
  const total = [corpus.ingestWarmup, corpus.notes, corpus.extra, corpus.fanout, corpus.fanoutSeparate, corpus.fanoutSaturation, ...corpus.fanoutWarmup, corpus.replicationWarmup].reduce((sum, f) => sum + f.length, 0)
  report.printPrepared(total, corpus.seconds, availableParallelism(), corpus.signer, options.keys)
  if (options.url) return remoteMain(options, options.url, corpus, speed)

  const profDir = profileDir(options.cpuProf, 'msr-bench-prof-')
  // Unless told otherwise, insist on the native verifier, so that a silent fall-back to WASM cannot skew the figures.
  const pinned = process.env.RELAY_VERIFICATION__BACKEND === undefined
  // The load generator does not authenticate (NIP-42), so kind 445 must not need it, and the
  // per-IP limits must not count every generator connection (they all come from 127.0.0.1).
  const env = {
    RELAY_AUTH__AUTH_REQUIRED_KINDS: '[]',
    RELAY_RATE_LIMITER__ENABLED: 'false',
    ...process.env,
    ...(pinned && { RELAY_VERIFICATION__BACKEND: 'native' }),
  }
  if (options.tracing) return tracingMain(options, corpus.notes, env, pinned, profDir, speed)
  if (options.replication) return replicationMain(options, corpus, env, pinned, speed)
  const results: Results = { machine: speed }
  // Scenario 4 on a relay of its own: the others leave garbage, a store and a grown heap behind that blur a
  // per-connection figure, and 10,000 connections just closed would slow the others.
  if (options.scenarios.has('idle')) results.idle = await idleScenario(env, options)
  if (!usesMainRelay(options)) return idleOnly(results, options)
  // /metrics on, with a key made up for the run: the event loop's collections per phase.
  const metricsKey = randomBytes(16).toString('hex')
  const relay = await startRelayProcess({
    cli: CLI, env: { ...env, RELAY_METRICS__ENABLED: 'true', RELAY_METRICS__AUTH: metricsKey }, logLevel: options.relayLogLevel, configFile: options.relayConfig,
    storeDir: options.storeDir, cpuProfDir: profDir,
  })
  const offInterrupt = stopOnInterrupt(relay.stop)
  report.printRelay(relay, verifierText(relay, pinned), options.relayLogLevel, profDir)
  report.printTracingState(env)

  let peakRss: number | undefined
  let stop: Awaited<ReturnType<RelayProcess['stop']>>
  try {
    const target: Target = { url: relay.url, pid: relay.pid, storeMiB: relay.storeMiB, gc: await relayGcReader(relay.url, metricsKey) }
    if (corpus.notes.length > 0) await ingestAndLoad(target, options, corpus, results)
    if (options.scenarios.has('req')) await reqLatency(target, options, corpus, results)
    if (options.scenarios.has('fanout')) await fanout(target, options, corpus, results)
    peakRss = processMemoryMiB(relay.pid, 'VmHWM')
  } finally {
    stop = await relay.stop()
    offInterrupt()
  }
  if (profDir) report.printProfiles(phases, loadProfiles(profDir))
  const { lines, faults } = summarize(results)
  report.printClosing(relay, stop, peakRss, lines)
  const figures = figuresOf(results, options)
  report.printTable(figures, `the bench's relay child, ${relay.url}`)
  writeJson(options, results, figures, { url: relay.url, started: true, verifier: relay.verifier, peakRssMiB: peakRss, store: fileSystemOf(relay.dataDir) })
  return faults > 0 ? 1 : 0
}

/** Whether a chosen scenario runs on the bench's main relay child (scenario 4 starts a relay of its own). */
const usesMainRelay = (options: BenchOptions): boolean => ['ingest', 'req', 'fanout'].some(s => options.scenarios.has(s as Scenario))

/** `--only idle`: scenario 4 ran on its own relay; no main relay is started, only the summary and the table. */
const idleOnly = (results: Results, options: BenchOptions): number => {
  report.printSummary(summarize(results).lines)
  const figures = figuresOf(results, options)
  report.printTable(figures, "scenario 4's own relay child")
  writeJson(options, results, figures, { started: true, only: 'idle' })
  return 0
}

/** 1 % sampling may cost at most this share of off's OK/s (the observability issue). */
const TRACING_TARGET = 0.05

/** `--tracing`: scenario 1 on a fresh relay per tracing mode and round; the comparison table; exit 1 on rejects or no spans at 100 %. */
const tracingMain = async (
  options: BenchOptions, frames: Buffer[], env: Record<string, string | undefined>, pinned: boolean, profDir: string | undefined, speed: MachineSpeed,
): Promise<number> => {
  report.printTracingVerifier(verifierText({ verifier: undefined }, pinned), options.relayLogLevel, profDir)
  const results: TracingResults = await runTracing({
    launch: { cli: CLI, env, logLevel: options.relayLogLevel, configFile: options.relayConfig, storeDir: options.storeDir },
    frames, connections: options.connections, window: options.window, rounds: options.tracingRounds, profDir,
    onSetup: setup => report.printTracingSetup(setup, options.tracingRounds, frames.length, options.connections, options.window),
    onRun: run => report.printTracingRun(run),
    onRelay: stop => stopOnInterrupt(stop),
  })
  report.printTracing(results.summaries, options.tracingRounds, TRACING_TARGET)
  if (profDir) for (const run of results.runs) if (run.profDir) report.printProfiles([run.phase], loadProfiles(run.profDir))
  const lines: string[] = []
  let faults = results.runs.reduce((sum, r) => sum + r.ingest.rejected, 0)
  for (const s of results.summaries) {
    if (s.mode === 'off') {
      lines.push(`${'off'.padEnd(12)}${int(s.best.okPerSecond)} OK/s, p99 ${ms(s.best.ingest.ackLatency.p99)} (best of ${s.runs.length})`)
      continue
    }
    const verdict = s.mode === '1 %' ? ` (target ≤ ${(100 * TRACING_TARGET).toFixed(0)} % slower: ${s.change >= -TRACING_TARGET ? 'met' : 'MISSED'})` : ''
    lines.push(`${s.mode.padEnd(12)}${int(s.best.okPerSecond)} OK/s, p99 ${ms(s.best.ingest.ackLatency.p99)}, ${(100 * s.change).toFixed(1)} % vs off${verdict}; ${s.best.sink.spans === undefined ? '?' : int(s.best.sink.spans)} spans exported`)
  }
  const full = results.summaries.find(s => s.mode === '100 %')
  if (full && full.runs.some(r => r.sink.requests === 0)) {
    lines.push('NO SPANS    a 100 % run exported nothing to the sink: tracing did not start (exit code 1)')
    faults++
  }
  const others = otherProcessesText(results.runs.map(r => r.cpu))
  if (others) lines.push(`machine     ${others}; load avg at the end ${machineInfo().loadAverage.toFixed(2)}`)
  const rejected = results.runs.reduce((sum, r) => sum + r.ingest.rejected, 0)
  if (rejected > 0) lines.push(`FAULTS      ${rejected} rejected events (exit code 1)`)
  report.printTracingClosing(results.runs, lines)
  if (options.json) writeFileSync(options.json, JSON.stringify({ options: { ...options, scenarios: [...options.scenarios] }, machine: speed, tracing: results }, resultsReplacer('samples'), 2))
  return faults > 0 ? 1 : 0
}

/** `--replication` where the machine has no Pub/Sub emulator: said, written to the JSON, exit 0 (as the tests skip). */
const replicationSkipped = (options: BenchOptions, why: string): number => {
  report.printReplicationSkipped(why)
  if (options.json) writeFileSync(options.json, JSON.stringify({ options: { ...options, scenarios: [...options.scenarios] }, skipped: why, figures: [] }, null, 2))
  return 0
}

/** `--replication`: scenario 1 on one relay without replication, one replica, three replicas; exit 1 on faults (rejects, events missing on a relay). */
const replicationMain = async (options: BenchOptions, corpus: Corpus, env: Record<string, string | undefined>, pinned: boolean, speed: MachineSpeed): Promise<number> => {
  report.printReplicationSetup(verifierText({ verifier: undefined }, pinned), options.relayLogLevel, corpus.notes.length, options.connections, options.window)
  const results = await runReplication({
    launch: { cli: CLI, env, logLevel: options.relayLogLevel, configFile: options.relayConfig, storeDir: options.storeDir },
    frames: corpus.notes, warmup: corpus.replicationWarmup, connections: options.connections, window: options.window, quietMaxMs: options.quick ? 5000 : 20_000,
    onRun: run => report.printReplicationRun(run),
    onInterruptible: stop => stopOnInterrupt(stop),
  })
  const { lines, faults } = replicationSummary(results.runs)
  const others = otherProcessesText(results.runs.map(r => r.cpu))
  if (others) lines.splice(results.runs.length, 0, `machine        ${others}; load avg at the end ${machineInfo().loadAverage.toFixed(2)}`)
  report.printReplicationClosing(results.runs, lines)
  const figures = replicationFigures(results.runs)
  report.printTable(figures, `the bench's relay children; replicas on the Pub/Sub emulator at ${results.emulator}`)
  if (options.json) writeFileSync(options.json, JSON.stringify({ options: { ...options, scenarios: [...options.scenarios] }, machine: speed, replication: results, figures }, resultsReplacer('samples'), 2))
  return faults > 0 ? 1 : 0
}

runMain(main)
