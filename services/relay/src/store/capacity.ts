// How much of LMDB the store uses, and `data.max_size`: the cap past which events are refused as if the disk
// were full (an operator on Cloud Run keeps the store in memory, where an unbounded store eats the instance).
import { statfsSync } from 'node:fs'
import type { NostrEvent, Reason } from '@msr/nostr'
import type { Databases } from './databases.js'

/** The answer an event gets when the store cannot take it: the disk, LMDB's map or `data.max_size` is full. Reads go on. */
export const STORE_FULL: Reason = "error: the relay's storage is full; try again later"

interface PageStats {
  pageSize: number
  treeBranchPageCount: number
  treeLeafPageCount: number
  overflowPages: number
}

/** What lmdb-js's getStats() tells of the environment besides the database's own pages. */
interface EnvStats extends PageStats {
  lastPageNumber: number
}

const pagesOf = (s: PageStats): number => s.treeBranchPageCount + s.treeLeafPageCount + s.overflowPages

/**
 * Bytes of the pages that hold data: every named database's branch, leaf and overflow pages, and the main
 * database's (which names them). Pages LMDB freed and will reuse are not counted, nor the file's size
 * (LMDB never shrinks its file). Inside a write transaction, as of that transaction.
 */
export const usedBytes = (dbs: Databases): number => {
  const root = dbs.root.getStats() as EnvStats
  let pages = pagesOf(root)
  for (const [name, db] of Object.entries(dbs)) if (name !== 'root') pages += pagesOf(db.getStats() as PageStats)
  return pages * root.pageSize
}

/**
 * Whether the store uses `maxBytes` or more (0: no cap, never full). Cheap while the file's high-water mark
 * (LMDB's last page) is under the cap: one stat; only past it are the databases' pages counted.
 */
export const isFull = (dbs: Databases, maxBytes: number): boolean => {
  if (maxBytes <= 0) return false
  const root = dbs.root.getStats() as EnvStats
  if ((root.lastPageNumber + 1) * root.pageSize < maxBytes) return false
  return usedBytes(dbs) >= maxBytes
}

/** Whether an event may still be stored past the cap: a deletion (kind 5), which frees the space of what it deletes. */
export const storedWhenFull = (event: Pick<NostrEvent, 'kind'>): boolean => event.kind === 5

/** The most room a writable map asks of its tmpfs beyond the store: more than one transaction writes. */
const MAP_HEADROOM_MAX = 64 * 1024 * 1024

/** Room a writable map keeps free on a tmpfs of `bytes`: a tenth of it, at most MAP_HEADROOM_MAX. */
export const mapHeadroom = (bytes: number): number => Math.min(MAP_HEADROOM_MAX, Math.floor(bytes / 10))

/**
 * With a writable map (`data.write_map`, write-map.ts): whether the tmpfs holding the store at `path` has
 * less room left than mapHeadroom. A page written through the map into a full tmpfs ends the process
 * (SIGBUS) where a write call would fail, so EVENTs are refused as if the store were full, also when
 * something else filled the tmpfs. One statfs per transaction.
 */
export const mapRoomShort = (path: string): boolean => {
  const { bavail, bsize, blocks } = statfsSync(path)
  return bavail * bsize < mapHeadroom(blocks * bsize)
}
