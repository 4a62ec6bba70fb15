import { mkdirSync } from 'node:fs'
import { open, type Database, type RootDatabase } from 'lmdb'
import { chunkedKeys, FIRST_KEY } from './key-chunks.js'

/** The named LMDB databases of the event store; see ARCHITECTURE.md for each key layout. */
export interface Databases {
  root: RootDatabase
  /** id → canonical event JSON (UTF-8 bytes, sent verbatim). */
  events: Database<Buffer, Buffer>
  /** inverted created_at + id. */
  byTime: Database<Buffer, Buffer>
  /** kind + inverted created_at + id. */
  byKind: Database<Buffer, Buffer>
  /** pubkey + kind + inverted created_at + id (also answers authors without kinds: one range per kind, merged). */
  byAuthorKind: Database<Buffer, Buffer>
  /** tag letter + value key + inverted created_at + id. */
  byTag: Database<Buffer, Buffer>
  /** kind + pubkey + d value key → id + created_at of the best version ever seen (kept when it is removed). */
  addresses: Database<Buffer, Buffer>
  /** target id + pubkey of the kind 5 naming it → empty (NIP-09 by `e`; refuses only that pubkey's event). */
  deletedIds: Database<Buffer, Buffer>
  /** address key → created_at up to which the author deleted it (NIP-09 by `a`). */
  deletedAddresses: Database<Buffer, Buffer>
  /** expiration + id, for the sweeper. */
  expiry: Database<Buffer, Buffer>
  /** id → expiration, for the query-time check. */
  expiryById: Database<Buffer, Buffer>
  /** sequence (u64 BE) → hint JSON: routing hints of stored 445/446 events not yet published. */
  outbox: Database<Buffer, Buffer>
  /** sequence (u64 BE) → header + canonical JSON: events accepted here not yet confirmed by the replication bus. */
  replication: Database<Buffer, Buffer>
  /** name → value: the store's own bookkeeping (`schema`: layout version, see migrate.ts). */
  meta: Database<Buffer, Buffer>
}

/** How the environment is opened; every opener of one store in a process must pass the same. */
export interface OpenOptions {
  /** LMDB's writable memory map (MDB_WRITEMAP): `data.write_map`, see write-map.ts. */
  writeMap?: boolean
}

/** Opens (creating when absent) the store's LMDB environment under `path`. */
export const openDatabases = (path: string, opts: OpenOptions = {}): Databases => {
  // Private to the relay's user: the store holds who writes to whom (p and h tags), whatever the encryption
  // of the content. Applies when the directory and files are created; an existing store keeps its modes.
  mkdirSync(path, { recursive: true, mode: 0o700 })
  const options = {
    path,
    maxDbs: 16,
    keyEncoding: 'binary',
    encoding: 'binary',
    compression: false,
    permissionsMode: 0o600,
    useWritemap: opts.writeMap === true,
  } as const
  // permissionsMode is read by lmdb-js's native open (src/env.cpp) but missing from its typings.
  const root = open(options as Omit<typeof options, 'permissionsMode'>)
  const binary = (name: string) => root.openDB<Buffer, Buffer>({ name, keyEncoding: 'binary', encoding: 'binary' })
  // The time-ordered indexes are read a range at a time: their keys come as views of shared chunks (key-chunks.ts).
  const index = (name: string) => {
    const options = { name, keyEncoder: chunkedKeys, encoding: 'binary' } as const
    // keyEncoder is read by lmdb-js's openDB (open.js, keys.js) but its typings have it on the root's options only.
    const db = root.openDB<Buffer, Buffer>(options as Omit<typeof options, 'keyEncoder'>)
    // lmdb-js's start for a range without one, which it reads from the database object (open.js, read.js).
    ;(db as unknown as { defaultBeginningKey: Buffer }).defaultBeginningKey = FIRST_KEY
    return db
  }
  return {
    root,
    events: binary('events'),
    byTime: index('by_time'),
    byKind: index('by_kind'),
    byAuthorKind: index('by_author_kind'),
    byTag: index('by_tag'),
    addresses: binary('addresses'),
    deletedIds: binary('deleted_ids'),
    deletedAddresses: binary('deleted_addresses'),
    expiry: binary('expiry'),
    expiryById: binary('expiry_by_id'),
    outbox: binary('hint_outbox'),
    replication: binary('replication_outbox'),
    meta: binary('meta'),
  }
}
