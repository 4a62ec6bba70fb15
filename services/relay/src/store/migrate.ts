import type { Database } from 'lmdb'
import type { Databases } from './databases.js'
import { u32 } from './keys.js'

/**
 * Layout versions of the store:
 * 1. `deleted_ids`: target id (32 bytes) → pubkey of the deleter. A stranger's kind 5 naming a deleted
 *    event overwrote its author's tombstone, so the event could be published again.
 * 2. `deleted_ids`: target id + deleter pubkey (64 bytes) → empty.
 * 3. `by_author` (pubkey + inverted created_at + id) is gone: authors without kinds are answered from
 *    `by_author_kind`, one range per kind the author has, merged (query.ts). One index fewer per event.
 */
export const SCHEMA_VERSION = 3

const SCHEMA_KEY = Buffer.from('schema')
const EMPTY = Buffer.alloc(0)

/** The layout version recorded in `meta`; a store written before `meta` existed is version 1. */
export const schemaVersion = (dbs: Databases): number => dbs.meta.get(SCHEMA_KEY)?.readUInt32BE(0) ?? 1

/**
 * Brings the store to the current layout in one write transaction (a crash leaves it as it was). Idempotent:
 * a store already current costs one read, so every opener (the relay, its query workers, the CLI) may call it.
 */
export const migrate = (dbs: Databases): void => {
  if (schemaVersion(dbs) >= SCHEMA_VERSION) return
  // Opened before the transaction (lmdb-js opens a database in a transaction of its own); absent in a new store.
  // `create: false` (undefined when absent) is read by lmdb-js's openDB (open.js) but missing from its typings.
  const options = { name: 'by_author', create: false, keyEncoding: 'binary', encoding: 'binary' } as const
  const byAuthor: Database<Buffer, Buffer> | undefined = dbs.root.openDB<Buffer, Buffer>(options as Omit<typeof options, 'create'>)
  dbs.root.transactionSync(() => {
    const version = schemaVersion(dbs)
    if (version >= SCHEMA_VERSION) return // another opener got there first
    if (version < 2) rekeyTombstones(dbs)
    // Version 2 → 3: its pages go back to the free list, in this transaction (a nested transactionSync).
    byAuthor?.dropSync()
    dbs.meta.putSync(SCHEMA_KEY, u32(SCHEMA_VERSION))
  })
}

/** Version 1 → 2: each 32-byte tombstone (value: deleter) becomes the 64-byte key id + deleter. */
const rekeyTombstones = (dbs: Databases): void => {
  // Collected first: the range is not written to while it is being read.
  const old = [...dbs.deletedIds.getRange()].filter(({ key }) => key.length === 32).map(({ key, value }) => [Buffer.from(key), Buffer.from(value)] as const)
  for (const [id, deleter] of old) {
    dbs.deletedIds.removeSync(id)
    if (deleter.length === 32) dbs.deletedIds.putSync(Buffer.concat([id, deleter]), EMPTY)
  }
}
