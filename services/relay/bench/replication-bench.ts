// `--replication` (issue 22): what replication costs the ingest path, and how fast an event reaches the other
// replicas. Scenario 1 (C connections × W unanswered EVENTs of distinct signed kind-1 events, every signature
// verified) runs on one relay without `[replication]`, on one replica with it, and on three replicas, each the
// compiled CLI as its own child on a temp store, the replicas on a fresh topic of the Pub/Sub emulator
// (`on_bus_outage = "refuse"`, the default ack_timeout); with three, connection k goes to replica k mod 3. One
// live subscription per relay records when each event arrived there: every accepted event must reach every
// relay (live, or else served by REQ), and with three replicas the visibility is the OK on the origin → the
// live EVENT on each other replica, both on the bench's clock.
import { int, ms, summarize, type Summary } from '@msr/bench'
import { startEmulator, type RunningEmulator } from '@msr/hints/emulator'
import { BenchSocket, closeSockets, messageOf, openSockets, verbOf } from './bench-socket.js'
import { IdTable } from './fanout.js'
import { startClusterCpu, waitForQuiet, type ClusterCpu } from './machine.js'
import { laneSize, publish, type PublishResult } from './publish.js'
import { startRelayProcess, type RelayLaunch, type RelayProcess } from './relay-process.js'
import type { Figure } from './report.js'

/** A configuration of the relays under test. */
export interface Configuration {
  label: string
  relays: number
  replication: boolean
}

export const CONFIGURATIONS: readonly Configuration[] = [
  { label: 'no replication', relays: 1, replication: false },
  { label: '1 replica', relays: 1, replication: true },
  { label: '3 replicas', relays: 3, replication: true },
]

/** What one relay's live subscription saw, and what REQ found of the rest. */
export interface RelayCoverage {
  /** Accepted events delivered live on its subscription (events answered OK false may be delivered too: not counted). */
  live: number
  /** Accepted events not delivered live but served by REQ `{ids}`. */
  servedByReq: number
  /** Accepted events it neither delivered nor served. */
  missing: number
  duplicates: number
  /** Its subscription's connection closed by the relay before the end (close code). */
  closedCode: number | undefined
}

/** One configuration's run. */
export interface ReplicationRun {
  label: string
  relays: number
  replication: boolean
  ingest: PublishResult
  /** `OK true` (stored or duplicate) per second, first EVENT → last OK. */
  okPerSecond: number
  /** `OK false "error: not yet replicated: …"`: the bus did not confirm within ack_timeout (reported, not a fault). */
  notYetReplicated: number
  /** From the first EVENT to the last delivery on every relay's subscription. */
  cpu: ClusterCpu
  /** Events accepted (OK true). */
  accepted: number
  coverage: RelayCoverage[]
  /** Accepted events on every relay (live or by REQ). */
  everywhere: number
  /** OK on the origin → live EVENT on each other replica (three replicas only). */
  visibility: Summary | undefined
  /** Connections per relay (round-robin). */
  connectionsPerRelay: number[]
  /** Until the warm-up events were on every relay; undefined: some were not within 30 s. */
  warmupSeconds: number | undefined
  /** Waited for the other processes to calm down before the timed ingest (0.5 s at least: one sample). */
  waitedSeconds: number
  startSeconds: number
  stops: Array<{ code: number | null; signal: string | null; seconds: number }>
  warnings: Array<{ severity: string; message: string }>
  warningCount: number
}

export interface ReplicationResults {
  emulator: string
  runs: ReplicationRun[]
}

/** What runReplication needs of the bench. */
export interface ReplicationSetup {
  launch: Omit<RelayLaunch, 'cpuProfDir'>
  frames: readonly Buffer[]
  /** Untimed events published first on every configuration's relays (a slice per relay), awaited on every relay. */
  warmup: readonly Buffer[]
  connections: number
  window: number
  /** Before the timed ingest, wait at most this long for the other processes to use ≤ 0.25 cores. */
  quietMaxMs: number
  /** Called after each configuration (the report prints it, so a long run shows progress). */
  onRun(run: ReplicationRun): void
  /** Registers a stop for Ctrl-C; returns the function that unregisters it. */
  onInterruptible(stop: () => Promise<unknown>): () => void
}

