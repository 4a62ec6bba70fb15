// A snapshot's outbox records, replication entries in particular: written after the events of a replicating
// store, queued again by a replica's restore (whose drainer then publishes them), absent from an old snapshot
// and from a relay without replication. Real LMDB stores, a directory of snapshots, the in-process writer.
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
import { signed, type Ready } from '../testing/fixtures.js'
import { restoreNewest, takeDelta, takeSnapshot } from './backups.js'

const logger = createLogger({ service: 'relay-test', level: 'fatal' })

describe('replication records in snapshots', () => {
  const cleanup: Array<() => Promise<unknown>> = []
  afterEach(async () => {
    for (const undo of cleanup.splice(0).reverse()) await undo()
  })

  const dir = async (): Promise<string> => {
    const path = await mkdtemp(join(tmpdir(), 'msr-records-'))
    cleanup.push(() => rm(path, { recursive: true, force: true }))
    return path
  }

  /** A store and its in-process writer, closed after the test. */
  const open = async (replicating: boolean): Promise<{ store: EventStore; writer: Writer }> => {
    const store = EventStore.open(await dir())
    store.replicating = replicating
    const writer = new Writer(store, error => assert.fail(String(error)))
    cleanup.push(() => writer.close().then(() => store.close()))
    return { store, writer }
  }

  const submit = (writer: Writer, { event, json }: Ready, source: 'client' | 'replica' = 'client') => writer.submit(event, Buffer.from(json), undefined, source)

  const linesOf = async (snapshots: SnapshotStore, name: string): Promise<string[]> => {
    const lines: string[] = []
    for await (const { line } of readLines(await snapshots.get(name))) lines.push(line)
    return lines
  }

  const records = (lines: string[]) => lines.filter(l => l.startsWith('{"replicate":')).map(l => (JSON.parse(l) as { replicate: string }).replicate)

  /** A replicating store with one published (removed) entry, two waiting, and another replica's event (none). */
  const origin = async () => {
    const { store, writer } = await open(true)
    const [published, waiting, later] = [signed(1, { content: 'published' }), signed(2, { content: 'waiting' }), signed(3, { content: 'waiting too' })]
    const foreign = signed(4, { content: "another replica's" })
    for (const e of [published, waiting, later]) await submit(writer, e)
    await submit(writer, foreign, 'replica')
    const [first] = store.replication.peek(1)
    assert.equal(first?.id, published.event.id)
    await writer.removeReplicated([first.key])
    store.refresh()
    return { store, writer, published, waiting, later, foreign }
  }

  const restore = async (snapshots: SnapshotStore, queueReplication: boolean) => {
    const target = await open(queueReplication)
    const restored = await restoreNewest(snapshots, { ...target, queueHints: false, queueReplication }, logger)
    target.store.refresh()
    return { ...target, restored }
  }

  it("a full snapshot carries the replication outbox after its events; a replica's restore queues those entries again, as they were", async () => {
    const { store, waiting, later } = await origin()
    const snapshots = openSnapshotStore(await dir())
    const { info, events } = await takeSnapshot(store, snapshots, 3)
    assert.equal(events, 4)
    const lines = await linesOf(snapshots, info.name)
    assert.deepEqual(records(lines), [waiting.event.id, later.event.id], 'the entries waiting, oldest first, not the published one nor the replica\'s')
    assert.ok(lines.slice(0, 4).every(l => l.startsWith('{"id":')), 'events first, records after them')

    const replica = await restore(snapshots, true)
    assert.equal(replica.restored?.replicate, 2)
    assert.equal(replica.restored?.summary.replicate, 2)
    const queued = replica.store.replication.peek(10)
    assert.deepEqual(queued.map(e => [e.id, e.kind, e.json.toString('utf8')]), [waiting, later].map(e => [e.event.id, 1, e.json]))

    const single = await restore(snapshots, false)
    assert.equal(single.restored?.summary.imported, 4)
    assert.equal(single.restored?.replicate, 0)
    assert.equal(single.store.replication.size(), 0, 'a relay without [replication] queues none: nothing would publish them')
  })

  it('a delta carries them too; a restore queues only records of events it restored, once each, and counts a bad record', async () => {
    const { store, waiting, later } = await origin()
    const snapshots = openSnapshotStore(await dir())
    await takeDelta(store, snapshots, [waiting.event.id])
    const [delta] = await snapshots.list()
    assert.deepEqual(records(await linesOf(snapshots, delta?.name ?? '')), [waiting.event.id, later.event.id], 'later is waiting, though not among the delta\'s events')
    const replica = await restore(snapshots, true)
    assert.equal(replica.restored?.replicate, 1, "only the record whose event the delta holds")
    assert.deepEqual([...replica.store.replication.ids()], [waiting.event.id])

    const hand = openSnapshotStore(await dir())
    const record = (e: Ready) => `{"replicate":"${e.event.id}"}\n`
    await hand.put(Readable.from([`${waiting.json}\n`, record(waiting), record(waiting), '{"replicate":"not hex"}\n']), { kind: 'full' })
    const restored = await restore(hand, true)
    assert.equal(restored.restored?.replicate, 1)
    assert.equal([...restored.restored!.summary.invalid.keys()].join(), 'invalid: replication record: not a replication record')
    assert.deepEqual([...restored.store.replication.ids()], [waiting.event.id])
  })

  it('an old snapshot without replication records restores into a replica with nothing queued; a relay without replication writes none', async () => {
    const old = openSnapshotStore(await dir())
    const events = [signed(5, { content: 'old format' }), signed(6, { content: 'old format too' })]
    await old.put(Readable.from(events.map(e => `${e.json}\n`)), { kind: 'full' })
    const replica = await restore(old, true)
    assert.equal(replica.restored?.summary.imported, 2)
    assert.equal(replica.restored?.replicate, 0)
    assert.equal(replica.store.replication.size(), 0)

    const { store, waiting } = await origin()
    store.replicating = false // [replication] turned off: its outbox is left as it was, never published
    const snapshots = openSnapshotStore(await dir())
    const { info } = await takeSnapshot(store, snapshots, 3)
    assert.ok(store.replication.size() > 0)
    const lines = await linesOf(snapshots, info.name)
    assert.deepEqual(records(lines), [])
    assert.ok(lines.some(l => l.includes(waiting.event.id)))
  })
})
