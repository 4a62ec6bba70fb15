// `data.write_map`: the store written through LMDB's writable memory map (MDB_WRITEMAP) instead of write
// calls, for a store in memory. LMDB then changes pages in place in the mapped file: no copy of each
// page it changes, no write call per page at commit. In memory (tmpfs) that made ingest 12 % faster here
// (five pairs); on ext4 it halved it, every page written through the map costing a fault into the file
// system, so it is refused off tmpfs.
//
// A memory file system that fills up cannot take a page written through a map: the process gets SIGBUS
// and dies, where a write call would have failed with ENOSPC (answered `error:`, see writer.ts). So while
// the map is writable the store is capped at 90 % of the tmpfs (memoryStoreCap), and EVENTs are refused
// while the tmpfs is nearly full, whatever filled it (mapRoomShort, capacity.ts).
import { mkdirSync, statfsSync } from 'node:fs'
import { EventStore } from './event-store.js'

/** statfs's f_type of tmpfs (Linux, <linux/magic.h>): /dev/shm, a Cloud Run in-memory volume. */
export const TMPFS_MAGIC = 0x01021994

/** The share of the file system the store may use with a writable map: room for LMDB's free pages and lock file. */
export const WRITE_MAP_SHARE = 0.9

/** What statfs says of a file system (the fields this needs). */
export interface FileSystemStats {
  type: number
  blocks: number
  bsize: number
}

/**
 * The cap a writable map puts on a store whose file system is `stats`, in bytes; or why the map may not be
 * writable there (not tmpfs).
 */
export const writeMapCap = (stats: FileSystemStats): { cap: number } | { problem: string } =>
  stats.type !== TMPFS_MAGIC
    ? { problem: `file system type 0x${stats.type.toString(16)} is not tmpfs (0x${TMPFS_MAGIC.toString(16)})` }
    : stats.blocks * stats.bsize <= 0
      ? { problem: 'the tmpfs reports no size' }
      : { cap: Math.floor(WRITE_MAP_SHARE * stats.blocks * stats.bsize) }

/** Whether `path` exists on a tmpfs (tests choose where to run with it). */
export const onTmpfs = (path: string): boolean => {
  try {
    return statfsSync(path).type === TMPFS_MAGIC
  } catch {
    return false
  }
}

/**
 * Checks that the store at `path` (created when absent) may be written through the map and returns its
 * cap in bytes; throws, saying why, when it may not.
 */
export const memoryStoreCap = (path: string): number => {
  mkdirSync(path, { recursive: true, mode: 0o700 })
  const found = writeMapCap(statfsSync(path))
  if ('problem' in found) throw new Error(`data.write_map needs the store on a memory file system (tmpfs): ${path}: ${found.problem}`)
  return found.cap
}

/** The cap in force: `data.max_size` (0: none), lowered to the writable map's cap when there is one (0: none). */
export const effectiveCap = (maxSize: number, mapCap: number): number =>
  mapCap <= 0 ? maxSize : maxSize > 0 ? Math.min(maxSize, mapCap) : mapCap

/** The store a command opens, and the cap its writable map puts on it (0: none). */
export interface ConfiguredStore {
  store: EventStore
  mapCap: number
}

/**
 * Opens the store at `data.path` the way `data.write_map` says (checked first, see memoryStoreCap), as
 * every command on a store must: a process opens an environment one way.
 */
export const openConfiguredStore = (data: { path: string; write_map: boolean }, opts: { hints?: boolean } = {}): ConfiguredStore => {
  const mapCap = data.write_map ? memoryStoreCap(data.path) : 0
  return { store: EventStore.open(data.path, { ...opts, writeMap: data.write_map }), mapCap }
}
