// The printed report: one section per scenario, then the targets of DESIGN.md §8.
import type { IdleResult } from './idle.js'
import { int, ms, sec, speedText, summarizeThread, type MachineInfo, type MachineSpeed, type Phase, type Summary, type ThreadProfile } from '@msr/bench'
import type { FanoutResult } from './fanout.js'
import type { CpuShare } from './machine.js'
import type { PublishResult } from './publish.js'
import { gcText, type RelayGc } from './relay-gc.js'
import type { ReqResult } from './req-latency.js'
import { fileSystemOf } from './relay-process.js'
import { relayCpuSeconds, type ReplicationRun } from './replication-bench.js'

/** DESIGN.md §8 targets on the 2-core development machines; fan-out at saturation: the performance issue's. */
export const TARGETS = { ingestPerSecond: 5000, reqP99Ms: 20, fanoutPerSecond: 100_000, saturationPerSecond: 1_000_000 }

const line = (text = ''): void => console.log(text)
const row = (label: string, text: string): void => line(`  ${label.padEnd(14)}${text}`)
const verdict = (ok: boolean): string => (ok ? 'MET' : 'MISSED')
/** The relay's collections over the phase, when the bench started the relay (its /metrics). */
const gcRow = (gc: RelayGc | undefined): void => {
  if (gc) row('relay GC', gcText(gc))
}

/** Machine and relay. */
export const printHeader = (machine: MachineInfo, speed: MachineSpeed, quick: boolean): void => {
  line(`mls-secure-relay benchmark (${quick ? 'quick' : 'full'} run)`)
  row('machine', `${machine.cpu}, ${machine.cores} cores, ${machine.memoryGiB.toFixed(1)} GiB, ${machine.os}, load avg ${machine.loadAverage.toFixed(2)}`)
  row('speed', `${speedText(speed)} (before the relay started)`)
  row('node', machine.node)
  row('note', `the load generator and the relay share these ${machine.cores} cores: every figure is for both together`)
}

/** Where the relay runs and with which verifier. */
export const printRelay = (relay: { pid: number; url: string; dataDir: string }, verifier: string, logLevel: string, profDir: string | undefined): void => {
  // RELAY_* reach the child (a --relay-config file may set it too, not shown here).
  const writeMap = process.env.RELAY_DATA__WRITE_MAP === 'true' ? ', written through the map (RELAY_DATA__WRITE_MAP)' : ''
  row('relay', `pid ${relay.pid}, ${relay.url}, data ${relay.dataDir} (${fileSystemOf(relay.dataDir)})${writeMap}, log level ${logLevel}`)
  row('verifier', verifier)
  if (profDir) row('cpu-prof', `relay runs with --cpu-prof; profiles in ${profDir}`)
}

/** `--url`: the relay under test is not the bench's child. */
export const printRemote = (url: string, load: boolean): void => {
  row('relay', `${url} (--url: not started by the bench; its CPU, memory, log and verifier are not measured)`)
  if (!load) row('store', '--no-load: the REQs query what the relay already holds (the bench\'s fixed authors, tag pools and last 7 days)')
}

/** `--url`: what NIP-42 came to (nothing when the relay never sent a challenge). */
export const printAuth = (stats: { challenges: number; accepted: number; refused: number; refusedExample?: string }, onConnect: boolean | undefined): void => {
  line()
  if (stats.challenges === 0) return row('NIP-42', `no AUTH challenge from the relay${onConnect === false ? ' on connect' : ''}; the bench did not authenticate`)
  row('NIP-42', `${int(stats.challenges)} challenges answered (kind 22242, one of the bench's keys): accepted ${int(stats.accepted)}, refused ${int(stats.refused)}` +
    (stats.refusedExample ? `: e.g. "${stats.refusedExample}"` : ''))
}

