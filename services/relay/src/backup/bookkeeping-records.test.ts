// A snapshot's bookkeeping records: what a restore cannot rebuild from the events (a mark whose version was
// deleted or expired, a tombstone whose kind 5 expired) survives it, so a deleted event or an older version
// is still refused afterwards. Real LMDB stores, a directory of snapshots, the in-process writer.
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { afterEach, describe, it } from 'node:test'
import { openSnapshotStore, readLines, type SnapshotStore } from '@msr/storage'
import { createLogger } from '@msr/telemetry'
import { Writer } from '../pipeline/writer.js'
import { EventStore } from '../store/event-store.js'
import { addressKey } from '../store/keys.js'
import { publicKey, signed, type Ready } from '../testing/fixtures.js'
import { restoreNewest, takeDelta, takeSnapshot } from './backups.js'
import { formatRecord, parseRecord } from './bookkeeping-records.js'

const logger = createLogger({ service: 'relay-test', level: 'fatal' })
const now = () => Math.floor(Date.now() / 1000)
const DELETED = 'blocked: this event was deleted by its author'
const OLDER = 'invalid: a newer version of this replaceable event is already stored'

describe('bookkeeping records in snapshots', () => {
  const cleanup: Array<() => Promise<unknown>> = []
  afterEach(async () => {
    for (const undo of cleanup.splice(0).reverse()) await undo()
  })

  const dir = async (): Promise<string> => {
    const path = await mkdtemp(join(tmpdir(), 'msr-bookkeeping-'))
    cleanup.push(() => rm(path, { recursive: true, force: true }))
    return path
  }

  const open = async (): Promise<{ store: EventStore; writer: Writer }> => {
    const store = EventStore.open(await dir())
    const writer = new Writer(store, error => assert.fail(String(error)))
    cleanup.push(() => writer.close().then(() => store.close()))
    return { store, writer }
  }

  const submit = (writer: Writer, { event, json }: Ready) => writer.submit(event, Buffer.from(json), undefined, 'replica')
  const store = async (writer: Writer, ...events: Ready[]) => {
    for (const e of events) assert.equal((await submit(writer, e)).status, 'stored', e.event.content)
  }
  const outcomes = async (writer: Writer, events: Ready[]) => Promise.all(events.map(async e => {
    const outcome = await submit(writer, e)
    return outcome.status === 'rejected' ? outcome.reason : outcome.status
  }))
  const served = (s: EventStore) => [...s.allEvents()].map(json => (JSON.parse(json.toString('utf8')) as { id: string }).id)

  const restore = async (snapshots: SnapshotStore) => {
    const target = await open()
    const restored = await restoreNewest(snapshots, { ...target, queueHints: false, queueReplication: false }, logger)
    target.store.refresh()
    return { ...target, restored }
  }

  const linesOf = async (snapshots: SnapshotStore, name: string): Promise<string[]> => {
    const lines: string[] = []
    for await (const { line } of readLines(await snapshots.get(name))) lines.push(line)
    return lines
  }

  /**
   * The tester's store: V1 then V2 of a replaceable, V2 deleted by `e`; X deleted by a kind 5 that expired
   * (and was swept); an addressable deleted by `a` with an expiring kind 5; an addressable whose newest version
   * expires within two seconds (stored when the snapshot is written, refused as expired when it is restored).
   */
  const tester = async () => {
    const origin = await open()
    const t = now()
    const v1 = signed(1, { kind: 10070, created_at: t - 100, content: 'V1' })
    const v2 = signed(1, { kind: 10070, created_at: t - 50, content: 'V2' })
    const d = signed(1, { kind: 5, created_at: t - 40, tags: [['e', v2.event.id]] })
    const x = signed(1, { kind: 1, created_at: t - 30, content: 'X' })
    const d2 = signed(1, { kind: 5, created_at: t - 20, tags: [['e', x.event.id], ['expiration', String(t + 1)]] })
    const list = signed(2, { kind: 30000, created_at: t - 30, tags: [['d', 'list']], content: 'list' })
    const byA = signed(2, { kind: 5, created_at: t - 20, tags: [['a', `30000:${publicKey(2)}:list`], ['expiration', String(t + 1)]] })
    const old = signed(3, { kind: 30001, created_at: t - 30, tags: [['d', 'x']], content: 'old' })
    const fleeting = signed(3, { kind: 30001, created_at: t - 10, tags: [['d', 'x'], ['expiration', String(t + 2)]], content: 'fleeting' })
    const kept = signed(4, { kind: 1, created_at: t - 5, content: 'kept' })
    await store(origin.writer, v1, v2, d, x, d2, list, byA, old, fleeting, kept)
    assert.deepEqual(await outcomes(origin.writer, [v1, x, list, old]), [OLDER, DELETED, DELETED, OLDER], 'refused before any snapshot')
    // The two kind 5s expire and are swept: only their tombstone and deleted address remain.
    assert.equal(await origin.writer.sweepExpired(t + 1), 2)
    origin.store.refresh()
    return { ...origin, refused: [v1, x, list, old], fleeting, kept, d }
  }

  const waitPast = async (unix: number) => {
    while (Date.now() / 1000 <= unix) await new Promise(resolve => setTimeout(resolve, 100))
  }

  it('a restore into an empty store still refuses the deleted event and the older versions; served events are unchanged', async () => {
    const origin = await tester()
    const snapshots = openSnapshotStore(await dir())
    const { info } = await takeSnapshot(origin.store, snapshots, 3)
    const expected = served(origin.store).filter(id => id !== origin.fleeting.event.id).sort()
    const lines = await linesOf(snapshots, info.name)
    const records = lines.filter(l => l.startsWith('{"bookkeeping":'))
    // Marks of V2 and the list (deleted) and of the fleeting version (it expires); two tombstones (V2's, X's); one deleted address.
    assert.equal(records.length, 6, records.join('\n'))
    assert.ok(!records.some(r => r.includes(origin.kept.event.id)))
    await waitPast(origin.fleeting.event.created_at + 12) // its expiration: refused by the restore's import

    const restored = await restore(snapshots)
    assert.equal(restored.restored?.summary.bookkeeping, 6)
    assert.deepEqual(served(restored.store).sort(), expected)
    assert.deepEqual(await outcomes(restored.writer, origin.refused), [OLDER, DELETED, DELETED, OLDER])
    assert.deepEqual(served(restored.store).sort(), expected, 'nothing refused was stored')
  })

  it('a full snapshot then a delta: the delta carries the bookkeeping, and its tombstone removes an event the full one restored', async () => {
    const origin = await open()
    const t = now()
    const y = signed(5, { kind: 1, created_at: t - 60, content: 'Y' })
    const p1 = signed(5, { kind: 0, created_at: t - 60, content: 'p1' })
    await store(origin.writer, y, p1)
    const snapshots = openSnapshotStore(await dir())
    await takeSnapshot(origin.store, snapshots, 3)
    const p2 = signed(5, { kind: 0, created_at: t - 50, content: 'p2' })
    const dropP2 = signed(5, { kind: 5, created_at: t - 40, tags: [['e', p2.event.id]] })
    const expiring = signed(5, { kind: 5, created_at: t - 39, tags: [['e', y.event.id], ['expiration', String(t + 1)]] })
    await store(origin.writer, p2, dropP2, expiring)
    assert.equal(await origin.writer.sweepExpired(t + 1), 1)
    origin.store.refresh()
    // The delta's ids: what was committed since the full snapshot (the expired kind 5 is no longer stored).
    await takeDelta(origin.store, snapshots, [p2, dropP2, expiring].map(e => e.event.id))
    const restored = await restore(snapshots)
    assert.deepEqual(served(restored.store).sort(), served(origin.store).sort())
    assert.ok(!served(restored.store).includes(y.event.id), "the delta's tombstone removed Y, restored from the full snapshot")
    assert.deepEqual(await outcomes(restored.writer, [y, p1, p2]), [DELETED, OLDER, DELETED])
  })

  it('an old snapshot without records restores as before; malformed records are counted and skipped, the valid ones applied', async () => {
    const old = openSnapshotStore(await dir())
    const events = [signed(6, { content: 'old format' }), signed(7, { content: 'old format too' })]
    await old.put(Readable.from(events.map(e => `${e.json}\n`)), { kind: 'full' })
    const plain = await restore(old)
    assert.equal(plain.restored?.summary.imported, 2)
    assert.equal(plain.restored?.summary.bookkeeping, 0)
    assert.equal(plain.restored?.summary.invalid.size, 0)

    const target = signed(8, { content: 'to be blocked' })
    const address = addressKey(10070, publicKey(8), '').toString('hex')
    const good = formatRecord({ type: 'tombstone', id: target.event.id, by: publicKey(8) })
    const bad = [
      '{"bookkeeping":{"v":2,"tombstone":"' + target.event.id + '","by":"' + publicKey(8) + '"}}',
      '{"bookkeeping":{"v":1,"tombstone":"' + target.event.id + '","by":"' + publicKey(8) + '","extra":1}}',
      '{"bookkeeping":{"v":1,"mark":"' + addressKey(1, publicKey(8), '').toString('hex') + '","id":"' + target.event.id + '","created_at":1}}',
      '{"bookkeeping":{"v":1,"mark":"' + address + '","id":"' + target.event.id + '","created_at":-1}}',
      '{"bookkeeping":{"v":1,"deleted_address":"' + address + 'ff","upto":5}}',
      '{"bookkeeping":{"v":1,"tombstone":"' + target.event.id.toUpperCase() + '","by":"' + publicKey(8) + '"}}',
      '{"bookkeeping":',
      '{"bookkeeping":[1]}',
    ]
    const hand = openSnapshotStore(await dir())
    await hand.put(Readable.from([`${events[0]?.json}\n`, good, ...bad.map(l => `${l}\n`)]), { kind: 'full' })
    const restored = await restore(hand)
    assert.equal(restored.restored?.summary.imported, 1)
    assert.equal(restored.restored?.summary.bookkeeping, 1)
    assert.deepEqual(Object.fromEntries(restored.restored?.summary.invalid ?? []), {
      'invalid: bookkeeping record: not a bookkeeping record': bad.length - 1,
      'invalid: bookkeeping record: not JSON': 1,
    })
    assert.deepEqual(await outcomes(restored.writer, [target]), [DELETED])
  })

  it("a restore's summary adds up what each snapshot refused, a delta's too", async () => {
    const snapshots = openSnapshotStore(await dir())
    const [a, b] = [signed(10, { content: 'in the full snapshot' }), signed(11, { content: 'in the delta' })]
    await snapshots.put(Readable.from([`${a.json}\n`, 'not json\n']), { kind: 'full' })
    await snapshots.put(Readable.from([`${b.json}\n`, 'not json either\n', '{"bookkeeping":[1]}\n']), { kind: 'delta' })
    const { restored } = await restore(snapshots)
    assert.equal(restored?.summary.imported, 2)
    assert.deepEqual(Object.fromEntries(restored?.summary.invalid ?? []), {
      'invalid: not JSON': 2,
      'invalid: bookkeeping record: not a bookkeeping record': 1,
    })
  })

  it("a record naming another address's event never removes it, however the marks and deletions follow", async () => {
    const { store: s, writer } = await open()
    const t = now()
    const note = signed(12, { kind: 1, created_at: t - 50, content: 'a note' })
    const list = signed(13, { kind: 30000, created_at: t - 50, tags: [['d', 'list']], content: 'a list' })
    await store(writer, note, list)
    const unused = addressKey(0, publicKey(14), '').toString('hex')
    const other = addressKey(10002, publicKey(14), '').toString('hex')
    await writer.applyRecords([
      // A mark naming the note on an address it is not at, then a higher one: the note was the "previous version".
      { type: 'mark', address: unused, id: note.event.id, createdAt: 5 },
      { type: 'mark', address: unused, id: 'ff'.repeat(32), createdAt: 10 },
      // A mark naming the list elsewhere, then that address deleted.
      { type: 'mark', address: other, id: list.event.id, createdAt: 5 },
      { type: 'deleted-address', address: other, upTo: 100 },
    ])
    s.refresh()
    assert.deepEqual(served(s).sort(), [note.event.id, list.event.id].sort())
    // A later live version of the marked address removes nothing but its own earlier versions either.
    const newer = signed(14, { kind: 0, created_at: t, content: 'profile' })
    assert.deepEqual(await outcomes(writer, [newer]), ['stored'])
    s.refresh()
    assert.deepEqual(served(s).sort(), [note.event.id, list.event.id, newer.event.id].sort())
  })

  it('records round-trip through their line; a mark only raises, never lowers', async () => {
    const address = addressKey(30000, publicKey(9), 'a'.repeat(300)).toString('hex')
    for (const record of [
      { type: 'mark', address, id: 'ab'.repeat(32), createdAt: 4294967295 },
      { type: 'tombstone', id: 'cd'.repeat(32), by: publicKey(9) },
      { type: 'deleted-address', address: addressKey(30000, publicKey(9), 'e'.repeat(64)).toString('hex'), upTo: 0 },
    ] as const)
      assert.deepEqual(parseRecord(formatRecord(record).trimEnd()), { ok: true, record })

    const { store: s, writer } = await open()
    const t = now()
    const newer = signed(9, { kind: 0, created_at: t, content: 'newer' })
    const older = signed(9, { kind: 0, created_at: t - 10, content: 'older' })
    await store(writer, newer)
    await writer.applyRecords([{ type: 'mark', address: addressKey(0, publicKey(9), '').toString('hex'), id: older.event.id, createdAt: older.event.created_at }])
    s.refresh()
    assert.deepEqual(served(s), [newer.event.id], 'a lower mark changed nothing')
  })
})