/**
 * Warm-up events per run (a slice on each relay): a replica's first publishes wait for the client's channel to
 * the emulator (over 3 s on a busy 2-core machine: the first window of every connection got "not yet replicated").
 */
export const REPLICATION_WARMUP_EVENTS = 30

const TOPIC_RETENTION_SECONDS = 3600
/** How long the warm-up events may take to reach every relay. */
const WARMUP_MS = 30_000
/** Give up waiting for live deliveries once none has arrived on any relay for this long. */
const IDLE_MS = 10_000
/** `["EVENT","v",{"id":"`: where a delivered event's id starts on the subscription `v`. */
const DELIVERED_ID_AT = '["EVENT","v",{"id":"'.length
const PUBLISHED_ID_AT = '["EVENT",{"id":"'.length
const NOT_YET_REPLICATED = 'error: not yet replicated'

/** The environment of replica `index` on `topic` (its subscription made by the bench, as infra would). */
const replicaEnv = (emulator: RunningEmulator, topic: string, index: number): Record<string, string> => ({
  PUBSUB_EMULATOR_HOST: emulator.host,
  // No metadata server here: the client library would first probe for one (seconds, and a MetadataLookupWarning).
  METADATA_SERVER_DETECTION: 'none',
  RELAY_REPLICATION__TOPIC: topic,
  RELAY_REPLICATION__PROJECT_ID: emulator.projectId,
  RELAY_REPLICATION__SUBSCRIPTION: `${topic}-r${index}`,
  RELAY_REPLICATION__REPLICA_ID: `r${index}`,
  RELAY_REPLICATION__ON_BUS_OUTAGE: 'refuse',
  // An empty replica is ready once its (empty) backlog has been quiet this long: 5 s by default, only slower.
  RELAY_REPLICATION__CATCH_UP_QUIET: '500ms',
})

/** The launch environment without any replication setting inherited from the shell. */
const withoutReplication = (env: Record<string, string | undefined>): Record<string, string | undefined> =>
  Object.fromEntries(Object.entries(env).filter(([key]) => !key.startsWith('RELAY_REPLICATION__') && key !== 'PUBSUB_EMULATOR_HOST'))

/** Starts the relays of a configuration (a fresh topic and subscriptions for replicas); none is left running on failure. */
const startRelays = async (config: Configuration, setup: ReplicationSetup, emulator: RunningEmulator, topic: string): Promise<RelayProcess[]> => {
  const env = withoutReplication(setup.launch.env)
  if (config.replication) {
    await emulator.createTopic(topic, { retentionSeconds: TOPIC_RETENTION_SECONDS })
    // Made before any replica publishes: the emulator may miss a publish racing a subscription's creation.
    for (let r = 0; r < config.relays; r++) await emulator.createSubscription(topic, `${topic}-r${r}`)
  }
  const started = await Promise.allSettled(
    Array.from({ length: config.relays }, (_, r) =>
      startRelayProcess({ ...setup.launch, env: config.replication ? { ...env, ...replicaEnv(emulator, topic, r) } : env, readyTimeoutMs: 60_000 }),
    ),
  )
  const relays = started.flatMap(s => (s.status === 'fulfilled' ? [s.value] : []))
  const failed = started.find(s => s.status === 'rejected')
  if (failed) {
    await Promise.all(relays.map(r => r.stop()))
    throw failed.reason
  }
  return relays
}

/** A live subscription `{kinds:[1], limit:0}` on one relay: when each published event arrived there (NaN: not yet). */
class LiveWatch {
  readonly seenAt: Float64Array
  received = 0
  duplicates = 0

  private constructor(readonly socket: BenchSocket, table: IdTable, events: number) {
    this.seenAt = new Float64Array(events).fill(NaN)
    socket.onText = (bytes, start) => {
      if (bytes[start + 2] !== 0x45 || bytes[start + 3] !== 0x56) return // not ["EVENT"
      const i = table.get(bytes, start + DELIVERED_ID_AT)
      if (i < 0) return
      if (!Number.isNaN(this.seenAt[i] as number)) return void this.duplicates++
      this.seenAt[i] = socket.readAt
      this.received++
    }
  }