/** Whether the relay traces: it always loads the register module; the SDK starts only when OTEL_TRACES_EXPORTER names an exporter. */
export const printTracingState = (env: Record<string, string | undefined>): void => {
  const exporter = env.OTEL_TRACES_EXPORTER
  const sampler = env.OTEL_TRACES_SAMPLER ? `, OTEL_TRACES_SAMPLER=${env.OTEL_TRACES_SAMPLER}${env.OTEL_TRACES_SAMPLER_ARG ? ` (${env.OTEL_TRACES_SAMPLER_ARG})` : ''}` : ''
  row('tracing', exporter ? `OTEL_TRACES_EXPORTER=${exporter}${sampler} (from the environment; --tracing compares off, 1 %, 100 %)` : 'off (--import @msr/telemetry/register loaded, OTEL_TRACES_EXPORTER unset)')
}

/** Signing before the timed phases. */
export const printPrepared = (events: number, seconds: number, threads: number, signer: string, keys: number): void =>
  row('prepared', `${int(events)} signed events in ${sec(seconds)} (${threads} signing threads, ${signer}, ${keys} keys; not timed)`)

/** CPU use over the phase's wall time, in cores. */
const cpuText = (cpu: CpuShare): string => {
  const cores = (seconds: number) => `${seconds.toFixed(2)} s (${(seconds / cpu.wallSeconds).toFixed(2)} cores)`
  if (cpu.relaySeconds === undefined && cpu.relayRssMiB === undefined && cpu.otherSeconds !== undefined)
    return `relay not measured (--url), generator ${cores(cpu.generatorSeconds)}, rest of this machine ${(cpu.otherSeconds / cpu.wallSeconds).toFixed(2)} cores (the relay included if it runs here)`
  const relay = cpu.relaySeconds === undefined ? 'relay ?' : `relay ${cores(cpu.relaySeconds)}`
  const other = cpu.otherSeconds === undefined ? '' : `, other processes ${(cpu.otherSeconds / cpu.wallSeconds).toFixed(2)} cores`
  const rss = cpu.relayRssMiB === undefined ? '' : `; relay RSS ${cpu.relayRssMiB.toFixed(0)} MiB`
  return `${relay}, generator ${cores(cpu.generatorSeconds)}${other}${rss}`
}

const latencyText = (s: Summary): string => `p50 ${ms(s.p50)}  p90 ${ms(s.p90)}  p99 ${ms(s.p99)}  max ${ms(s.max)}`

const printPublish = (r: PublishResult): void => {
  row('accepted', `${int(r.stored + r.duplicates)} of ${int(r.sent)} (stored ${int(r.stored)}, duplicate ${int(r.duplicates)}), rejected ${int(r.rejected)}`)
  for (const [prefix, { count, example }] of r.rejectReasons) row('  rejected', `${int(count)} × ${prefix}: e.g. "${example}"`)
  if (r.rateLimited) row('rate-limited', `${int(r.rateLimited)} OK false "rate-limited:" (not counted as accepted or rejected): e.g. "${r.rateLimitedExample ?? ''}"`)
  for (const notice of r.notices) row('  NOTICE', notice)
}

/** Scenario 1, after its warm-up when there was one (published first, over the same connections). */
export const printIngest = (r: PublishResult, connections: number, window: number, cpu: CpuShare, warmup?: PublishResult, gc?: RelayGc): void => {
  line()
  line(`1. Ingest: ${int(r.sent)} distinct signed kind-1 events, ${connections} connections, ≤${window} unanswered each (every signature verified)`)
  if (warmup) printWarmup(warmup)
  printPublish(r)
  row('time', `${sec(r.seconds)} from first EVENT to last OK`)
  row('throughput', `${int((r.stored + r.duplicates) / r.seconds)} accepted events/s   [target ≥ ${int(TARGETS.ingestPerSecond)}: ${verdict((r.stored + r.duplicates) / r.seconds >= TARGETS.ingestPerSecond)}]`)
  row('EVENT→OK', `${latencyText(r.ackLatency)} (mostly queueing: up to ${int(connections * window)} in flight)`)
  row('cpu', cpuText(cpu))
  gcRow(gc)
}

