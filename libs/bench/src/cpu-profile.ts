// Summarizes a service's `--cpu-prof` output: self time per function and per module, heaviest first, per thread
// and per benchmark phase. V8 stamps samples with the monotonic clock that process.hrtime reads, so phases timed
// by the generator select the service's samples directly.
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
  /** 0: the service's main thread; others are its worker threads. */
  thread: number
  sampledMs: number
  /** Sampled time that was not idle (wall time: includes time the thread waited for a core). */
  busyMs: number
  top: HotFunction[]
  /** Self time by package or source file: native frames count for the JavaScript that called them. */
  modules: HotFunction[]
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

/** `express`, `pg`, `@msr/nostr`, `src/auth/nip98.js`, `node core`: where a script URL belongs. */
const moduleOf = (url: string): string => {
  if (url.startsWith('node:')) return 'node core'
  const path = shorten(url)
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(path)
  if (pkg) return pkg[1] as string
  const lib = /^libs\/([^/]+)\//.exec(path)
  if (lib) return `@msr/${lib[1]}`
  return path.replace(/^services\/[^/]+\/dist\//, '')
}

/** The module of the nearest ancestor with a script (for native frames), or the frame's own name ('(garbage collector)'). */
const moduleOfNode = (node: ProfileNode, parents: Map<number, ProfileNode>): string => {
  for (let n: ProfileNode | undefined = node; n; n = parents.get(n.id)) if (n.callFrame.url) return moduleOf(n.callFrame.url)
  return node.callFrame.functionName || '(anonymous)'
}

const heaviest = (entries: Iterable<{ name: string; where: string; us: number }>, top: number, busy: number): HotFunction[] =>
  [...entries]
    .sort((a, b) => b.us - a.us)
    .slice(0, top)
    .map(f => ({ name: f.name, where: f.where, selfMs: f.us / 1000, percent: busy > 0 ? (100 * f.us) / busy : 0 }))

/** Self time per function (and per module) of one profile within [fromUs, toUs), heaviest first. */
export const summarizeThread = ({ profile, thread }: ThreadProfile, phase: Pick<Phase, 'fromUs' | 'toUs'>, top: number): ThreadSummary => {
  const nodes = new Map(profile.nodes.map(n => [n.id, n]))
  const parents = new Map<number, ProfileNode>()
  for (const n of profile.nodes) for (const child of n.children ?? []) parents.set(child, n)
  const self = new Map<string, { name: string; where: string; us: number }>()
  const byModule = new Map<string, { name: string; where: string; us: number }>()
  let at = profile.startTime
  let sampled = 0
  let idle = 0
  profile.samples.forEach((id, i) => {
    const us = profile.timeDeltas[i] ?? 0
    at += us
    const node = nodes.get(id)
    const frame = node?.callFrame
    if (!node || !frame || at < phase.fromUs || at >= phase.toUs) return
    sampled += us
    if (frame.functionName === '(idle)') return void (idle += us)
    const name = frame.functionName || '(anonymous)'
    const where = frame.url ? `${shorten(frame.url)}:${frame.lineNumber + 1}` : calledFrom(parents.get(id))
    const key = `${name} ${where}`
    const entry = self.get(key) ?? { name, where, us: 0 }
    entry.us += us
    self.set(key, entry)
    const module = moduleOfNode(node, parents)
    const group = byModule.get(module) ?? { name: module, where: '', us: 0 }
    group.us += us
    byModule.set(module, group)
  })
  const busy = sampled - idle
  return { thread, sampledMs: sampled / 1000, busyMs: busy / 1000, top: heaviest(self.values(), top, busy), modules: heaviest(byModule.values(), top, busy) }
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
