// The mailbox benchmark's settings: flags, then MAILBOX_BENCH_* environment variables, then the preset (full or --quick).
import { count, isDirectory, parseBenchArgs, UsageError } from '@msr/bench'

/** Everything a run is configured by. */
export interface BenchOptions {
  quick: boolean
  /** 1. deposits: authenticated POST /keypackages, from `clients` keep-alive clients. */
  deposits: number
  clients: number
  /** Mailboxes the deposits go to, and the keys they come from. */
  recipients: number
  senders: number
  /** Random KeyPackage bytes per deposit (sent as base64). */
  contentBytes: number
  /** 2. pickups: items per page. */
  limit: number
  /** 3. mixed: deposits sent while the recipients read and ack. */
  mixedDeposits: number
  /** Untimed deposits, picked up and acked before the timed phases (JIT, connection pools, caches). */
  warmup: number
  /** MAILBOX_RATE_LIMIT_PER_IP and _PER_PUBKEY of the API: high enough never to refuse, but counted (0: off). */
  rateLimit: number
  /** Directory for the API's `--cpu-prof` output; undefined: no profiling. */
  cpuProf: string | undefined
  apiLogLevel: string
  /** The API's CLI (default: this build's dist/src/cli.js); another build's, to compare before/after. */
  cli: string | undefined
  /** `--store-dir`: where the API's temp dir (its PostgreSQL's data) is made; undefined: the OS's temp dir. */
  storeDir: string | undefined
  /** CPUs (taskset list, e.g. `2-3`) the API and its PostgreSQL are pinned to; undefined: not pinned. */
  apiCpus: string | undefined
  /** CPUs the load generator (this process and its threads) is pinned to; undefined: not pinned. */
  generatorCpus: string | undefined
  /** Also write the results as JSON to this file. */
  json: string | undefined
  help: boolean
}

type Numeric = 'deposits' | 'clients' | 'recipients' | 'senders' | 'contentBytes' | 'limit' | 'mixedDeposits' | 'warmup'

const FULL: Record<Numeric, number> = {
  deposits: 20_000, clients: 32, recipients: 50, senders: 200, contentBytes: 1024, limit: 50, mixedDeposits: 10_000, warmup: 1000,
}

const QUICK: Record<Numeric, number> = { ...FULL, deposits: 2000, mixedDeposits: 1500, warmup: 300 }

/** Flag name (kebab-case) of each numeric setting; the env name is MAILBOX_BENCH_ + the flag in upper snake case. */
const FLAGS: Record<Numeric, string> = {
  deposits: 'deposits', clients: 'clients', recipients: 'recipients', senders: 'senders', contentBytes: 'content-bytes',
  limit: 'limit', mixedDeposits: 'mixed-deposits', warmup: 'warmup',
}

/** A budget no run can exhaust (requests per minute; the counter column is a 32-bit integer). */
const NEVER_REACHED = 1_000_000_000

/** The --help text. */
export const USAGE = `usage: npm run bench -w services/mailbox-api [-- options]   (or: node services/mailbox-api/dist/bench/bench.js [options])

Starts the compiled mailbox API on a temp dir (it starts its embedded PostgreSQL on a free loopback port),
drives it with NIP-98-authenticated requests from keep-alive HTTP clients, prints a report, stops it with
SIGTERM and removes the temp dir.

  --quick                  small run for CI (< 30 s)                                      BENCH_QUICK=1
  --deposits N             1. deposits: POST /api/v1/keypackages (default 20000; quick 2000)  MAILBOX_BENCH_DEPOSITS
  --clients C              concurrent keep-alive clients, one request at a time (default 32)  MAILBOX_BENCH_CLIENTS
  --recipients R           mailboxes (default 50)                                         MAILBOX_BENCH_RECIPIENTS
  --senders S              depositing keys (default 200)                                  MAILBOX_BENCH_SENDERS
  --content-bytes B        KeyPackage size before base64 (default 1024)                   MAILBOX_BENCH_CONTENT_BYTES
  --limit L                2. pickups: items per page (default 50)                        MAILBOX_BENCH_LIMIT
  --mixed-deposits M       3. mixed: deposits during pickups (default 10000; quick 1500)  MAILBOX_BENCH_MIXED_DEPOSITS
  --warmup W               untimed deposits + pickups first (default 1000; quick 300)     MAILBOX_BENCH_WARMUP
  --rate-limit N|off       the API's per-IP and per-pubkey budgets per minute (default:   MAILBOX_BENCH_RATE_LIMIT
                           ${NEVER_REACHED}, i.e. counted in PostgreSQL but never refusing; off: 0)
  --cpu-prof [DIR]         run the API with --cpu-prof, summarize hot functions per phase BENCH_CPU_PROF=DIR|1
  --api-log-level L        the API's LOG_LEVEL (default info: it logs nothing per request) MAILBOX_BENCH_API_LOG_LEVEL
  --cli FILE               the API's CLI (default: this build's dist/src/cli.js); e.g. a copy of an earlier build
  --store-dir DIR          make the API's temp dir (its PostgreSQL's data) in DIR         BENCH_STORE_DIR
                           (default: the OS's temp dir); the report names its file
                           system. Shared with the relay bench: from the root,
                           npm run bench -- --store-dir /dev/shm puts both in memory
  --api-cpus LIST          pin the API and its PostgreSQL to these CPUs (taskset list,    MAILBOX_BENCH_API_CPUS
                           e.g. 1 or 2-3); with --generator-cpus on other CPUs, the
                           generator no longer takes CPU from what it measures
  --generator-cpus LIST    pin the load generator (this process, its threads) to these    MAILBOX_BENCH_GENERATOR_CPUS
  --json FILE              also write the results as JSON
  -h, --help               this text

The API inherits the environment (e.g. DB_POOL_SIZE) except DATABASE_URL: the bench measures the embedded PostgreSQL.
`