/** The warm-up: what a fresh relay's first events cost, apart from the figures (its rejections still count as faults). */
const printWarmup = (w: PublishResult): void => {
  const rejected = w.rejected ? `, rejected ${int(w.rejected)}` : ''
  const limited = w.rateLimited ? `, rate-limited ${int(w.rateLimited)}` : ''
  row('warm-up', `${int(w.sent)} events first, not in the figures below: ${sec(w.seconds)}, EVENT→OK ${latencyText(w.ackLatency)}${rejected}${limited}`)
}

/** Loading the rest of the store for scenario 2. */
export const printLoad = (r: PublishResult, storeSize: number, storeMiB: number | undefined, gc?: RelayGc): void => {
  line()
  line(`   Store load for REQs: ${int(r.sent)} more events (about 45% kind 1, 25% kind 7, 30% kind 445; tags p/e/h/t)`)
  row('store', storeMiB === undefined ? `${int(storeSize)} events published by this run (--url: plus whatever the relay held)` : `${int(storeSize)} events, ${storeMiB.toFixed(0)} MiB on disk`)
  printPublish(r)
  row('throughput', `${int((r.stored + r.duplicates) / r.seconds)} accepted events/s (${sec(r.seconds)})`)
  gcRow(gc)
}

/** Scenario 2. */
export const printReqs = (r: ReqResult, store: number | string, connections: number, cpu: CpuShare, relayGc?: RelayGc): void => {
  line()
  const layout = connections === 1 ? '1 connection (no queueing behind other REQs)' : `${connections} connections, one REQ at a time each`
  line(`2. REQ latency: ${int(r.all.n)} REQs on ${typeof store === 'number' ? `a ${int(store)}-event store` : store}, ${layout} (send → EOSE, then CLOSE)`)
  for (const t of r.byType)
    row(`${t.label.padEnd(24)}`, `n ${String(t.latency.n).padStart(4)}  ${latencyText(t.latency)}  events/REQ ${t.events.mean.toFixed(0)} (limit ${t.limit})${t.closed ? `  CLOSED ${t.closed}` : ''}`)
  row('all REQs', latencyText(r.all))
  const target = connections === 1 ? '' : `   [target p99 < ${TARGETS.reqP99Ms} ms: ${verdict(r.limit500.p99 < TARGETS.reqP99Ms)}]`
  row('limit 500', `${latencyText(r.limit500)}${target}`)
  const perReq = cpu.relaySeconds === undefined ? '' : `, relay CPU ${ms((1000 * cpu.relaySeconds) / r.all.n)} per REQ`
  row('rate', `${int(r.all.n / r.seconds)} REQs/s over ${sec(r.seconds)}${perReq}`)
  row('cpu', cpuText(cpu))
  const gc = r.generatorGc
  row(
    'generator GC',
    `${gc.count} collections in the generator (${ms(gc.totalMs)}, longest ${ms(gc.longestMs)}); ${int(gc.overlapping)} REQs waited across one, ` +
      `${gc.slowestOverlapping} of the ${gc.slowest} slowest (their time counts in the figures above)`,
  )
  gcRow(relayGc)
  for (const example of r.closedExamples) row('  CLOSED', example)
  if (r.rateLimited) row('rate-limited', `${int(r.rateLimited)} REQs ended by CLOSED "rate-limited:" (left out of the figures above): e.g. "${r.rateLimitedExample ?? ''}"`)
}

