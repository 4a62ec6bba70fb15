import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, it } from 'node:test'
import { parseFilter, type Filter } from '@msr/nostr'
import { publicKey, signed, type Ready } from '../testing/fixtures.js'
import { openDatabases } from './databases.js'
import { EventStore, type StoreOutcome } from './event-store.js'
import { hexBytes, timeKey, u32 } from './keys.js'
import { SCHEMA_VERSION, schemaVersion } from './migrate.js'

const T = 1_700_000_000
const ALICE = 1
const BOB = 2
const MALLORY = 3
const alice = publicKey(ALICE)
const DELETED: StoreOutcome = { status: 'rejected', reason: 'blocked: this event was deleted by its author' }

let dir: string

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'msr-migrate-'))
})

afterEach(() => rmSync(dir, { recursive: true, force: true }))

const put = async (store: EventStore, event: Ready): Promise<StoreOutcome | undefined> => (await store.write(tx => [tx.apply(event.event, Buffer.from(event.json))]))[0]

/** The raw `deleted_ids` keys and the recorded layout version, read with the store closed. */
const inspect = async (): Promise<{ tombstones: string[]; version: number }> => {
  const dbs = openDatabases(dir)
  const tombstones = [...dbs.deletedIds.getKeys()].map(key => Buffer.from(key).toString('hex')).sort()
  const version = schemaVersion(dbs)
  await dbs.root.close()
  return { tombstones, version }
}

/** The store's named databases whose names start with `by_author`, read with the store closed. */
const names = async (): Promise<string[]> => {
  const dbs = openDatabases(dir)
  // LMDB stores each name with its terminating NUL.
  const found = [...dbs.root.getKeys()].map(key => String(key).replace(/\0$/, '')).filter(name => name.startsWith('by_author')).sort()
  await dbs.root.close()
  return found
}

const parsed = (raw: Record<string, unknown>): Filter => {
  const result = parseFilter(raw)
  assert.ok(result.ok)
  return result.value
}

describe('EventStore.open: migration of older layouts', () => {
  it('turns version-1 tombstones (id → deleter) into id + deleter keys, which keep refusing the author only', async () => {
    const note = signed(ALICE, { kind: 443, content: 'deleted before the upgrade' })
    const bobsNote = signed(BOB, { content: 'named by Alice before it arrived' })
    // A store as the old code left it: Alice's kind 5s named her note and Bob's (not yet seen) note.
    const old = openDatabases(dir)
    await old.root.transaction(() => {
      old.deletedIds.putSync(hexBytes(note.event.id), hexBytes(alice))
      old.deletedIds.putSync(hexBytes(bobsNote.event.id), hexBytes(alice))
    })
    await old.root.close()

    const store = EventStore.open(dir)
    assert.deepEqual(await put(store, note), DELETED)
    // A stranger's deletion naming the gone event is stored (nothing shows whose it was) and lets nothing back in.
    assert.deepEqual(await put(store, signed(MALLORY, { kind: 5, created_at: T + 1, tags: [['e', note.event.id]] })), { status: 'stored' })
    assert.deepEqual(await put(store, note), DELETED)
    assert.deepEqual(await put(store, bobsNote), { status: 'stored' })
    await store.close()

    const migrated = await inspect()
    assert.equal(migrated.version, SCHEMA_VERSION)
    assert.deepEqual(
      migrated.tombstones,
      [note.event.id + alice, bobsNote.event.id + alice, note.event.id + publicKey(MALLORY)].sort(),
    )
    // Opening again changes nothing.
    const reopened = EventStore.open(dir)
    assert.deepEqual(await put(reopened, note), DELETED)
    await reopened.close()
    assert.deepEqual(await inspect(), migrated)
  })

  it('drops version 2\'s by_author index, and answers authors from by_author_kind', async () => {
    const events = [signed(ALICE, { kind: 1, created_at: T }), signed(ALICE, { kind: 7, created_at: T + 1 }), signed(BOB, { kind: 1, created_at: T + 2 })]
    const store = EventStore.open(dir)
    for (const event of events) await put(store, event)
    await store.close()
    // The store as version 2 left it: each event also in by_author (pubkey + inverted created_at + id).
    const old = openDatabases(dir)
    const byAuthor = old.root.openDB<Buffer, Buffer>({ name: 'by_author', keyEncoding: 'binary', encoding: 'binary' })
    await old.root.transaction(() => {
      for (const { event } of events) byAuthor.putSync(timeKey(hexBytes(event.pubkey), event.created_at, hexBytes(event.id)), Buffer.alloc(0))
      old.meta.putSync(Buffer.from('schema'), u32(2))
    })
    await old.root.close()
    assert.deepEqual(await names(), ['by_author', 'by_author_kind'])

    const migrated = EventStore.open(dir)
    const bounds = { limit: 10, now: T + 10, deadline: Infinity, clock: () => 0 }
    const served = migrated.query(parsed({ authors: [alice] }), bounds).events.map(e => e.id)
    assert.deepEqual(served, [events[1]?.event.id, events[0]?.event.id])
    await migrated.close()
    assert.deepEqual(await names(), ['by_author_kind'])
    assert.equal((await inspect()).version, SCHEMA_VERSION)
  })

  it('records the current version in a new store', async () => {
    await EventStore.open(dir).close()
    assert.deepEqual(await inspect(), { tombstones: [], version: SCHEMA_VERSION })
  })
})