  /** Subscribes on `url` and resolves after EOSE. */
  static async open(url: string, table: IdTable, events: number): Promise<LiveWatch> {
    const [socket] = await openSockets(url, 1)
    const watch = new LiveWatch(socket as BenchSocket, table, events)
    await request(socket as BenchSocket, ['REQ', 'v', { kinds: [1], limit: 0 }], () => undefined)
    return watch
  }
}

/** Sends a REQ and hands each EVENT frame to `onEvent` until its EOSE (the slow path: frames parsed). */
const request = (socket: BenchSocket, req: [string, string, Record<string, unknown>], onEvent: (event: { id: string }) => void): Promise<void> =>
  new Promise((resolve, reject) => {
    const text = socket.onText
    socket.onText = undefined
    const done = (error?: Error) => ((socket.onText = text), (socket.onFrame = () => undefined), error ? reject(error) : resolve())
    socket.onFrame = frame => {
      const verb = verbOf(frame)
      if (verb === 'EVENT') onEvent((JSON.parse(frame.toString('utf8')) as [string, string, { id: string }])[2])
      else if (verb === 'EOSE') done()
      else if (verb === 'CLOSED') done(new Error(`REQ ${req[1]} CLOSED: ${messageOf(frame)}`))
    }
    socket.send(JSON.stringify(req))
  })

/** Which of `ids` the relay at `url` serves (REQ `{ids}` in slices of 500, each closed after its EOSE). */
const servedIds = async (url: string, ids: readonly string[]): Promise<Set<string>> => {
  const served = new Set<string>()
  if (ids.length === 0) return served
  const [socket] = await openSockets(url, 1)
  try {
    for (let at = 0; at < ids.length; at += 500) {
      await request(socket as BenchSocket, ['REQ', `q${at}`, { ids: ids.slice(at, at + 500), limit: 500 }], e => void served.add(e.id))
      socket?.send(JSON.stringify(['CLOSE', `q${at}`]))
    }
  } finally {
    await socket?.close()
  }
  return served
}

/** Connection k to relay k mod n: opened per relay, then interleaved. */
const openRoundRobin = async (relays: readonly RelayProcess[], connections: number): Promise<{ sockets: BenchSocket[]; perRelay: number[] }> => {
  const perRelay = relays.map((_, r) => Math.ceil((connections - r) / relays.length))
  const opened = await Promise.all(relays.map((relay, r) => openSockets(relay.url, perRelay[r] as number)))
  const sockets = Array.from({ length: connections }, (_, k) => opened[k % relays.length]?.[Math.floor(k / relays.length)] as BenchSocket)
  return { sockets, perRelay }
}

/** Accepted events a watch has not seen (yet). */
const unseen = (watch: LiveWatch, accepted: readonly boolean[]): number => accepted.reduce((n, ok, i) => (ok && Number.isNaN(watch.seenAt[i] as number) ? n + 1 : n), 0)

/** Waits until every open watch has seen every accepted event, or none has received anything for IDLE_MS. */
const awaitDeliveries = async (watches: readonly LiveWatch[], accepted: readonly boolean[]): Promise<void> => {
  let last = performance.now()
  let received = -1
  while (watches.some(w => w.socket.open && unseen(w, accepted) > 0)) {
    const now = watches.reduce((sum, w) => sum + w.received, 0)
    if (now !== received) [received, last] = [now, performance.now()]
    else if (performance.now() - last > IDLE_MS) return
    await new Promise(resolve => setTimeout(resolve, 20))
  }
}