/** Scenario 3 (one layout). */
export const printFanout = (r: FanoutResult, title: string, cpu: CpuShare, gc?: RelayGc): void => {
  line()
  const from = r.publishers === 1 ? 'one publisher' : `${r.publishers} publishers (a slice each, ≤ ${r.window} unanswered each)`
  line(`3. Fan-out ${title}: ${int(r.subscribers)} subscribers to ${r.filter} on ${int(r.connections)} connections, ${int(r.events)} events from ${from}`)
  row('delivered', `${int(r.delivered)} of ${int(r.expected)} EVENT frames; missing ${int(r.missing)}, duplicate ${int(r.duplicates)}, out of order ${int(r.outOfOrder)}, stray ${int(r.stray)}` +
    (r.closedByRelay ? `, ${r.closedByRelay} subscriber connections closed by the relay (slow readers)` : ''))
  row('time', `${sec(r.seconds)} from first publish to last delivery (publishers: ${int((r.publish.stored + r.publish.duplicates) / r.publish.seconds)} events/s accepted, ${sec(r.publish.seconds)})`)
  const target = r.publishers === 1 ? TARGETS.fanoutPerSecond : TARGETS.saturationPerSecond
  const judged = r.missing === 0 ? verdict(r.deliveriesPerSecond >= target) : 'NOT MET: deliveries missing'
  row('throughput', `${int(r.deliveriesPerSecond)} deliveries/s   [target ≥ ${int(target)}: ${judged}]`)
  row('pub→deliver', `${latencyText(r.publishToDeliver)} (EVENT sent → EVENT received on the subscription, bench clock; n ${int(r.publishToDeliver.n)})`)
  row('cpu', cpuText(cpu) + cpuPerMillion(cpu, r.delivered))
  gcRow(gc)
  if (r.publish.rejected || r.publish.rateLimited) printPublish(r.publish)
}

/** Relay and generator CPU per million deliveries: steadier than deliveries/s when other processes share the cores. */
const cpuPerMillion = (cpu: CpuShare, delivered: number): string => {
  if (delivered === 0 || cpu.relaySeconds === undefined) return ''
  const per = (seconds: number) => ((1e6 * seconds) / delivered).toFixed(2)
  return `; per million deliveries: relay ${per(cpu.relaySeconds)} s, generator ${per(cpu.generatorSeconds)} s`
}

/** Per benchmark phase: how busy the relay's threads were and its main thread's hottest functions. */
/** Scenario 4 needs the relay's own /metrics: not against --url. */
export const printIdleSkipped = (): void => line('\n4. Idle connections: not measured with --url (the figures come from the relay\'s own /metrics)')

/** Scenario 4: the relay's memory with idle connections held. */
export const printIdle = (r: IdleResult): void => {
  const perConnection = (r.heapAfter - r.heapBefore) / r.connections
  line(`\n4. Idle connections: ${r.connections} WebSocket connections that send nothing (the relay counted ${r.counted})`)
  line(`  relay heap    ${(r.heapBefore / 2 ** 20).toFixed(1)} MiB before, ${(r.heapAfter / 2 ** 20).toFixed(1)} MiB with them: ${(perConnection / 1024).toFixed(2)} KB per connection   [target ≤ 4 KB: ${perConnection <= 4096 ? 'MET' : 'MISSED'}]`)
  line(`  resident set  ${(r.rssAfter / 2 ** 20).toFixed(0)} MiB with them   [target: 10,000 under 500 MiB${r.connections >= 10_000 ? `: ${r.rssAfter < 500 * 2 ** 20 ? 'MET' : 'MISSED'}` : ''}]`)
  const collections = r.majorCollections > 0
    ? `${r.majorCollections} full collection(s) of the relay's heap in ${r.heldSeconds.toFixed(0)} s held; the figures are the least reading after the first`
    : `no full collection of the relay's heap in ${r.heldSeconds.toFixed(0)} s held: the heap figure still holds garbage (an upper bound)`
  line(`  collected     ${collections}`)
}

