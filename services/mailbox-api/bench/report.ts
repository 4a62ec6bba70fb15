// The printed report: machine and API, one section per scenario with its CPU shares, profiles, summary.
import { int, ms, sec, speedText, summarize, summarizeThread, type MachineInfo, type MachineSpeed, type Phase, type ThreadProfile } from '@msr/bench'
import { EXPECTED, type Op, type OpTally, type Tally } from './driver.js'
import type { CpuShare } from './machine.js'
import type { DbWork } from './pg-stats.js'
import type { PickupRun } from './scenarios.js'

/**
 * The performance issue's target: NIP-98-authenticated requests per second on one instance against the
 * embedded PostgreSQL, on the 2-core machines (the first target, 1,500, was the original specification's).
 */
export const TARGET_PER_SECOND = 3000

const line = (text = ''): void => console.log(text)
const row = (label: string, text: string): void => line(`  ${label.padEnd(14)}${text}`)
const verdict = (ok: boolean): string => (ok ? 'MET' : 'MISSED')

/** Machine and run. */
export const printHeader = (machine: MachineInfo, speed: MachineSpeed, quick: boolean, pinned: { api: string | undefined; generator: string | undefined }): void => {
  line(`mls-secure-relay mailbox API benchmark (${quick ? 'quick' : 'full'} run)`)
  row('machine', `${machine.cpu}, ${machine.cores} cores, ${machine.memoryGiB.toFixed(1)} GiB, ${machine.os}, load avg ${machine.loadAverage.toFixed(2)}`)
  row('speed', `${speedText(speed)} (before the API started)`)
  row('node', machine.node)
  if (pinned.api || pinned.generator)
    row('pinned', `API and PostgreSQL on CPUs ${pinned.api ?? 'any'}, load generator on CPUs ${pinned.generator ?? 'any'} (taskset)`)
  else row('note', `the load generator, the API and its PostgreSQL share these ${machine.cores} cores: throughput is for all three together (see capacity)`)
}

/** Where the API runs, on what, and how it is driven. */
export const printApi = (
  api: { pid: number; url: string; pgPort: number; dataDir: string; startup: { verifier?: string; database?: string } },
  setup: { cli: string; fileSystem: string | undefined; rateLimit: number; poolSize: string; clients: number; recipients: number; senders: number; contentBytes: number; profDir: string | undefined },
): void => {
  row('api', `pid ${api.pid}, ${api.url}, ${setup.cli}; verifier ${api.startup.verifier ?? '? (its startup line is below the log level)'}`)
  row('postgres', `embedded, 127.0.0.1:${api.pgPort}, data ${api.dataDir}${setup.fileSystem ? ` (${setup.fileSystem})` : ''}, DB_POOL_SIZE ${setup.poolSize}`)
  const limits = setup.rateLimit === 0 ? 'off (0)' : `${int(setup.rateLimit)}/min per IP and per pubkey (counted in PostgreSQL on every request, never reached)`
  row('rate limits', limits)
  row('load', `${setup.clients} keep-alive clients, one request at a time each; ${setup.recipients} recipients, ${setup.senders} senders (one X-Forwarded-For address per key, TRUSTED_PROXIES=1); KeyPackages of ${int(setup.contentBytes)} bytes`)
  if (setup.profDir) row('cpu-prof', `the API runs with --cpu-prof; profiles in ${setup.profDir}`)
}

/** Untimed work: signing and the warm-up. */
export const printUntimed = (label: string, text: string): void => row(label, text)

/** CPU use over the phase's wall time, in cores, and per request. */
const cpuText = (cpu: CpuShare, requests: number): string => {
  const cores = (seconds: number) => `${(seconds / cpu.wallSeconds).toFixed(2)} cores`
  const perRequest = (seconds: number, kernel: number | undefined) =>
    `${ms((1000 * seconds) / requests)}/request${kernel === undefined || seconds === 0 ? '' : `, ${((100 * kernel) / seconds).toFixed(0)}% kernel`}`
  const share = (seconds: number) => `${((100 * seconds) / cpu.wallSeconds).toFixed(0)}%`
  const waited =
    cpu.apiMainThreadSeconds === undefined || cpu.apiMainThreadWaitingSeconds === undefined
      ? ''
      : `, on a core ${share(cpu.apiMainThreadSeconds)} of the phase and waiting for one ${share(cpu.apiMainThreadWaitingSeconds)}`
  const main = cpu.apiMainThreadSeconds === undefined ? '' : `; main thread ${ms((1000 * cpu.apiMainThreadSeconds) / requests)}${waited}`
  const api = cpu.apiSeconds === undefined ? 'API ?' : `API ${cores(cpu.apiSeconds)} (${perRequest(cpu.apiSeconds, cpu.apiKernelSeconds)}${main})`
  const pg = cpu.postgresSeconds === undefined ? 'PostgreSQL ?' : `PostgreSQL ${cores(cpu.postgresSeconds)} (${perRequest(cpu.postgresSeconds, cpu.postgresKernelSeconds)})`
  const other = cpu.otherSeconds === undefined ? '' : `, other processes ${cores(cpu.otherSeconds)}`
  return `${api}, ${pg}, generator ${cores(cpu.generatorSeconds)} (${perRequest(cpu.generatorSeconds, undefined)})${other}`
}

