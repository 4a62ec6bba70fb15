// What the figures were measured on, and the CPU time and memory of processes (Linux /proc), so that a report
// can say how the cores were shared between the service under test, the load generator and the rest.
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

// Linux reports CPU times in clock ticks; USER_HZ is 100 on every mainstream kernel build.
const TICKS_PER_SECOND = 100

/** CPU seconds of a process from /proc/PID/stat. */
export interface ProcStat {
  pid: number
  ppid: number
  /** The process group it belongs to. */
  pgrp: number
  /** utime + stime: all its threads, seconds. */
  own: number
  /** stime: in the kernel on the process's behalf (syscalls: socket writes and reads, fsync), seconds. */
  kernel: number
  /** cutime + cstime: children that exited and were waited for, seconds. */
  children: number
  childrenKernel: number
}

/** The CPU seconds of a process (or, with `file` /proc/PID/task/TID/stat, one thread) so far, or undefined off Linux (or once it is gone). */
export const readProcStat = (pid: number, file = `/proc/${pid}/stat`): ProcStat | undefined => {
  try {
    const stat = readFileSync(file, 'latin1')
    // Fields after the command name (which may contain spaces) start after the last ')': state is [0], ppid [1].
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ').map(Number)
    const at = (i: number) => f[i] ?? 0
    const seconds = (ticks: number) => ticks / TICKS_PER_SECOND
    return { pid, ppid: at(1), pgrp: at(2), own: seconds(at(11) + at(12)), kernel: seconds(at(12)), children: seconds(at(13) + at(14)), childrenKernel: seconds(at(14)) }
  } catch {
    return undefined
  }
}

/** CPU seconds used so far by the live processes of a process group (all their threads), or undefined off Linux. */
export const processGroupCpuSeconds = (pgid: number): number | undefined => {
  let pids: string[]
  try {
    pids = readdirSync('/proc').filter(d => /^\d+$/.test(d))
  } catch {
    return undefined
  }
  return pids.reduce((sum, d) => {
    const stat = readProcStat(Number(d))
    return stat?.pgrp === pgid ? sum + stat.own : sum
  }, 0)
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

/** Resident memory of a process in MiB (Linux /proc status field: VmRSS now, VmHWM peak), or undefined. */
export const processMemoryMiB = (pid: number, field: 'VmRSS' | 'VmHWM'): number | undefined => {
  try {
    const match = new RegExp(`${field}:\\s+(\\d+) kB`).exec(readFileSync(`/proc/${pid}/status`, 'latin1'))
    return match ? Number(match[1]) / 1024 : undefined
  } catch {
    return undefined
  }
}

/** a - b, or undefined when either is unknown. */
export const minus = (a: number | undefined, b: number | undefined): number | undefined => (a === undefined || b === undefined ? undefined : a - b)

/** The common part of a phase's CPU shares: the generator, everyone else, and the phase's wall time. */
export interface PhaseCpu {
  generatorSeconds: number
  /** Busy CPU of other processes (a build or test run elsewhere on a 2-core machine moves every figure). */
  otherSeconds: number | undefined
  /** Wall time between start and end of the measurement. */
  wallSeconds: number
}

/** `other processes used 0.77–0.82 cores during the timed phases`, or undefined when no phase knows. */
export const otherProcessesText = (shares: ReadonlyArray<Pick<PhaseCpu, 'otherSeconds' | 'wallSeconds'>>): string | undefined => {
  const others = shares.flatMap(s => (s.otherSeconds === undefined ? [] : [s.otherSeconds / s.wallSeconds]))
  return others.length === 0 ? undefined : `other processes used ${Math.min(...others).toFixed(2)}–${Math.max(...others).toFixed(2)} cores during the timed phases`
}