export const printProfiles = (phases: Phase[], profiles: ThreadProfile[], perPhase = 12): void => {
  line()
  line(`Relay CPU profile by phase (--cpu-prof; self time, % of the main thread's non-idle samples)`)
  line(`  profiled threads: ${profiles.map(p => p.file).join(', ')}`)
  for (const phase of phases) {
    const wallMs = (phase.toUs - phase.fromUs) / 1000
    const threads = profiles.map(p => summarizeThread(p, phase, perPhase))
    const main = threads.find(t => t.thread === 0)
    const workers = threads.filter(t => t.thread !== 0)
    const workerText = workers.map(w => `${(100 * w.busyMs / wallMs).toFixed(0)}%`).join(', ')
    line()
    line(`  ${phase.name} (${sec(wallMs / 1000)}): main thread busy ${main ? (100 * main.busyMs / wallMs).toFixed(0) : '?'}% of wall time; verifier threads ${workerText || '-'}`)
    for (const f of main?.top ?? []) line(`    ${f.percent.toFixed(1).padStart(5)}%  ${int(f.selfMs).padStart(6)} ms  ${f.name}  ${f.where}`)
  }
}

/** Warnings the relay logged, the shutdown, and the one-line figures. */
export const printClosing = (
  relay: { warningCount: number; warnings: Array<{ severity: string; message: string }> },
  stop: { code: number | null; signal: string | null; seconds: number },
  peakRssMiB: number | undefined,
  summary: string[],
): void => {
  line()
  row('relay log', relay.warningCount === 0 ? 'no warnings or errors' : `${relay.warningCount} warnings/errors:`)
  for (const w of relay.warnings.slice(0, 10)) row(`  ${w.severity}`, w.message)
  row('relay stop', `SIGTERM → exit ${stop.code ?? stop.signal} in ${sec(stop.seconds)}; peak RSS ${peakRssMiB === undefined ? '?' : `${peakRssMiB.toFixed(0)} MiB`}; temp dir removed`)
  line()
  line('Summary')
  for (const s of summary) line(`  ${s}`)
}

/** The summary lines alone (`--url`, `--only idle`: no main relay child whose log or stop to report). */
export const printSummary = (summary: string[]): void => {
  line()
  line('Summary')
  for (const s of summary) line(`  ${s}`)
}

export type { Figure } from '@msr/bench'
/** The figures of the run as one table: figure | value | unit. */
export { printFigureTable as printTable } from '@msr/bench'

/** `--tracing`: the relay's verifier and log level (a relay is started per run, so there is no single pid or data dir). */
export const printTracingVerifier = (verifier: string, logLevel: string, profDir: string | undefined): void => {
  row('relay', `a fresh child per run on a temp data dir and a free loopback port, log level ${logLevel}`)
  row('verifier', verifier)
  if (profDir) row('cpu-prof', `relay runs with --cpu-prof; profiles in ${profDir}/<mode>-<round>`)
}

/** `--tracing`: where the relay's spans go, before the runs. */
export const printTracingSetup = (t: { endpoint: string; otel: Record<string, string> }, rounds: number, events: number, connections: number, window: number): void => {
  row('tracing', `register module always loaded (--import @msr/telemetry/register, OTEL_SERVICE_NAME=msr-relay); off: no OTEL_TRACES_EXPORTER`)
  row('', `sampled runs: ${Object.entries(t.otel).map(([k, v]) => `${k}=${v}`).join(' ')} OTEL_TRACES_SAMPLER_ARG=0.01|1`)
  row('', `OTLP sink in the bench: ${t.endpoint}/v1/traces (answers 200 at once, counts requests, bytes and spans)`)
  line()
  line(`1. Ingest with tracing off, at 1 %, at 100 %: ${int(events)} distinct signed kind-1 events, ${connections} connections, ≤${window} unanswered each,`)
  line(`   a fresh relay per run, ${rounds} round(s) in the order off, 1 %, 100 %; each run waits (≤ 20 s) until other processes use ≤ 0.25 cores`)
}

const relayCpuPer1k = (r: { cpu: CpuShare; ingest: PublishResult }): number | undefined =>
  r.cpu.relaySeconds === undefined ? undefined : (1e6 * r.cpu.relaySeconds) / Math.max(1, r.ingest.stored + r.ingest.duplicates)

const pct = (x: number): string => `${x >= 0 ? '+' : '−'}${Math.abs(100 * x).toFixed(1)} %`

