// The CPU each party used (Linux /proc): the API process, its embedded PostgreSQL (every process below the API),
// the load generator, and the rest of the machine; and the file system the data lives on.
import { execFileSync } from 'node:child_process'
import { readdirSync, readFileSync } from 'node:fs'
import { machineBusySeconds, minus, ownCpuSeconds, processMemoryMiB, readProcStat, type PhaseCpu, type ProcStat } from '@msr/bench'

/** The file system type and device of a path (`ext4 /dev/vda`), or undefined when `df` cannot tell. */
export const fileSystemOf = (path: string): string | undefined => {
  try {
    const last = execFileSync('df', ['-PT', path], { encoding: 'utf8' }).trim().split('\n').at(-1) ?? ''
    const [device, type] = last.split(/\s+/)
    return type && device ? `${type} on ${device}` : undefined
  } catch {
    return undefined
  }
}

/** Every process below `root` (children, grandchildren, …). */
const descendants = (root: number): ProcStat[] => {
  const all = readdirSync('/proc').filter(d => /^\d+$/.test(d)).flatMap(d => readProcStat(Number(d)) ?? [])
  const byParent = new Map<number, ProcStat[]>()
  for (const p of all) byParent.set(p.ppid, [...(byParent.get(p.ppid) ?? []), p])
  const found: ProcStat[] = []
  for (let frontier = [root]; frontier.length > 0; ) {
    const next = frontier.flatMap(pid => byParent.get(pid) ?? [])
    found.push(...next)
    frontier = next.map(p => p.pid)
  }
  return found
}

/** CPU seconds, and the part of them spent in the kernel. */
interface Cpu {
  total: number
  kernel: number
}

/**
 * Seconds a thread has spent runnable but waiting for a core, from a `schedstat` text (`/proc/<pid>/task/<tid>/schedstat`:
 * time on a core, time waiting in the run queue, both in ns, then timeslices); undefined when it is not one.
 */
export const runQueueSeconds = (schedstat: string): number | undefined => {
  const waited = schedstat.trim().split(/\s+/)[1]
  return waited !== undefined && /^\d+$/.test(waited) ? Number(waited) / 1e9 : undefined
}

const readRunQueueSeconds = (path: string): number | undefined => {
  try {
    return runQueueSeconds(readFileSync(path, 'utf8'))
  } catch {
    // No schedstat (a kernel without CONFIG_SCHED_INFO, or not Linux).
    return undefined
  }
}

/**
 * CPU seconds of the API process itself (all threads), of its main thread (the event loop), and the
 * seconds the main thread waited for a core; or undefined off Linux.
 */
const apiCpu = (pid: number): (Cpu & { mainThread: number | undefined; mainThreadWaiting: number | undefined }) | undefined => {
  const stat = readProcStat(pid)
  // A process's first thread has the process id as its thread id.
  const main = readProcStat(pid, `/proc/${pid}/task/${pid}/stat`)
  return stat && { total: stat.own, kernel: stat.kernel, mainThread: main?.own, mainThreadWaiting: readRunQueueSeconds(`/proc/${pid}/task/${pid}/schedstat`) }
}

/**
 * CPU seconds of everything below the API (the embedded PostgreSQL: postmaster, backends, background
 * workers). Backends that exited count through the postmaster's waited-for children time.
 */
const postgresCpu = (apiPid: number): Cpu | undefined => {
  try {
    const all = descendants(apiPid)
    const direct = (p: ProcStat) => p.ppid === apiPid
    return {
      total: all.reduce((sum, p) => sum + p.own + (direct(p) ? p.children : 0), 0),
      kernel: all.reduce((sum, p) => sum + p.kernel + (direct(p) ? p.childrenKernel : 0), 0),
    }
  } catch {
    return undefined
  }
}

/** CPU use over a timed phase. */
export interface CpuShare extends PhaseCpu {
  apiSeconds: number | undefined
  apiKernelSeconds: number | undefined
  /** The API's main thread: every request goes through it, so it bounds one instance's rate (its other threads are the rest). */
  apiMainThreadSeconds: number | undefined
  /**
   * Seconds the main thread was runnable but waited for a core. On cores shared with PostgreSQL and the
   * generator this, not its CPU time, is what keeps the rate under the capacity.
   */
  apiMainThreadWaitingSeconds: number | undefined
  postgresSeconds: number | undefined
  postgresKernelSeconds: number | undefined
  apiRssMiB: number | undefined
}

/** Starts measuring CPU use of the API, its PostgreSQL, the generator and the rest; call the result when the phase ends. */
export const startCpuShare = (apiPid: number): (() => CpuShare) => {
  const api0 = apiCpu(apiPid)
  const pg0 = postgresCpu(apiPid)
  const own0 = ownCpuSeconds()
  const machine0 = machineBusySeconds()
  const started = performance.now()
  return () => {
    const [api1, pg1] = [apiCpu(apiPid), postgresCpu(apiPid)]
    const apiSeconds = minus(api1?.total, api0?.total)
    const postgresSeconds = minus(pg1?.total, pg0?.total)
    const generatorSeconds = ownCpuSeconds() - own0
    const measured = apiSeconds === undefined || postgresSeconds === undefined ? undefined : apiSeconds + postgresSeconds + generatorSeconds
    const other = minus(minus(machineBusySeconds(), machine0), measured)
    return {
      apiSeconds,
      apiKernelSeconds: minus(api1?.kernel, api0?.kernel),
      apiMainThreadSeconds: minus(api1?.mainThread, api0?.mainThread),
      apiMainThreadWaitingSeconds: minus(api1?.mainThreadWaiting, api0?.mainThreadWaiting),
      postgresSeconds,
      postgresKernelSeconds: minus(pg1?.kernel, pg0?.kernel),
      generatorSeconds,
      otherSeconds: other === undefined ? undefined : Math.max(0, other),
      apiRssMiB: processMemoryMiB(apiPid, 'VmRSS'),
      wallSeconds: (performance.now() - started) / 1000,
    }
  }
}