/** What the API and its PostgreSQL could answer on CPUs of their own, projected from their CPU time per request. */
export interface Capacity {
  /** The lower of the two bounds below. */
  rate: number
  /** `cores` divided by the API's and PostgreSQL's CPU seconds per request. */
  byCpu: number
  /** One core divided by the API main thread's seconds per request (every request goes through it). */
  byMainThread: number | undefined
  cores: number
}

/** The projection for one phase, or undefined when /proc could not tell the CPU times. */
export const capacityOf = (cpu: CpuShare, requests: number, cores: number): Capacity | undefined => {
  if (cpu.apiSeconds === undefined || cpu.postgresSeconds === undefined || requests === 0) return undefined
  const byCpu = (cores * requests) / (cpu.apiSeconds + cpu.postgresSeconds)
  const byMainThread = cpu.apiMainThreadSeconds ? requests / cpu.apiMainThreadSeconds : undefined
  return { rate: Math.min(byCpu, byMainThread ?? Infinity), byCpu, byMainThread, cores }
}

const capacityText = (c: Capacity, cpu: CpuShare, requests: number): string => {
  const together = ms((1000 * ((cpu.apiSeconds ?? 0) + (cpu.postgresSeconds ?? 0))) / requests)
  const main = c.byMainThread === undefined ? '' : `, API main thread → ${int(c.byMainThread)}/s`
  return `≈ ${int(c.rate)} requests/s for the API and PostgreSQL on ${c.cores} core${c.cores === 1 ? '' : 's'} of their own (projected from CPU time: ` +
    `${together} CPU/request together → ${int(c.byCpu)}/s${main})   [target ≥ ${int(TARGET_PER_SECOND)}: ${verdict(c.rate >= TARGET_PER_SECOND)}]`
}

const dbText = (db: DbWork, requests: number): string =>
  `${(db.transactions / requests).toFixed(2)} write transactions (statements) per request, WAL ${((db.walMiB * 1024) / requests).toFixed(1)} KiB per request`

const latencyText = (latencies: readonly number[]): string => {
  const s = summarize(latencies)
  return `p50 ${ms(s.p50)}  p90 ${ms(s.p90)}  p99 ${ms(s.p99)}  max ${ms(s.max)}`
}

/** Seconds from the phase's start to its last answer. */
export const secondsOf = (tally: Tally): number => (tally.lastAnswerAt - tally.startedAt) / 1000

/** Requests answered in a phase, over every operation. */
export const requestsOf = (tally: Tally): number => Object.values(tally.ops).reduce((sum, op) => sum + op.latencies.length, 0)

/** `201 × 19,998, 401 × 2` */
const statusText = (op: OpTally): string =>
  [...op.statuses].sort(([a], [b]) => a - b).map(([status, n]) => `${status === 0 ? 'no answer' : status} × ${int(n)}`).join(', ')

const printOp = (label: string, op: OpTally, expected: number, seconds: number): void => {
  if (op.latencies.length === 0) return
  row(label, `${int(op.latencies.length)} (${statusText(op)}; expected ${expected}), ${int(op.latencies.length / seconds)}/s, ${latencyText(op.latencies)}`)
  for (const [key, { count, example }] of op.failures) row('  failed', `${int(count)} × ${key}: e.g. "${example}"`)
}

/** Per-operation rows, throughput, CPU and database work of one phase. */
const printPhase = (tally: Tally, ops: readonly Op[], cpu: CpuShare, db: DbWork | undefined, apiCores: number): void => {
  const seconds = secondsOf(tally)
  const requests = requestsOf(tally)
  for (const op of ops) printOp(op === 'pickup' ? 'GET page' : op, tally.ops[op], EXPECTED[op], seconds)
  if (tally.resigned > 0) row('re-signed', `${int(tally.resigned)} pre-signed headers were older than 45 s when their turn came and were signed again`)
  const rate = requests / seconds
  row('throughput', `${int(rate)} authenticated requests/s over ${sec(seconds)}   [target ≥ ${int(TARGET_PER_SECOND)}: ${verdict(rate >= TARGET_PER_SECOND)}]`)
  row('cpu', cpuText(cpu, requests))
  const capacity = capacityOf(cpu, requests, apiCores)
  if (capacity) row('capacity', capacityText(capacity, cpu, requests))
  if (cpu.apiRssMiB !== undefined) row('memory', `API RSS ${cpu.apiRssMiB.toFixed(0)} MiB`)
  if (db) row('database', dbText(db, requests))
}