const bytesText = (n: number): string => (n >= 2 ** 20 ? `${(n / 2 ** 20).toFixed(1)} MiB` : n >= 1024 ? `${(n / 1024).toFixed(0)} KiB` : `${n} B`)

interface TracingRunView {
  mode: string
  round: number
  ingest: PublishResult
  okPerSecond: number
  cpu: CpuShare
  sink: { requests: number; bytes: number; spans: number | undefined; rejected: number }
  warningCount: number
  waitedSeconds: number
}

const spansText = (s: TracingRunView['sink']): string => (s.spans === undefined ? '?' : int(s.spans))

/** One line per run, as it ends. */
export const printTracingRun = (r: TracingRunView): void => {
  const other = r.cpu.otherSeconds === undefined ? '' : `, other processes ${(r.cpu.otherSeconds / r.cpu.wallSeconds).toFixed(2)} cores`
  const per1k = relayCpuPer1k(r)
  row(`${r.mode.padEnd(5)} round ${r.round}`,
    `${int(r.okPerSecond).padStart(7)} OK/s  p50 ${ms(r.ingest.ackLatency.p50).padStart(8)}  p99 ${ms(r.ingest.ackLatency.p99).padStart(8)}  ` +
    `relay ${per1k === undefined ? '?' : `${per1k.toFixed(0)} ms`} CPU per 1k OK${other}; ` +
    `sink ${int(r.sink.requests)} requests, ${bytesText(r.sink.bytes)}, ${spansText(r.sink)} spans` +
    (r.ingest.rejected ? `; REJECTED ${int(r.ingest.rejected)}` : '') + (r.warningCount ? `; ${r.warningCount} relay warnings` : '') +
    (r.waitedSeconds >= 1 ? `; waited ${r.waitedSeconds.toFixed(0)} s for a quiet machine` : ''))
}

/** The comparison: each mode's best round, against off's. */
export const printTracing = (
  summaries: ReadonlyArray<{ mode: string; best: TracingRunView; runs: TracingRunView[]; change: number }>,
  rounds: number,
  target: number,
): void => {
  line()
  line(`Tracing cost on ingest, ${rounds} round(s) per mode (a fresh relay per run; rounds alternate off, 1 %, 100 %)`)
  line(`  OK/s, p50, p99: the round with the most OK/s (other processes only ever slow a round down); CPU/1k OK: the lowest round`)
  const lowestCpu = (runs: TracingRunView[]): number | undefined => {
    const all = runs.flatMap(r => relayCpuPer1k(r) ?? [])
    return all.length === runs.length ? Math.min(...all) : undefined
  }
  const off = summaries.find(s => s.mode === 'off')
  const offCpu = off && lowestCpu(off.runs)
  const head = ['mode', 'OK/s', 'vs off', 'p50', 'p99', 'CPU/1k OK', 'vs off', 'spans', 'spans/OK', 'requests', 'bytes', 'OK/s each round']
  const widths = [6, 8, 9, 9, 9, 10, 9, 8, 9, 9, 10, 0]
  const cells = (values: string[]) => values.map((v, i) => (i === 0 || i === values.length - 1 ? v.padEnd(widths[i] ?? 0) : v.padStart(widths[i] ?? 0))).join('  ')
  line(`  ${cells(head)}`)
  const cpuChanges = new Map<string, number>()
  for (const s of summaries) {
    const b = s.best
    const ok = b.ingest.stored + b.ingest.duplicates
    const cpu = lowestCpu(s.runs)
    if (cpu !== undefined && offCpu) cpuChanges.set(s.mode, (cpu - offCpu) / offCpu)
    const cpuChange = cpuChanges.get(s.mode)
    line(`  ${cells([
      s.mode, int(b.okPerSecond), s.mode === 'off' ? '' : pct(s.change), ms(b.ingest.ackLatency.p50), ms(b.ingest.ackLatency.p99),
      cpu === undefined ? '?' : `${cpu.toFixed(0)} ms`, s.mode === 'off' || cpuChange === undefined ? '' : pct(cpuChange), spansText(b.sink),
      b.sink.spans === undefined ? '?' : `${((100 * b.sink.spans) / Math.max(1, ok)).toFixed(2)} %`, int(b.sink.requests), bytesText(b.sink.bytes),
      s.runs.map(r => int(r.okPerSecond)).join(', '),
    ])}`)
  }
  line('  (vs off: change of OK/s, and of the relay\'s CPU time per 1000 OKs, which the rest of the machine\'s load moves less;')
  line('   spans/OK: spans the sink received per accepted event, about 1 % and 100 % when sampling works and nothing is dropped)')
  const full = summaries.find(s => s.mode === '100 %')
  const lost = full?.runs.filter(r => r.sink.spans !== undefined && r.sink.spans < r.ingest.stored + r.ingest.duplicates) ?? []
  if (lost.length > 0)
    line(`  NOTE        100 %: ${lost.map(r => `${((100 * (r.sink.spans ?? 0)) / (r.ingest.stored + r.ingest.duplicates)).toFixed(1)} %`).join(', ')} of the spans reached the sink; ` +
      'the batch span processor drops spans when its queue is full (OTEL_BSP_MAX_QUEUE_SIZE, default 2048)')
  const one = summaries.find(s => s.mode === '1 %')
  if (!one) return
  const cpuOne = cpuChanges.get('1 %')
  const byCpu = cpuOne === undefined ? '' : `; relay CPU per OK ${pct(cpuOne)}: ${cpuOne <= target ? 'within' : 'beyond'} ${(100 * target).toFixed(0)} %`
  line(`  target      1 % sampling at most ${(100 * target).toFixed(0)} % slower than off: ${one.change >= -target ? 'MET' : 'MISSED'} (${pct(one.change)} OK/s${byCpu})`)
}

