// What the figures were measured on, and CPU time spent by a process (Linux /proc) so that the report can say
// how the two cores were shared between the relay and the load generator.
import { readFileSync } from 'node:fs'
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

// Linux reports utime and stime in clock ticks; USER_HZ is 100 on every mainstream kernel build.
const TICKS_PER_SECOND = 100

/** User + system CPU seconds used so far by a process (all its threads), or undefined off Linux. */
export const processCpuSeconds = (pid: number): number | undefined => {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1')
    // Fields after the command name (which may contain spaces) start after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND
  } catch {
    return undefined
  }
}

/** CPU seconds used so far by this process (the load generator, all its threads). */
export const ownCpuSeconds = (): number => {
  const { user, system } = process.cpuUsage()
  return (user + system) / 1e6
}

/** Busy CPU seconds of the whole machine so far (all cores, every process), or undefined off Linux. */
export const machineBusySeconds = (): number | undefined => {
  try {
    const first = readFileSync('/proc/stat', 'latin1').split('\n', 1)[0] ?? ''
    const ticks = first.trim().split(/\s+/).slice(1).map(Number)
    const [user = 0, nice = 0, system = 0, , , irq = 0, softirq = 0, steal = 0] = ticks
    return (user + nice + system + irq + softirq + steal) / TICKS_PER_SECOND
  } catch {
    return undefined
  }
}

/** CPU use over a timed phase: the relay, the generator, and everything else on the machine. */
export interface CpuShare {
  relaySeconds: number | undefined
  generatorSeconds: number
  /** Busy CPU of other processes (other builds or tests on a shared machine skew the figures). */
  otherSeconds: number | undefined
  /** The relay's resident memory at the end of the phase. */
  relayRssMiB: number | undefined
  /** Wall time between start and end of the measurement. */
  wallSeconds: number
}

const minus = (a: number | undefined, b: number | undefined): number | undefined => (a === undefined || b === undefined ? undefined : a - b)

/** Starts measuring CPU use of the relay, the generator and the rest; call the result when the phase ends. */
export const startCpuShare = (relayPid: number): (() => CpuShare) => {
  const relay0 = processCpuSeconds(relayPid)
  const own0 = ownCpuSeconds()
  const machine0 = machineBusySeconds()
  const started = performance.now()
  return () => {
    const relaySeconds = minus(processCpuSeconds(relayPid), relay0)
    const generatorSeconds = ownCpuSeconds() - own0
    const busy = minus(machineBusySeconds(), machine0)
    const other = relaySeconds === undefined ? undefined : minus(busy, relaySeconds + generatorSeconds)
    const otherSeconds = other === undefined ? undefined : Math.max(0, other)
    const wallSeconds = (performance.now() - started) / 1000
    return { relaySeconds, generatorSeconds, otherSeconds, relayRssMiB: processMemoryMiB(relayPid, 'VmRSS'), wallSeconds }
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
