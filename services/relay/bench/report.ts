// The printed report: one section per scenario, then the targets of DESIGN.md §8.
import { int, ms, sec, summarizeThread, type MachineInfo, type Phase, type Summary, type ThreadProfile } from '@msr/bench'
import type { FanoutResult } from './fanout.js'
import type { CpuShare } from './machine.js'
import type { PublishResult } from './publish.js'
import type { ReqResult } from './req-latency.js'

/** DESIGN.md §8 targets on the 2-core development machines. */
export const TARGETS = { ingestPerSecond: 5000, reqP99Ms: 20, fanoutPerSecond: 100_000 }

const line = (text = ''): void => console.log(text)
const row = (label: string, text: string): void => line(`  ${label.padEnd(14)}${text}`)
const verdict = (ok: boolean): string => (ok ? 'MET' : 'MISSED')

/** Machine and relay. */
export const printHeader = (machine: MachineInfo, quick: boolean): void => {
  line(`mls-secure-relay benchmark (${quick ? 'quick' : 'full'} run)`)
  row('machine', `${machine.cpu}, ${machine.cores} cores, ${machine.memoryGiB.toFixed(1)} GiB, ${machine.os}, load avg ${machine.loadAverage.toFixed(2)}`)
  row('node', machine.node)
  row('note', `the load generator and the relay share these ${machine.cores} cores: every figure is for both together`)
}

/** Where the relay runs and with which verifier. */
export const printRelay = (relay: { pid: number; url: string; dataDir: string }, verifier: string, logLevel: string, profDir: string | undefined): void => {
  row('relay', `pid ${relay.pid}, ${relay.url}, data ${relay.dataDir}, log level ${logLevel}`)
  row('verifier', verifier)
  if (profDir) row('cpu-prof', `relay runs with --cpu-prof; profiles in ${profDir}`)
}

/** Signing before the timed phases. */
export const printPrepared = (events: number, seconds: number, threads: number, signer: string, keys: number): void =>
  row('prepared', `${int(events)} signed events in ${sec(seconds)} (${threads} signing threads, ${signer}, ${keys} keys; not timed)`)

/** CPU use over the phase's wall time, in cores. */
const cpuText = (cpu: CpuShare): string => {
  const cores = (seconds: number) => `${seconds.toFixed(2)} s (${(seconds / cpu.wallSeconds).toFixed(2)} cores)`
  const relay = cpu.relaySeconds === undefined ? 'relay ?' : `relay ${cores(cpu.relaySeconds)}`
  const other = cpu.otherSeconds === undefined ? '' : `, other processes ${(cpu.otherSeconds / cpu.wallSeconds).toFixed(2)} cores`
  const rss = cpu.relayRssMiB === undefined ? '' : `; relay RSS ${cpu.relayRssMiB.toFixed(0)} MiB`
  return `${relay}, generator ${cores(cpu.generatorSeconds)}${other}${rss}`
}

const latencyText = (s: Summary): string => `p50 ${ms(s.p50)}  p90 ${ms(s.p90)}  p99 ${ms(s.p99)}  max ${ms(s.max)}`

const printPublish = (r: PublishResult): void => {
  row('accepted', `${int(r.stored + r.duplicates)} of ${int(r.sent)} (stored ${int(r.stored)}, duplicate ${int(r.duplicates)}), rejected ${int(r.rejected)}`)
  for (const [prefix, { count, example }] of r.rejectReasons) row('  rejected', `${int(count)} × ${prefix}: e.g. "${example}"`)
  for (const notice of r.notices) row('  NOTICE', notice)
}