/** `--tracing`: the relays' warnings and stops over all runs, and the summary lines. */
export const printTracingClosing = (
  runs: ReadonlyArray<{ mode: string; round: number; warningCount: number; warnings: Array<{ severity: string; message: string }>; stop: { code: number | null; signal: string | null; seconds: number } }>,
  summary: string[],
): void => {
  line()
  const warnings = runs.reduce((sum, r) => sum + r.warningCount, 0)
  row('relay log', warnings === 0 ? 'no warnings or errors in any run' : `${warnings} warnings/errors:`)
  for (const r of runs) for (const w of r.warnings.slice(0, 5)) row(`  ${w.severity}`, `[${r.mode}, round ${r.round}] ${w.message}`)
  const exits = [...new Set(runs.map(r => String(r.stop.code ?? r.stop.signal)))].join(', ')
  row('relay stop', `SIGTERM → exit ${exits}; slowest stop (with the final span flush) ${sec(Math.max(...runs.map(r => r.stop.seconds)))}; temp dirs removed`)
  line()
  line('Summary')
  for (const s of summary) line(`  ${s}`)
}

/** `--replication` without an emulator: why nothing ran. */
export const printReplicationSkipped = (why: string): void => {
  line()
  row('SKIPPED', `--replication needs the Google Cloud SDK's Pub/Sub emulator: ${why}`)
}

/** `--replication`: the relays and what each configuration runs. */
export const printReplicationSetup = (verifier: string, logLevel: string, events: number, connections: number, window: number): void => {
  row('relays', `a fresh child per relay on a temp data dir and a free loopback port, log level ${logLevel}`)
  row('verifier', verifier)
  row('replicas', `a fresh topic of the Pub/Sub emulator per configuration, a subscription per replica made first; on_bus_outage "refuse", ack_timeout default`)
  line()
  line(`1. Ingest, ${int(events)} distinct signed kind-1 events, ${connections} connections (round-robin over the replicas), ≤${window} unanswered each,`)
  line(`   on one relay without replication, one replica, three replicas; one live subscription {kinds:[1]} per relay`)
}

