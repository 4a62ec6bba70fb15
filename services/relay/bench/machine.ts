// How the two cores were shared between the relay(s), the Pub/Sub emulator and the load generator over a timed phase.
import { machineBusySeconds, minus, ownCpuSeconds, processGroupCpuSeconds, processMemoryMiB, readProcStat, type PhaseCpu } from '@msr/bench'

/** CPU use over a timed phase: the relay, the generator, and everything else on the machine. */
export interface CpuShare extends PhaseCpu {
  relaySeconds: number | undefined
  /** The relay's resident memory at the end of the phase. */
  relayRssMiB: number | undefined
}

/** CPU use over a timed phase of several relays and the emulator (`--replication`); `otherSeconds` excludes them all. */
export interface ClusterCpu extends PhaseCpu {
  /** Each relay's CPU seconds (all its threads), in the order of the pids given. */
  relaySeconds: Array<number | undefined>
  /** The emulator's process group (its JVM), or undefined when there is none. */
  emulatorSeconds: number | undefined
}

/**
 * Starts measuring the CPU of the relays (by pid), of the emulator (by process group) and of the generator; call
 * the result when the phase ends. The rest of the machine is its busy time less all of them.
 */
export const startClusterCpu = (relayPids: readonly number[], emulatorGroup?: number): (() => ClusterCpu) => {
  const relays0 = relayPids.map(pid => readProcStat(pid)?.own)
  const emulator0 = emulatorGroup === undefined ? undefined : processGroupCpuSeconds(emulatorGroup)
  const own0 = ownCpuSeconds()
  const machine0 = machineBusySeconds()
  const started = performance.now()
  return () => {
    const relaySeconds = relayPids.map((pid, i) => minus(readProcStat(pid)?.own, relays0[i]))
    const emulatorSeconds = emulatorGroup === undefined ? undefined : minus(processGroupCpuSeconds(emulatorGroup), emulator0)
    const generatorSeconds = ownCpuSeconds() - own0
    const measured = relaySeconds.some(s => s === undefined) ? undefined : relaySeconds.reduce<number>((sum, s) => sum + (s ?? 0), generatorSeconds + (emulatorSeconds ?? 0))
    const other = minus(minus(machineBusySeconds(), machine0), measured)
    return { relaySeconds, emulatorSeconds, generatorSeconds, otherSeconds: other === undefined ? undefined : Math.max(0, other), wallSeconds: (performance.now() - started) / 1000 }
  }
}

/** Before a run: other processes must use at most this many cores over half a second … */
const QUIET_CORES = 0.25
/** … but the run starts anyway after this long (by default). */
const QUIET_MAX_MS = 20_000

/**
 * Waits until the rest of the machine (all but the relays, the emulator and the generator) uses at most
 * QUIET_CORES, at most `maxMs`; returns how long it waited (0.5 s at least: one sample).
 */
export const waitForQuiet = async (relayPids: readonly number[], emulatorGroup?: number, maxMs = QUIET_MAX_MS): Promise<number> => {
  const started = performance.now()
  while (performance.now() - started < maxMs) {
    const end = startClusterCpu(relayPids, emulatorGroup)
    await new Promise(resolve => setTimeout(resolve, 500))
    const { otherSeconds, wallSeconds } = end()
    if (otherSeconds === undefined || otherSeconds / wallSeconds <= QUIET_CORES) break
  }
  return (performance.now() - started) / 1000
}

/**
 * Starts measuring CPU use of the relay, the generator and the rest; call the result when the phase ends.
 * Without a relay pid (`--url`: the bench did not start it) the relay is not measured, and the rest of the
 * machine includes the relay when it runs here.
 */
export const startCpuShare = (relayPid: number | undefined): (() => CpuShare) => {
  const end = startClusterCpu(relayPid === undefined ? [] : [relayPid])
  return () => {
    const { relaySeconds, emulatorSeconds: _none, ...cpu } = end()
    if (relayPid === undefined) return { ...cpu, relaySeconds: undefined, relayRssMiB: undefined }
    const [seconds] = relaySeconds
    return { ...cpu, relaySeconds: seconds, otherSeconds: seconds === undefined ? undefined : cpu.otherSeconds, relayRssMiB: processMemoryMiB(relayPid, 'VmRSS') }
  }
}