/** What each relay holds of the accepted events: live deliveries, then REQ for the rest; and the events every relay holds. */
const coverageOf = async (relays: readonly RelayProcess[], watches: readonly LiveWatch[], ids: readonly string[], accepted: readonly boolean[]): Promise<{ coverage: RelayCoverage[]; everywhere: number }> => {
  const onRelay = await Promise.all(
    watches.map(async (watch, r) => {
      const served = await servedIds((relays[r] as RelayProcess).url, ids.filter((_, i) => accepted[i] && Number.isNaN(watch.seenAt[i] as number)))
      const holds = (i: number) => !Number.isNaN(watch.seenAt[i] as number) || served.has(ids[i] as string)
      return { watch, served, holds }
    }),
  )
  const acceptedCount = accepted.filter(Boolean).length
  const coverage = onRelay.map(({ watch, served }) => {
    const live = acceptedCount - unseen(watch, accepted)
    return { live, servedByReq: served.size, missing: acceptedCount - live - served.size, duplicates: watch.duplicates, closedCode: watch.socket.closeCode }
  })
  const everywhere = accepted.filter((ok, i) => ok && onRelay.every(r => r.holds(i))).length
  return { coverage, everywhere }
}

/** OK on the origin → live EVENT on each other relay, for every accepted event (the origin of frame i: its lane's relay). */
const visibilityOf = (watches: readonly LiveWatch[], okAt: Float64Array, accepted: readonly boolean[], perLane: number): Summary => {
  const samples: number[] = []
  for (let i = 0; i < okAt.length; i++) {
    if (!accepted[i]) continue
    const origin = Math.floor(i / perLane) % watches.length
    watches.forEach((w, r) => {
      const at = w.seenAt[i] as number
      if (r !== origin && !Number.isNaN(at)) samples.push(at - (okAt[i] as number))
    })
  }
  return summarize(samples)
}

/**
 * Publishes the warm-up events (a slice per relay, untimed) and waits until every relay has them all, at most
 * WARMUP_MS; resolves with the seconds it took, or undefined when some never arrived.
 */
const warmUp = async (relays: readonly RelayProcess[], watches: readonly LiveWatch[], warmup: readonly Buffer[], first: number): Promise<number | undefined> => {
  const started = performance.now()
  const per = laneSize(warmup.length, relays.length)
  await Promise.all(
    relays.map(async (relay, r) => {
      const slice = warmup.slice(r * per, (r + 1) * per)
      if (slice.length === 0) return
      const sockets = await openSockets(relay.url, 1)
      await publish(sockets, slice, slice.length).finally(() => closeSockets(sockets))
    }),
  )
  const hasAll = (w: LiveWatch): boolean => w.seenAt.subarray(first, first + warmup.length).every(at => !Number.isNaN(at))
  while (!watches.every(hasAll)) {
    if (performance.now() - started > WARMUP_MS) return undefined
    await new Promise(resolve => setTimeout(resolve, 20))
  }
  return (performance.now() - started) / 1000
}

/** Ingest on running relays: subscriptions held, warm-up, the frames published round-robin, deliveries awaited and checked. */
const measure = async (relays: readonly RelayProcess[], setup: ReplicationSetup, emulator: RunningEmulator, table: IdTable, ids: readonly string[]) => {
  const watches = await Promise.all(relays.map(r => LiveWatch.open(r.url, table, setup.frames.length + setup.warmup.length)))
  const warmupSeconds = await warmUp(relays, watches, setup.warmup, setup.frames.length)
  const { sockets, perRelay } = await openRoundRobin(relays, setup.connections)
  const okAt = new Float64Array(setup.frames.length)
  const refusals = new Map<string, string>()
  const waitedSeconds = await waitForQuiet(relays.map(r => r.pid), emulator.processGroup, setup.quietMaxMs)
  const endCpu = startClusterCpu(relays.map(r => r.pid), emulator.processGroup)
  const ingest = await publish(sockets, setup.frames, setup.window, { okAt, refusals })
  const accepted = ids.map(id => !refusals.has(id))
  await awaitDeliveries(watches, accepted)
  const cpu = endCpu()
  await closeSockets(sockets)
  const { coverage, everywhere } = await coverageOf(relays, watches, ids, accepted)
  await closeSockets(watches.map(w => w.socket))
  return {
    ingest,
    okPerSecond: (ingest.stored + ingest.duplicates) / ingest.seconds,
    notYetReplicated: [...refusals.values()].filter(m => m.startsWith(NOT_YET_REPLICATED)).length,
    cpu,
    accepted: accepted.filter(Boolean).length,
    coverage,
    everywhere,
    visibility: relays.length > 1 ? visibilityOf(watches, okAt, accepted, laneSize(setup.frames.length, setup.connections)) : undefined,
    connectionsPerRelay: perRelay,
    warmupSeconds,
    waitedSeconds,
  }
}

