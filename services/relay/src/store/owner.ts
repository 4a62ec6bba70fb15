import { readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'

/** The file a serving relay keeps in its data directory: its process id. */
const OWNER_FILE = 'relay.pid'

/** The process id of a live relay serving the store at `path`, if one is (a stale file from a crash is ignored). */
export const storeOwner = (path: string): number | undefined => {
  let pid: number
  try {
    pid = Number(readFileSync(join(path, OWNER_FILE), 'utf8').trim())
  } catch {
    return undefined
  }
  if (!Number.isInteger(pid) || pid <= 0 || pid === process.pid) return undefined
  try {
    process.kill(pid, 0)
    return pid
  } catch (error) {
    return (error as { code?: string }).code === 'EPERM' ? pid : undefined
  }
}

/**
 * Marks the store at `path` as served by this process, so that `msr-relay import` can refuse to write
 * under a running relay (it would bypass its single writer, its fan-out and its hints). Returns the
 * function that removes the mark.
 */
export const claimStore = (path: string): (() => void) => {
  const file = join(path, OWNER_FILE)
  writeFileSync(file, `${process.pid}\n`)
  return () => rmSync(file, { force: true })
}
