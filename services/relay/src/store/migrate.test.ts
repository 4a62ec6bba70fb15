import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, it } from 'node:test'
import { publicKey, signed, type Ready } from '../testing/fixtures.js'
import { openDatabases } from './databases.js'
import { EventStore, type StoreOutcome } from './event-store.js'
import { hexBytes } from './keys.js'
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

  it('records the current version in a new store', async () => {
    await EventStore.open(dir).close()
    assert.deepEqual(await inspect(), { tombstones: [], version: SCHEMA_VERSION })
  })
})
