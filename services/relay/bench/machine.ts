// How the two cores were shared between the relay and the load generator over a timed phase.
import { machineBusySeconds, minus, ownCpuSeconds, processMemoryMiB, readProcStat, type PhaseCpu } from '@msr/bench'

/** CPU use over a timed phase: the relay, the generator, and everything else on the machine. */
export interface CpuShare extends PhaseCpu {
  relaySeconds: number | undefined
  /** The relay's resident memory at the end of the phase. */
  relayRssMiB: number | undefined
}

/**
 * Starts measuring CPU use of the relay, the generator and the rest; call the result when the phase ends.
 * Without a relay pid (`--url`: the bench did not start it) the relay is not measured, and the rest of the
 * machine includes the relay when it runs here.
 */
export const startCpuShare = (relayPid: number | undefined): (() => CpuShare) => {
  if (relayPid === undefined) {
    const own0 = ownCpuSeconds()
    const machine0 = machineBusySeconds()
    const started = performance.now()
    return () => {
      const generatorSeconds = ownCpuSeconds() - own0
      const busy = minus(machineBusySeconds(), machine0)
      const otherSeconds = busy === undefined ? undefined : Math.max(0, busy - generatorSeconds)
      return { relaySeconds: undefined, generatorSeconds, otherSeconds, relayRssMiB: undefined, wallSeconds: (performance.now() - started) / 1000 }
    }
  }
  const relay0 = readProcStat(relayPid)?.own
  const own0 = ownCpuSeconds()
  const machine0 = machineBusySeconds()
  const started = performance.now()
  return () => {
    const relaySeconds = minus(readProcStat(relayPid)?.own, relay0)
    const generatorSeconds = ownCpuSeconds() - own0
    const busy = minus(machineBusySeconds(), machine0)
    const other = relaySeconds === undefined ? undefined : minus(busy, relaySeconds + generatorSeconds)
    const otherSeconds = other === undefined ? undefined : Math.max(0, other)
    const wallSeconds = (performance.now() - started) / 1000
    return { relaySeconds, generatorSeconds, otherSeconds, relayRssMiB: processMemoryMiB(relayPid, 'VmRSS'), wallSeconds }
  }
}