/** Scenario 1. */
export const printIngest = (r: PublishResult, connections: number, window: number, cpu: CpuShare): void => {
  line()
  line(`1. Ingest: ${int(r.sent)} distinct signed kind-1 events, ${connections} connections, ≤${window} unanswered each (every signature verified)`)
  printPublish(r)
  row('time', `${sec(r.seconds)} from first EVENT to last OK`)
  row('throughput', `${int((r.stored + r.duplicates) / r.seconds)} accepted events/s   [target ≥ ${int(TARGETS.ingestPerSecond)}: ${verdict((r.stored + r.duplicates) / r.seconds >= TARGETS.ingestPerSecond)}]`)
  row('EVENT→OK', `${latencyText(r.ackLatency)} (mostly queueing: up to ${int(connections * window)} in flight)`)
  row('cpu', cpuText(cpu))
}

/** Loading the rest of the store for scenario 2. */
export const printLoad = (r: PublishResult, storeSize: number, storeMiB: number): void => {
  line()
  line(`   Store load for REQs: ${int(r.sent)} more events (about 45% kind 1, 25% kind 7, 30% kind 445; tags p/e/h/t)`)
  row('store', `${int(storeSize)} events, ${storeMiB.toFixed(0)} MiB on disk`)
  printPublish(r)
  row('throughput', `${int((r.stored + r.duplicates) / r.seconds)} accepted events/s (${sec(r.seconds)})`)
}

/** Scenario 2. */
export const printReqs = (r: ReqResult, store: number, connections: number, cpu: CpuShare): void => {
  line()
  const layout = connections === 1 ? '1 connection (no queueing behind other REQs)' : `${connections} connections, one REQ at a time each`
  line(`2. REQ latency: ${int(r.all.n)} REQs on a ${int(store)}-event store, ${layout} (send → EOSE, then CLOSE)`)
  for (const t of r.byType)
    row(`${t.label.padEnd(24)}`, `n ${String(t.latency.n).padStart(4)}  ${latencyText(t.latency)}  events/REQ ${t.events.mean.toFixed(0)} (limit ${t.limit})${t.closed ? `  CLOSED ${t.closed}` : ''}`)
  row('all REQs', latencyText(r.all))
  const target = connections === 1 ? '' : `   [target p99 < ${TARGETS.reqP99Ms} ms: ${verdict(r.limit500.p99 < TARGETS.reqP99Ms)}]`
  row('limit 500', `${latencyText(r.limit500)}${target}`)
  const perReq = cpu.relaySeconds === undefined ? '' : `, relay CPU ${ms((1000 * cpu.relaySeconds) / r.all.n)} per REQ`
  row('rate', `${int(r.all.n / r.seconds)} REQs/s over ${sec(r.seconds)}${perReq}`)
  row('cpu', cpuText(cpu))
  for (const example of r.closedExamples) row('  CLOSED', example)
}

/** Scenario 3 (one layout). */
export const printFanout = (r: FanoutResult, title: string, cpu: CpuShare): void => {
  line()
  line(`3. Fan-out ${title}: ${int(r.subscribers)} subscribers to {kinds:[1]} on ${int(r.connections)} connections, ${int(r.events)} events from one publisher`)
  row('delivered', `${int(r.delivered)} of ${int(r.expected)} EVENT frames; missing ${int(r.missing)}, duplicate ${int(r.duplicates)}, stray ${int(r.stray)}` +
    (r.closedByRelay ? `, ${r.closedByRelay} subscriber connections closed by the relay` : ''))
  row('time', `${sec(r.seconds)} from first publish to last delivery (publisher: ${int((r.publish.stored + r.publish.duplicates) / r.publish.seconds)} events/s accepted, ${sec(r.publish.seconds)})`)
  const judged = r.missing === 0 ? verdict(r.deliveriesPerSecond >= TARGETS.fanoutPerSecond) : 'NOT MET: deliveries missing'
  row('throughput', `${int(r.deliveriesPerSecond)} deliveries/s   [target ≥ ${int(TARGETS.fanoutPerSecond)}: ${judged}]`)
  row('cpu', cpuText(cpu))
  if (r.publish.rejected) printPublish(r.publish)
}

/** Per benchmark phase: how busy the relay's threads were and its main thread's hottest functions. */
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
