// The benchmark's settings: flags, then BENCH_* environment variables, then the preset (full or --quick).
import { isDirectory, parseBenchArgs, truthy, UsageError } from '@msr/bench'

/** The scenarios a run can include. */
export type Scenario = 'ingest' | 'req' | 'fanout' | 'idle'

/** Everything a run is configured by. */
export interface BenchOptions {
  quick: boolean
  /** Scenario 1: distinct kind-1 events, connections, unanswered EVENTs per connection (the store load too). */
  events: number
  /**
   * Scenario 1: kind-1 events published first over the same connections, timed apart from the figures (0: none):
   * a fresh relay's first few thousand events run cold code (JIT, its threads' first batches).
   */
  ingestWarmup: number
  connections: number
  window: number
  /** Unanswered EVENTs of the one publisher of the fan-out rounds before saturation. */
  fanoutWindow: number
  /** Scenario 2: events in the store at least, REQs timed, connections, untimed warm-up REQs. */
  store: number
  reqs: number
  /**
   * REQs timed in the single-connection pass before the concurrent one: its figure is a p99 per filter, so it
   * needs about 1,000 of each of the 7 filters (with 2,000 REQs, a filter's p99 is its third slowest of 286).
   */
  baselineReqs: number
  reqConnections: number
  warmup: number
  /** Scenario 3: subscribers, subscriptions per connection, events published; `separate` adds one connection per subscriber. */
  subscribers: number
  perConnection: number
  fanoutEvents: number
  separate: boolean
  /** Scenario 3 at saturation: `publishers` connections publish `saturationEvents` between them, each with its own window. */
  saturation: boolean
  publishers: number
  saturationEvents: number
  /** Unanswered EVENTs per publisher at saturation: with the events the relay holds, what a delivery waits behind. */
  saturationWindow: number
  /** Scenario 2 also runs on a single connection first: the relay's own latency, without queueing behind other REQs. */
  reqBaseline: boolean
  /** Signing keys (authors). */
  keys: number
  /** `--tracing`: only scenario 1, on fresh relays with tracing off, sampled at 1 % and at 100 %, `tracingRounds` times each. */
  tracing: boolean
  tracingRounds: number
  /**
   * `--replication`: only scenario 1, on one relay without replication, one replica and three replicas on the
   * Pub/Sub emulator (each its own process), connections spread round-robin over the replicas.
   */
  replication: boolean
  /** Scenario 4: idle connections held while the relay's memory is read. */
  idle: number
  scenarios: Set<Scenario>
  /** Directory for the relay's `--cpu-prof` output; undefined: no profiling. */
  cpuProf: string | undefined
  relayLogLevel: string
  relayConfig: string | undefined
  /** `--store-dir`: where the relay's temp data dir is made (the OS's temp dir when unset). */
  storeDir: string | undefined
  /** Also write the results as JSON to this file. */
  json: string | undefined
  /** `--url`: run against this relay instead of starting one (no child, no CPU shares of the relay, no profiling). */
  url: string | undefined
  /** `--no-load` (with `--url`): skip the store load before the REQs; the relay already holds data. */
  load: boolean
  help: boolean
}

export { UsageError }

type Numeric =
  | 'events' | 'ingestWarmup' | 'connections' | 'window' | 'store' | 'reqs' | 'baselineReqs' | 'reqConnections' | 'warmup' | 'subscribers' | 'perConnection' | 'fanoutEvents' | 'keys'
  | 'tracingRounds' | 'idle' | 'publishers' | 'saturationEvents' | 'saturationWindow' | 'fanoutWindow'

const FULL: Record<Numeric, number> = {
  events: 50_000, ingestWarmup: 5000, connections: 50, window: 10, fanoutWindow: 500, store: 100_000, reqs: 2000, baselineReqs: 7000, reqConnections: 4, warmup: 200,
  subscribers: 500, perConnection: 10, fanoutEvents: 2000, keys: 8, tracingRounds: 3, idle: 10_000, publishers: 8, saturationEvents: 20_000, saturationWindow: 50,
}

const QUICK: Record<Numeric, number> = {
  ...FULL, events: 5000, ingestWarmup: 500, connections: 20, store: 10_000, reqs: 400, baselineReqs: 400, warmup: 50, subscribers: 100, fanoutEvents: 500, tracingRounds: 2, idle: 2000,
  publishers: 4, saturationEvents: 2000,
}