/** For a failure message: each relay's pid, whether it is still running, and its first warnings. */
const relaysState = (relays: readonly RelayProcess[]): string =>
  relays
    .map((r, i) => {
      const alive = (() => {
        try {
          return process.kill(r.pid, 0)
        } catch {
          return false
        }
      })()
      return `\n  relay ${i} (pid ${r.pid}, ${r.url}): ${alive ? 'running' : 'EXITED'}; ${r.warningCount} warnings${r.warnings.slice(0, 5).map(w => `\n    ${w.severity} ${w.message}`).join('')}`
    })
    .join('')

/** One configuration on relays of its own (stopped afterwards, their temp dirs removed). */
const runConfiguration = async (config: Configuration, setup: ReplicationSetup, emulator: RunningEmulator, topic: string, table: IdTable, ids: readonly string[]): Promise<ReplicationRun> => {
  const startedAt = performance.now()
  const relays = await startRelays(config, setup, emulator, topic)
  const startSeconds = (performance.now() - startedAt) / 1000
  const stopAll = () => Promise.all(relays.map(r => r.stop()))
  const offInterrupt = setup.onInterruptible(stopAll)
  let measured: Awaited<ReturnType<typeof measure>>
  let stops: Awaited<ReturnType<typeof stopAll>>
  try {
    measured = await measure(relays, setup, emulator, table, ids)
  } catch (error) {
    throw new Error(`${config.label}: ${error instanceof Error ? error.message : String(error)}${relaysState(relays)}`)
  } finally {
    stops = await stopAll()
    offInterrupt()
  }
  const warnings = relays.flatMap((r, i) => r.warnings.map(w => ({ ...w, message: `[relay ${i}] ${w.message}` }))).slice(0, 20)
  return { label: config.label, relays: config.relays, replication: config.replication, ...measured, startSeconds, stops, warnings, warningCount: relays.reduce((sum, r) => sum + r.warningCount, 0) }
}

/** The published events by id (for the subscriptions), and their ids in order: the measured frames, then the warm-up. */
const indexFrames = (frames: readonly Buffer[]): { table: IdTable; ids: string[] } => {
  const table = new IdTable(frames.length)
  const ids = frames.map((frame, i) => {
    if (!table.add(frame, PUBLISHED_ID_AT, i)) throw new Error(`two events share the first 13 digits of their id (event ${i})`)
    return frame.toString('latin1', PUBLISHED_ID_AT, PUBLISHED_ID_AT + 64)
  })
  return { table, ids }
}

/** Starts the emulator, runs every configuration on the same frames, stops the emulator. */
export const runReplication = async (setup: ReplicationSetup): Promise<ReplicationResults> => {
  const { table, ids: all } = indexFrames([...setup.frames, ...setup.warmup])
  const ids = all.slice(0, setup.frames.length)
  const emulator = await startEmulator()
  const offInterrupt = setup.onInterruptible(() => emulator.stop())
  const runs: ReplicationRun[] = []
  try {
    for (const [i, config] of CONFIGURATIONS.entries()) {
      const run = await runConfiguration(config, setup, emulator, `bench-${i}`, table, ids)
      runs.push(run)
      setup.onRun(run)
    }
  } finally {
    await emulator.stop()
    offInterrupt()
  }
  return { emulator: emulator.host, runs }
}

/** Faults of a run: refusals other than "not yet replicated" (the bench's events are valid), accepted events missing on a relay, subscriptions the relay closed. */
const faultsOf = (run: ReplicationRun): { rejected: number; missing: number; closed: number } => ({
  rejected: run.ingest.rejected - run.notYetReplicated,
  missing: run.coverage.reduce((sum, c) => sum + c.missing, 0),
  closed: run.coverage.filter(c => c.closedCode !== undefined).length,
})

