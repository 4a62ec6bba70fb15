// Summarizes the relay's `--cpu-prof` output: self time per function, heaviest first, per thread and per
// benchmark phase. V8 stamps samples with the monotonic clock that process.hrtime reads, so phases timed by
// the generator select the relay's samples directly.
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'

interface ProfileNode {
  id: number
  callFrame: { functionName: string; url: string; lineNumber: number }
  children?: number[]
}

interface CpuProfile {
  nodes: ProfileNode[]
  samples: number[]
  timeDeltas: number[]
  startTime: number
  endTime: number
}

/** A span of monotonic time (µs, process.hrtime's clock). */
export interface Phase {
  name: string
  fromUs: number
  toUs: number
}

/** One function's share of a thread's samples. */
export interface HotFunction {
  name: string
  where: string
  selfMs: number
  percent: number
}

/** A thread's samples within a phase. */
export interface ThreadSummary {
  /** 0: the relay's main thread; others are its verifier workers. */
  thread: number
  sampledMs: number
  /** Sampled time that was not idle (wall time: includes time the thread waited for a core). */
  busyMs: number
  top: HotFunction[]
}

/** A loaded profile and the thread it belongs to. */
export interface ThreadProfile {
  file: string
  thread: number
  profile: CpuProfile
}

/** The monotonic clock in µs, as V8 stamps profile samples. */
export const nowUs = (): number => Number(process.hrtime.bigint() / 1000n)

const shorten = (url: string): string => {
  const path = url.replace(/^file:\/\//, '')
  const at = path.search(/(services|libs|node_modules)\//)
  return at >= 0 ? path.slice(at) : path
}

/** For a native frame (no script): who called it, since that names what the time was spent on. */
const calledFrom = (parent: ProfileNode | undefined): string => {
  const frame = parent?.callFrame
  if (!frame?.url) return ''
  return `called by ${frame.functionName || '(anonymous)'} ${shorten(frame.url)}:${frame.lineNumber + 1}`
}

/** Self time per function of one profile within [fromUs, toUs), heaviest first. */
export const summarizeThread = ({ profile, thread }: ThreadProfile, phase: Pick<Phase, 'fromUs' | 'toUs'>, top: number): ThreadSummary => {
  const nodes = new Map(profile.nodes.map(n => [n.id, n]))
  const parents = new Map<number, ProfileNode>()
  for (const n of profile.nodes) for (const child of n.children ?? []) parents.set(child, n)
  const self = new Map<string, { name: string; where: string; us: number }>()
  let at = profile.startTime
  let sampled = 0
  let idle = 0
  profile.samples.forEach((id, i) => {
    const us = profile.timeDeltas[i] ?? 0
    at += us
    const frame = nodes.get(id)?.callFrame
    if (!frame || at < phase.fromUs || at >= phase.toUs) return
    sampled += us
    if (frame.functionName === '(idle)') return void (idle += us)
    const name = frame.functionName || '(anonymous)'
    const where = frame.url ? `${shorten(frame.url)}:${frame.lineNumber + 1}` : calledFrom(parents.get(id))
    const key = `${name} ${where}`
    const entry = self.get(key) ?? { name, where, us: 0 }
    entry.us += us
    self.set(key, entry)
  })
  const busy = sampled - idle
  const hot = [...self.values()]
    .sort((a, b) => b.us - a.us)
    .slice(0, top)
    .map(f => ({ name: f.name, where: f.where, selfMs: f.us / 1000, percent: busy > 0 ? (100 * f.us) / busy : 0 }))
  return { thread, sampledMs: sampled / 1000, busyMs: busy / 1000, top: hot }
}

/** Every `.cpuprofile` in a directory (Node names them CPU.<date>.<time>.<pid>.<thread>.<seq>.cpuprofile). */
export const loadProfiles = (dir: string): ThreadProfile[] =>
  readdirSync(dir)
    .filter(f => f.endsWith('.cpuprofile'))
    .sort()
    .map(file => ({
      file: join(dir, file),
      thread: Number(file.split('.')[4] ?? -1),
      profile: JSON.parse(readFileSync(join(dir, file), 'utf8')) as CpuProfile,
    }))