/** Flag name (kebab-case) of each numeric setting; the env name is BENCH_ + the flag in upper snake case. */
const FLAGS: Record<Numeric, string> = {
  events: 'events', ingestWarmup: 'ingest-warmup', connections: 'connections', window: 'window', store: 'store', reqs: 'reqs', baselineReqs: 'baseline-reqs', reqConnections: 'req-connections',
  warmup: 'warmup', subscribers: 'subscribers', perConnection: 'subs-per-connection', fanoutEvents: 'fanout-events', keys: 'keys',
  tracingRounds: 'tracing-rounds', idle: 'idle', publishers: 'publishers', saturationEvents: 'saturation-events', saturationWindow: 'saturation-window', fanoutWindow: 'fanout-window',
}

/** The --help text. */
export const USAGE = `usage: npm run bench [-- options]        (or: node services/relay/dist/bench/bench.js [options])
       npm run bench:replication [-- options]   (the same with --replication)

Starts the compiled relay on a temp data dir and a free loopback port, drives it over WebSocket with
signed events, prints a report and a table of the figures, stops it with SIGTERM and removes the temp dir.
With --url it runs the same scenarios against a relay that is already running, any relay.

  --quick                   small run for CI (< 1 min)                              BENCH_QUICK=1
  --only LIST               scenarios to run: ingest,req,fanout,idle (default: all) BENCH_ONLY
  --events N                1. ingest: kind-1 events (default 50000; quick 5000)    BENCH_EVENTS
  --ingest-warmup N         1. ingest: kind-1 events published first, reported on   BENCH_INGEST_WARMUP
                            their own line, not in the figures (a fresh relay's
                            first events run cold code; default 5000; quick 500;
                            0: none)
  --connections C           1. ingest: publishing connections (default 50; quick 20) BENCH_CONNECTIONS
  --window W                1. ingest: unanswered EVENTs per connection (default 10) BENCH_WINDOW
  --store N                 2. REQ: events in the store at least (default 100000)   BENCH_STORE
  --reqs R                  2. REQ: timed REQs (default 2000)                       BENCH_REQS
  --baseline-reqs B         2. REQ: timed REQs of the single-connection pass        BENCH_BASELINE_REQS
                            (default 7000: about 1,000 per filter for its p99s;
                            quick 400)
  --req-connections Q       2. REQ: connections, one REQ at a time each (default 4) BENCH_REQ_CONNECTIONS
  --warmup N                2. REQ: untimed REQs first (default 200)                BENCH_WARMUP
  --no-req-baseline         2. REQ: skip the single-connection pass                 BENCH_REQ_BASELINE=0
  --subscribers S           3. fan-out: subscribers (default 500)                   BENCH_SUBSCRIBERS
  --subs-per-connection K   3. fan-out: subscriptions per connection (default 10)   BENCH_SUBS_PER_CONNECTION
  --fanout-events M         3. fan-out: events published (default 2000)            BENCH_FANOUT_EVENTS
  --fanout-window W         3. fan-out: unanswered EVENTs of the one publisher      BENCH_FANOUT_WINDOW
                            (default 500; at saturation: --saturation-window)
  --no-separate             3. fan-out: skip the one-connection-per-subscriber run  BENCH_SEPARATE=0
  --publishers P            3. fan-out at saturation: publishing connections, each  BENCH_PUBLISHERS
                            with its own window (default 8; quick 4)
  --saturation-events N     3. fan-out at saturation: events published by them all  BENCH_SATURATION_EVENTS
                            (default 20000: 10 M deliveries to 500; quick 2000)
  --saturation-window W     3. fan-out at saturation: unanswered EVENTs per         BENCH_SATURATION_WINDOW
                            publisher (default 50)
  --no-saturation           3. fan-out: skip the saturation run                     BENCH_SATURATION=0
  --idle N                  4. idle connections held; the relay's heap per          BENCH_IDLE
                            connection and resident set (default 10000; quick 2000;
                            not with --url: read from the relay's /metrics)
  --keys K                  signing keys / authors (default 8)                      BENCH_KEYS
  --tracing                 only 1. ingest, on a fresh relay per tracing mode:      BENCH_TRACING=1
                            off, sampled at 1 %, at 100 % (OTLP/HTTP to a sink in
                            the bench); a table of OK/s, EVENT→OK p50/p99, relay
                            CPU per 1k OK and the change vs off
  --tracing-rounds N        --tracing: rounds of off,1 %,100 % (default 3; quick 2) BENCH_TRACING_ROUNDS
  --replication             only 1. ingest, on one relay without replication, one  BENCH_REPLICATION=1
                            replica and three replicas on the Pub/Sub emulator
                            (skipped, saying why, without it); connections spread
                            round-robin over the replicas; OK/s, EVENT→OK p50/p99,
                            CPU of each relay and of the emulator, visibility on
                            the other replicas, every event on every replica
  --cpu-prof [DIR]          run the relay with --cpu-prof, summarize hot functions  BENCH_CPU_PROF=DIR|1
  --profile [DIR]           the same as --cpu-prof                                  BENCH_PROFILE=DIR|1
  --url ws://HOST:PORT      run against this relay instead of starting one          BENCH_URL
                            (not with --cpu-prof/--profile, --tracing,
                            --relay-config, --relay-log-level). Events are signed
                            by the bench (fresh content, fixed keys). 2. REQ first
                            PUBLISHES the store events (--store) to that relay,
                            unless --no-load. NIP-42: answers an AUTH challenge with
                            a kind-22242 event (relay tag = this URL). OK false
                            "rate-limited:" and CLOSED "rate-limited:" are counted
                            apart, not failed. No CPU shares of the relay.
  --no-load                 with --url: no store load; REQs query what the relay    BENCH_LOAD=0
                            holds (the bench's authors; 0 events is fine)
  --relay-log-level L       relay log level (default warn)                          BENCH_RELAY_LOG_LEVEL
  --relay-config FILE       relay config file (default: none; defaults + RELAY_* env)
  --store-dir DIR           make the relay's temp data dir in DIR (default: the OS's  BENCH_STORE_DIR
                            temp dir); the report names its file system. On Cloud
                            Run the disk is memory: --store-dir /dev/shm measures
                            that case (nothing to sync) on a Linux machine
  --json FILE               also write the results (and the table's figures) as JSON
  -h, --help                this text

RELAY_* variables in the environment are passed to the relay (e.g. RELAY_LIMITATION__MAX_LIMIT). The relay
always starts with --import @msr/telemetry/register (OTEL_SERVICE_NAME=msr-relay); OTEL_* variables reach
it too, except with --tracing, which sets them itself and keeps only OTEL_EXPORTER_OTLP_PROTOCOL
(http/protobuf by default, or http/json) and OTEL_BSP_* (batch span processor settings).
`