/** One summary line per configuration (against the first), a FAULTS line when any; `faults` > 0 means exit 1. */
export const replicationSummary = (runs: readonly ReplicationRun[]): { lines: string[]; faults: number } => {
  const base = runs[0]
  const lines = runs.map(r => {
    const cpu = relayCpuSeconds(r)
    const vs = base && r !== base ? ` (${(100 * (r.okPerSecond / base.okPerSecond - 1)).toFixed(1)} % vs ${base.label})` : ''
    const visibility = r.visibility ? `; visibility p50 ${ms(r.visibility.p50)}, p99 ${ms(r.visibility.p99)}` : ''
    return `${r.label.padEnd(15)}${int(r.okPerSecond)} OK/s${vs}, EVENT→OK p50 ${ms(r.ingest.ackLatency.p50)}, p99 ${ms(r.ingest.ackLatency.p99)}; ` +
      `relay CPU ${cpu === undefined ? '?' : `${((1e6 * cpu) / Math.max(1, r.accepted)).toFixed(0)} ms`} per 1k OK${visibility}; on every relay ${int(r.everywhere)} of ${int(r.accepted)}`
  })
  const { rejected, missing, closed } = runs.map(faultsOf).reduce((a, f) => ({ rejected: a.rejected + f.rejected, missing: a.missing + f.missing, closed: a.closed + f.closed }))
  if (rejected + missing + closed > 0)
    lines.push(`FAULTS         ${int(rejected)} events rejected (other than "not yet replicated"), ${int(missing)} (accepted event, relay) pairs missing, ${closed} subscriptions closed by a relay (exit code 1)`)
  return { lines, faults: rejected + missing + closed }
}

const sum = (values: ReadonlyArray<number | undefined>): number | undefined => (values.some(v => v === undefined) ? undefined : values.reduce<number>((a, v) => a + (v ?? 0), 0))

/** The relays' CPU seconds together over the run (undefined when one could not be read). */
export const relayCpuSeconds = (run: ReplicationRun): number | undefined => sum(run.cpu.relaySeconds)

/** The rows of the final table (and the JSON's `figures`): per configuration, prefixed by its label. */
export const replicationFigures = (runs: readonly ReplicationRun[]): Figure[] => {
  const figures: Figure[] = []
  for (const run of runs) {
    const add = (figure: string, value: number | undefined, unit: string) => figures.push({ figure: `${run.label}: ${figure}`, value: value ?? NaN, unit })
    const cores = (seconds: number | undefined) => (seconds === undefined ? undefined : seconds / run.cpu.wallSeconds)
    const relays = relayCpuSeconds(run)
    add('OK/s', run.okPerSecond, 'events/s')
    add('EVENT→OK p50', run.ingest.ackLatency.p50, 'ms')
    add('EVENT→OK p99', run.ingest.ackLatency.p99, 'ms')
    add(run.relays > 1 ? 'relay CPU, all replicas' : 'relay CPU', cores(relays), 'cores')
    if (run.relays > 1) run.cpu.relaySeconds.forEach((s, i) => add(`relay CPU, replica ${i}`, cores(s), 'cores'))
    add('relay CPU per 1k OK', relays === undefined ? undefined : (1e6 * relays) / Math.max(1, run.accepted), 'ms')
    add('emulator CPU', cores(run.cpu.emulatorSeconds), 'cores')
    add('generator CPU', cores(run.cpu.generatorSeconds), 'cores')
    add('other processes CPU', cores(run.cpu.otherSeconds), 'cores')
    if (run.replication) add('OK false "not yet replicated"', run.notYetReplicated, 'events')
    if (run.visibility) {
      add('visibility p50', run.visibility.p50, 'ms')
      add('visibility p99', run.visibility.p99, 'ms')
    }
    add(run.relays > 1 ? 'accepted events on every replica' : 'accepted events on the relay', run.everywhere, 'events')
    add('accepted events missing', run.coverage.reduce((n, c) => n + c.missing, 0), 'event × relay')
  }
  return figures
}
