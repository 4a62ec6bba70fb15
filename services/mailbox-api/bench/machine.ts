// What the figures were measured on, and the CPU each party used (Linux /proc): the API process, its embedded
// PostgreSQL (every process below the API), the load generator, and the rest of the machine.
import { execFileSync } from 'node:child_process'
import { readdirSync, readFileSync } from 'node:fs'
import { arch, availableParallelism, cpus, loadavg, platform, release, totalmem } from 'node:os'

/** The machine, as printed at the top of the report. */
export interface MachineInfo {
  cpu: string
  cores: number
  node: string
  os: string
  memoryGiB: number
  loadAverage: number
}

/** Describes this machine. */
export const machineInfo = (): MachineInfo => ({
  cpu: cpus()[0]?.model.trim() ?? 'unknown CPU',
  cores: availableParallelism(),
  node: process.version,
  os: `${platform()} ${release()} ${arch()}`,
  memoryGiB: totalmem() / 2 ** 30,
  loadAverage: loadavg()[0] ?? 0,
})

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

// Linux reports CPU times in clock ticks; USER_HZ is 100 on every mainstream kernel build.
const TICKS_PER_SECOND = 100

interface ProcStat {
  pid: number
  ppid: number
  /** utime + stime, seconds. */
  own: number
  /** stime: in the kernel on the process's behalf (syscalls: socket writes and reads, fsync), seconds. */
  kernel: number
  /** cutime + cstime: children that exited and were waited for, seconds. */
  children: number
  childrenKernel: number
}

const readStat = (pid: number): ProcStat | undefined => {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1')
    // Fields after the command name (which may contain spaces) start after the last ')': state is [0], ppid [1].
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ').map(Number)
    const at = (i: number) => f[i] ?? 0
    const seconds = (ticks: number) => ticks / TICKS_PER_SECOND
    return { pid, ppid: at(1), own: seconds(at(11) + at(12)), kernel: seconds(at(12)), children: seconds(at(13) + at(14)), childrenKernel: seconds(at(14)) }
  } catch {
    return undefined
  }
}

/** Every process below `root` (children, grandchildren, …). */
const descendants = (root: number): ProcStat[] => {
  const all = readdirSync('/proc').filter(d => /^\d+$/.test(d)).flatMap(d => readStat(Number(d)) ?? [])
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

/** CPU seconds of the API process itself, or undefined off Linux. */
const apiCpu = (pid: number): Cpu | undefined => {
  const stat = readStat(pid)
  return stat && { total: stat.own, kernel: stat.kernel }
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

/** CPU seconds used so far by this process (the load generator, all its threads). */
const ownCpuSeconds = (): number => {
  const { user, system } = process.cpuUsage()
  return (user + system) / 1e6
}

/** Busy CPU seconds of the whole machine so far (all cores, every process), or undefined off Linux. */
const machineBusySeconds = (): number | undefined => {
  try {
    const first = readFileSync('/proc/stat', 'latin1').split('\n', 1)[0] ?? ''
    const ticks = first.trim().split(/\s+/).slice(1).map(Number)
    const [user = 0, nice = 0, system = 0, , , irq = 0, softirq = 0, steal = 0] = ticks
    return (user + nice + system + irq + softirq + steal) / TICKS_PER_SECOND
  } catch {
    return undefined
  }
}

/** Resident memory of a process in MiB (Linux /proc status field: VmRSS now, VmHWM peak), or undefined. */
export const processMemoryMiB = (pid: number, field: 'VmRSS' | 'VmHWM'): number | undefined => {
  try {
    const match = new RegExp(`${field}:\\s+(\\d+) kB`).exec(readFileSync(`/proc/${pid}/status`, 'latin1'))
    return match ? Number(match[1]) / 1024 : undefined
  } catch {
    return undefined
  }
}

/** CPU use over a timed phase. */
export interface CpuShare {
  apiSeconds: number | undefined
  apiKernelSeconds: number | undefined
  postgresSeconds: number | undefined
  postgresKernelSeconds: number | undefined
  generatorSeconds: number
  /** Busy CPU of other processes (a build or test run elsewhere on a 2-core machine moves every figure). */
  otherSeconds: number | undefined
  apiRssMiB: number | undefined
  wallSeconds: number
}

const minus = (a: number | undefined, b: number | undefined): number | undefined => (a === undefined || b === undefined ? undefined : a - b)

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
      postgresSeconds,
      postgresKernelSeconds: minus(pg1?.kernel, pg0?.kernel),
      generatorSeconds,
      otherSeconds: other === undefined ? undefined : Math.max(0, other),
      apiRssMiB: processMemoryMiB(apiPid, 'VmRSS'),
      wallSeconds: (performance.now() - started) / 1000,
    }
  }
}
