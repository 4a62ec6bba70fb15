import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'

/** The file a serving relay keeps in its data directory: its process id and, on Linux, its start time. */
const OWNER_FILE = 'relay.pid'

/**
 * When a process started (clock ticks since boot: field 22 of /proc/<pid>/stat), or undefined where there
 * is no /proc. With the pid it names one process for good: a pid reused after a crash has another.
 */
const startedAt = (pid: number | 'self'): string | undefined => {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    // The fields after the command name (which may hold spaces) start at field 3.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[22 - 3]
  } catch {
    return undefined
  }
}

/** The pid and start time an owner file holds, if it holds a pid. */
const readOwner = (file: string): { pid: number; started: string | undefined } | undefined => {
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch {
    return undefined
  }
  const [pid, started] = text.trim().split(/\s+/)
  const n = Number(pid)
  return Number.isInteger(n) && n > 0 ? { pid: n, started } : undefined
}

/**
 * The process id of a live relay serving the store at `path`, if one is: not this process, and not a stale
 * file from a crash (no such process, or on Linux one that started at another time: its pid was reused).
 */
export const storeOwner = (path: string): number | undefined => {
  const owner = readOwner(join(path, OWNER_FILE))
  if (!owner || owner.pid === process.pid) return undefined
  try {
    process.kill(owner.pid, 0)
  } catch (error) {
    if ((error as { code?: string }).code !== 'EPERM') return undefined
  }
  const started = owner.started === undefined ? undefined : startedAt(owner.pid)
  return started !== undefined && started !== owner.started ? undefined : owner.pid
}

/**
 * Marks the store at `path` as served by this process, so that `msr-relay import` can refuse to write
 * under a running relay (it would bypass its single writer, its fan-out and its hints), and refuses (throws)
 * when another live relay serves it already: one process serves a store. Returns the function that removes
 * the mark, if it is still this process's.
 */
export const claimStore = (path: string): (() => void) => {
  const owner = storeOwner(path)
  if (owner !== undefined)
    throw new Error(`another relay (pid ${owner}) serves the store at ${path}: one process serves a store; stop that one, or give this one its own data.path`)
  mkdirSync(path, { recursive: true, mode: 0o700 })
  const file = join(path, OWNER_FILE)
  writeFileSync(file, `${process.pid} ${startedAt('self') ?? ''}`.trimEnd() + '\n')
  return () => {
    if (readOwner(file)?.pid === process.pid) rmSync(file, { force: true })
  }
}