/** Scenario 1. */
export const printDeposits = (tally: Tally, clients: number, contentBytes: number, cpu: CpuShare, db: DbWork | undefined, apiCores: number): void => {
  line()
  line(`1. Deposits: ${int(tally.ops.deposit.latencies.length)} POST /api/v1/keypackages (${int(contentBytes)}-byte KeyPackage as base64, fresh NIP-98 header each), ${clients} clients`)
  printPhase(tally, ['deposit'], cpu, db, apiCores)
}

const readersText = (run: PickupRun, expected: number): string => {
  const r = run.readers
  const bad = r.badPages > 0 ? `, ${r.badPages} unreadable pages` : ''
  return `${int(r.picked)} items of ${int(expected)} deposited; duplicates ${int(r.duplicates)}${bad}`
}

/** Scenario 2. */
export const printPickups = (run: PickupRun, expected: number, recipients: number, limit: number, clients: number, cpu: CpuShare, db: DbWork | undefined, apiCores: number): void => {
  line()
  line(`2. Pickups: ${recipients} recipients read their mailboxes (limit ${limit}, following next_cursor) and ack every item, ${clients} clients`)
  row('picked', readersText(run, expected))
  printPhase(run.tally, ['pickup', 'ack'], cpu, db, apiCores)
}

/** Scenario 3. */
export const printMixed = (run: PickupRun, expected: number, lanes: { depositLanes: number; pickupLanes: number }, cpu: CpuShare, db: DbWork | undefined, apiCores: number): void => {
  line()
  line(`3. Mixed: ${int(expected)} deposits on ${lanes.depositLanes} clients while the recipients read and ack on ${lanes.pickupLanes} clients (polling every 200 ms when empty)`)
  row('picked', `${readersText(run, expected)}; ${int(run.readers.emptyPolls)} passes found an empty mailbox`)
  printPhase(run.tally, ['deposit', 'pickup', 'ack'], cpu, db, apiCores)
}

/** Per benchmark phase: how busy the API's main thread was, its hottest functions and modules (self time). */
export const printProfiles = (phases: Phase[], profiles: ThreadProfile[], perPhase = 15): void => {
  line()
  line(`API CPU profile by phase (--cpu-prof; self time, % of the main thread's non-idle samples)`)
  line(`  profiles: ${profiles.map(p => p.file).join(', ')}`)
  for (const phase of phases) {
    const wallMs = (phase.toUs - phase.fromUs) / 1000
    const main = profiles.map(p => summarizeThread(p, phase, perPhase)).find(t => t.thread === 0)
    if (!main) continue
    line()
    line(`  ${phase.name} (${sec(wallMs / 1000)}): main thread busy ${(100 * main.busyMs / wallMs).toFixed(0)}% of wall time`)
    line(`    by module:   ${main.modules.slice(0, 10).map(m => `${m.name} ${m.percent.toFixed(1)}%`).join(', ')}`)
    for (const f of main.top) line(`    ${f.percent.toFixed(1).padStart(5)}%  ${int(f.selfMs).padStart(6)} ms  ${f.name}  ${f.where}`)
  }
}

/** Warnings the API logged, the shutdown, and the one-line figures. */
export const printClosing = (
  api: { warningCount: number; warnings: Array<{ severity: string; message: string; atShutdown: boolean }> },
  stop: { code: number | null; signal: string | null; seconds: number },
  peakRssMiB: number | undefined,
  dataMiB: number,
  summary: string[],
): void => {
  line()
  row('API log', api.warningCount === 0 ? 'no warnings or errors' : `${api.warningCount} warnings/errors${api.warningCount > api.warnings.length ? ` (first ${api.warnings.length} below)` : ''}:`)
  const grouped = new Map<string, number>()
  for (const w of api.warnings) {
    const key = `${w.severity}\t${w.atShutdown ? 'at shutdown: ' : ''}${w.message}`
    grouped.set(key, (grouped.get(key) ?? 0) + 1)
  }
  for (const [key, n] of [...grouped].slice(0, 10)) {
    const [severity = '', message = ''] = key.split('\t')
    row(`  ${severity}`, `${n > 1 ? `${n} × ` : ''}${message}`)
  }
  row('API stop', `SIGTERM → exit ${stop.code ?? stop.signal} in ${sec(stop.seconds)} (PostgreSQL stopped by the API); peak RSS ${peakRssMiB === undefined ? '?' : `${peakRssMiB.toFixed(0)} MiB`}; data dir ${dataMiB.toFixed(0)} MiB, removed`)
  line()
  line('Summary')
  for (const s of summary) line(`  ${s}`)
}