const scenariosOf = (raw: string | undefined): Set<Scenario> => {
  const all: Scenario[] = ['ingest', 'req', 'fanout', 'idle']
  if (!raw) return new Set(all)
  const picked = raw.split(',').map(s => s.trim()).filter(Boolean)
  for (const s of picked) if (!all.includes(s as Scenario)) throw new UsageError(`--only takes ${all.join(',')}, not "${s}"`)
  return new Set(picked as Scenario[])
}

/** Parses argv (without node and script) and the environment; throws on a bad value. */
export const parseBenchOptions = (argv: string[], env: Record<string, string | undefined>): BenchOptions => {
  const own = {
    'no-separate': { type: 'boolean' },
    'no-saturation': { type: 'boolean' },
    'no-req-baseline': { type: 'boolean' },
    only: { type: 'string' },
    'relay-log-level': { type: 'string' },
    'relay-config': { type: 'string' },
    'store-dir': { type: 'string' },
    tracing: { type: 'boolean' },
    replication: { type: 'boolean' },
    url: { type: 'string' },
    'no-load': { type: 'boolean' },
  } as const
  // --profile [DIR] is --cpu-prof [DIR] (BENCH_PROFILE is BENCH_CPU_PROF).
  const args = argv.flatMap(a => (a === '--profile' ? ['--cpu-prof'] : a.startsWith('--profile=') ? ['--cpu-prof', a.slice('--profile='.length)] : [a]))
  const benchEnv = env.BENCH_CPU_PROF === undefined && env.BENCH_PROFILE !== undefined ? { ...env, BENCH_CPU_PROF: env.BENCH_PROFILE } : env
  const { flags, numbers, quick, cpuProf, json, help } = parseBenchArgs<Numeric>(args, benchEnv, { flags: FLAGS, full: FULL, quick: QUICK, envPrefix: 'BENCH_', zero: ['ingestWarmup'] }, own)
  // npm_config_tracing: `npm run bench --tracing` without `--`, as for --quick.
  const tracing = Boolean(flags.tracing) || truthy(env.BENCH_TRACING) === true || env.npm_config_tracing === 'true'
  const replication = Boolean(flags.replication) || truthy(env.BENCH_REPLICATION) === true || env.npm_config_replication === 'true'
  if (replication) refuseWithReplication(tracing, cpuProf, (flags.only as string | undefined) ?? env.BENCH_ONLY)
  const url = urlOf((flags.url as string | undefined) ?? (env.BENCH_URL || undefined))
  const load = !flags['no-load'] && truthy(env.BENCH_LOAD) !== false
  const storeDir = storeDirOf((flags['store-dir'] as string | undefined) ?? (env.BENCH_STORE_DIR || undefined))
  if (url !== undefined) {
    const refused = [
      cpuProf !== undefined && '--cpu-prof/--profile (it profiles the relay child the bench starts)',
      tracing && '--tracing (it starts a relay per tracing mode)',
      replication && '--replication (it starts the relays and the emulator)',
      flags['relay-config'] !== undefined && '--relay-config',
      flags['relay-log-level'] !== undefined && '--relay-log-level',
      storeDir !== undefined && '--store-dir',
    ].filter(Boolean)
    if (refused.length > 0) throw new UsageError(`--url runs against a relay the bench does not start; it cannot be combined with ${refused.join(', ')}`)
  } else if (!load) throw new UsageError('--no-load needs --url: the relay the bench starts is empty, so the REQs need the store load')
  return {
    quick,
    ...numbers,
    separate: !flags['no-separate'] && truthy(env.BENCH_SEPARATE) !== false,
    saturation: !flags['no-saturation'] && truthy(env.BENCH_SATURATION) !== false,
    reqBaseline: !flags['no-req-baseline'] && truthy(env.BENCH_REQ_BASELINE) !== false,
    tracing,
    replication,
    scenarios: tracing || replication ? new Set<Scenario>(['ingest']) : scenariosOf((flags.only as string | undefined) ?? env.BENCH_ONLY),
    cpuProf,
    relayLogLevel: (flags['relay-log-level'] as string | undefined) ?? env.BENCH_RELAY_LOG_LEVEL ?? 'warn',
    relayConfig: flags['relay-config'] as string | undefined,
    storeDir,
    json,
    url,
    load,
    help,
  }
}