const coresText = (seconds: number | undefined, wall: number): string => (seconds === undefined ? '?' : `${seconds.toFixed(2)} s (${(seconds / wall).toFixed(2)} cores)`)

/** One configuration, as it ends. */
export const printReplicationRun = (r: ReplicationRun): void => {
  const { cpu } = r
  line()
  const warm = r.warmupSeconds === undefined ? 'warm-up events NOT on every relay within 30 s' : `warm-up events on every relay after ${sec(r.warmupSeconds)}`
  const waited = r.waitedSeconds >= 1 ? `; waited ${sec(r.waitedSeconds)} for a quiet machine` : ''
  line(`  ${r.label}${r.relays > 1 ? ` (connections per replica ${r.connectionsPerRelay.join('/')})` : ''}: started in ${sec(r.startSeconds)}; ${warm}${waited}`)
  row('  accepted', `${int(r.accepted)} of ${int(r.ingest.sent)} in ${sec(r.ingest.seconds)}: ${int(r.okPerSecond)} OK/s; rejected ${int(r.ingest.rejected)}` +
    (r.replication ? ` (of them OK false "not yet replicated": ${int(r.notYetReplicated)})` : ''))
  for (const [prefix, { count, example }] of r.ingest.rejectReasons) row('    rejected', `${int(count)} × ${prefix}: e.g. "${example}"`)
  row('  EVENT→OK', latencyText(r.ingest.ackLatency))
  const each = r.relays > 1 ? ` (${cpu.relaySeconds.map((s, i) => `replica ${i} ${s === undefined ? '?' : s.toFixed(2)}`).join(', ')} s)` : ''
  row('  cpu', `relay${r.relays > 1 ? 's' : ''} ${coresText(relayCpuSeconds(r), cpu.wallSeconds)}${each}, emulator ${coresText(cpu.emulatorSeconds, cpu.wallSeconds)}, ` +
    `generator ${coresText(cpu.generatorSeconds, cpu.wallSeconds)}, other processes ${cpu.otherSeconds === undefined ? '?' : (cpu.otherSeconds / cpu.wallSeconds).toFixed(2)} cores ` +
    `(first EVENT → last delivery, ${sec(cpu.wallSeconds)})`)
  row('  delivered', `accepted events on every relay ${int(r.everywhere)} of ${int(r.accepted)}; per relay live ${r.coverage.map(c => int(c.live)).join('/')}, ` +
    `by REQ ${r.coverage.map(c => int(c.servedByReq)).join('/')}, missing ${r.coverage.map(c => int(c.missing)).join('/')}` +
    (r.coverage.some(c => c.duplicates) ? `, duplicates ${r.coverage.map(c => int(c.duplicates)).join('/')}` : '') +
    (r.coverage.some(c => c.closedCode !== undefined) ? `; subscription closed by the relay (code ${r.coverage.map(c => c.closedCode ?? '-').join('/')})` : ''))
  if (r.visibility) row('  visibility', `${latencyText(r.visibility)} (OK on the origin → live EVENT on each other replica, bench clock; n ${int(r.visibility.n)})`)
}

/** `--replication`: the relays' warnings and stops over all configurations, and the summary lines. */
export const printReplicationClosing = (runs: readonly ReplicationRun[], summary: string[]): void => {
  line()
  const warnings = runs.reduce((n, r) => n + r.warningCount, 0)
  row('relay log', warnings === 0 ? 'no warnings or errors on any relay' : `${warnings} warnings/errors:`)
  for (const r of runs) for (const w of r.warnings.slice(0, 5)) row(`  ${w.severity}`, `[${r.label}] ${w.message}`)
  const stops = runs.flatMap(r => r.stops)
  row('relay stop', `SIGTERM → exit ${[...new Set(stops.map(s => String(s.code ?? s.signal)))].join(', ')}; slowest stop ${sec(Math.max(...stops.map(s => s.seconds)))}; temp dirs removed`)
  printSummary(summary)
}