/** The --store-dir value: an existing directory. */
const storeDirOf = (raw: string | undefined): string | undefined => {
  if (raw === undefined || raw === '') return undefined
  if (!isDirectory(raw)) throw new UsageError(`--store-dir expects an existing directory, not "${raw}"`)
  return raw
}

/** A taskset CPU list: `0`, `2-3`, `0,2-3`. */
const CPU_LIST = /^\d+(-\d+)?(,\d+(-\d+)?)*$/

const cpuListOf = (flag: string, raw: string | undefined): string | undefined => {
  if (raw === undefined || raw === '') return undefined
  if (!CPU_LIST.test(raw)) throw new UsageError(`--${flag} must be a CPU list such as 1, 2-3 or 0,2-3`)
  return raw
}

/** How many CPUs a taskset list names (`0,2-3`: 3). */
export const cpuCount = (list: string): number => {
  const cpus = new Set<number>()
  for (const part of list.split(',')) {
    const [from = 0, to = from] = part.split('-').map(Number)
    for (let cpu = from; cpu <= to; cpu++) cpus.add(cpu)
  }
  return cpus.size
}

const rateLimitOf = (raw: string | undefined): number => {
  if (raw === undefined || raw === '') return NEVER_REACHED
  if (/^(off|0)$/i.test(raw)) return 0
  const n = count('rate-limit', raw)
  if (n > 2 ** 31 - 1) throw new UsageError('--rate-limit must fit the 32-bit counter column')
  return n
}

/** Parses argv (without node and script) and the environment; throws a UsageError on a bad value. */
export const parseBenchOptions = (argv: string[], env: Record<string, string | undefined>): BenchOptions => {
  const own = {
    'rate-limit': { type: 'string' }, 'api-log-level': { type: 'string' }, cli: { type: 'string' }, 'api-cpus': { type: 'string' }, 'generator-cpus': { type: 'string' },
    'store-dir': { type: 'string' },
  } as const
  const { flags, numbers, quick, cpuProf, json, help } = parseBenchArgs(argv, env, { flags: FLAGS, full: FULL, quick: QUICK, envPrefix: 'MAILBOX_BENCH_' }, own)
  if (numbers.limit > 100) throw new UsageError('--limit may be at most 100 (the API refuses larger pages)')
  if (numbers.clients < 2) throw new UsageError('--clients must be at least 2 (the mixed run splits them between deposits and pickups)')
  return {
    quick,
    ...numbers,
    rateLimit: rateLimitOf((flags['rate-limit'] as string | undefined) ?? env.MAILBOX_BENCH_RATE_LIMIT),
    cpuProf,
    apiLogLevel: (flags['api-log-level'] as string | undefined) ?? env.MAILBOX_BENCH_API_LOG_LEVEL ?? 'info',
    cli: flags.cli as string | undefined,
    storeDir: storeDirOf((flags['store-dir'] as string | undefined) ?? env.BENCH_STORE_DIR),
    apiCpus: cpuListOf('api-cpus', (flags['api-cpus'] as string | undefined) ?? env.MAILBOX_BENCH_API_CPUS),
    generatorCpus: cpuListOf('generator-cpus', (flags['generator-cpus'] as string | undefined) ?? env.MAILBOX_BENCH_GENERATOR_CPUS),
    json,
    help,
  }
}