/** `--replication` runs scenario 1 only, on relays and an emulator of its own, unprofiled. */
const refuseWithReplication = (tracing: boolean, cpuProf: string | undefined, only: string | undefined): void => {
  const refused = [tracing && '--tracing', cpuProf !== undefined && '--cpu-prof/--profile', only && '--only'].filter(Boolean)
  if (refused.length > 0) throw new UsageError(`--replication runs scenario 1 (ingest) on relays of its own; it cannot be combined with ${refused.join(', ')}`)
}

/** The --store-dir value: an existing directory. */
const storeDirOf = (raw: string | undefined): string | undefined => {
  if (raw === undefined) return undefined
  if (!isDirectory(raw)) throw new UsageError(`--store-dir expects an existing directory, not "${raw}"`)
  return raw
}

/** The --url value: a ws:// or wss:// URL (http(s):// is taken as ws(s)://). */
const urlOf = (raw: string | undefined): string | undefined => {
  if (raw === undefined) return undefined
  let url: URL
  try {
    url = new URL(raw)
  } catch {
    throw new UsageError(`--url expects a ws:// or wss:// URL, not "${raw}"`)
  }
  if (url.protocol === 'http:' || url.protocol === 'https:') return raw.replace(/^http/, 'ws')
  if (url.protocol !== 'ws:' && url.protocol !== 'wss:') throw new UsageError(`--url expects a ws:// or wss:// URL, not "${raw}"`)
  return raw
}
