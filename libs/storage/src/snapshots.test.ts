import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { mkdtemp, readdir, rm, utimes, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { text } from 'node:stream/consumers'
import { after, before, describe, it } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import type { Storage } from '@google-cloud/storage'
import { openSnapshotStore, snapshotName, snapshotTime, type SnapshotStore } from './snapshots.js'
import { startFakeGcs, type FakeGcs } from './testing/fake-gcs.js'

const CHUNK = 256 * 1024

let fake: FakeGcs
let storage: Storage
let root = ''
before(async () => {
  fake = await startFakeGcs()
  storage = fake.storage()
  root = await mkdtemp(join(tmpdir(), 'msr-snapshots-'))
})
after(async () => {
  await fake.stop()
  await rm(root, { recursive: true, force: true })
})

/** Waits for `condition`, failing the test rather than hanging it. */
const until = async (condition: () => boolean, ms = 10_000): Promise<void> => {
  for (const deadline = Date.now() + ms; !condition(); await sleep(5)) if (Date.now() > deadline) throw new Error(`condition not met within ${ms} ms`)
}

let serial = 0
/** A fresh, empty target of each kind. */
const targets = (): { kind: string; target: string }[] => {
  const n = ++serial
  fake.createBucket(`bkt${n}`)
  return [
    { kind: 'directory', target: join(root, `dir${n}`, 'snapshots') },
    { kind: 'gs://', target: `gs://bkt${n}/relay/snapshots` },
  ]
}
const open = (target: string): SnapshotStore => openSnapshotStore(target, { storage, uploadChunkBytes: CHUNK })
const jsonl = (tag: string, lines: number): string => Array.from({ length: lines }, (_, i) => `{"tag":"${tag}","i":${i}}\n`).join('')
const read = async (store: SnapshotStore, name: string): Promise<string> => text((await store.get(name)) as Readable)

/** Yields `good`, then fails: a database read that broke halfway through a snapshot. */
async function* breaking(good: string): AsyncGenerator<string> {
  yield good
  throw new Error('source broke')
}

describe('snapshot names', () => {
  it('sort by time and carry it', () => {
    const at = new Date(Date.UTC(2025, 0, 2, 3, 4, 5, 6))
    const name = snapshotName(at, true)
    assert.match(name, /^snapshot-20250102T030405006Z-[0-9a-f]{8}\.jsonl\.gz$/)
    assert.equal(snapshotTime(name)?.getTime(), at.getTime())
    assert.equal(snapshotTime(snapshotName(at, false))?.getTime(), at.getTime())
    assert.equal(snapshotTime('.snapshot-20250102T030405006Z-00000000.jsonl.gz.1234abcd.tmp'), undefined)
    assert.ok(snapshotName(at, true) < snapshotName(new Date(at.getTime() + 1), true))
  })
})

for (const kind of ['directory', 'gs://']) {
  describe(`snapshot store on a ${kind} target`, () => {
    const fresh = (): string => targets().find(t => t.kind === kind)!.target

    it('puts, lists newest first, gets plain bytes back, and prunes the oldest', async () => {
      const store = open(fresh())
      assert.deepEqual(await store.list(), [])
      const put = []
      for (let i = 0; i < 4; i++) put.push(await store.put(Readable.from([jsonl(`s${i}`, 50)])))
      put.push(await store.put(Readable.from([jsonl('plain', 3)]), { gzip: false }))
      const listed = await store.list()
      assert.deepEqual(listed.map(s => s.name), put.map(s => s.name).reverse())
      assert.deepEqual(listed, [...put].reverse())
      assert.ok(put[0]!.name.endsWith('.jsonl.gz') && put[4]!.name.endsWith('.jsonl'))
      assert.ok(put[0]!.bytes > 0 && put[0]!.bytes < jsonl('s0', 50).length, 'gzip by default')
      assert.equal(await read(store, put[2]!.name), jsonl('s2', 50))
      assert.equal(await read(store, put[4]!.name), jsonl('plain', 3))
      assert.deepEqual(await store.prune(2), put.slice(0, 3).map(s => s.name).reverse())
      assert.deepEqual((await store.list()).map(s => s.name), [put[4]!.name, put[3]!.name])
      await store.delete(put[4]!.name)
      await store.delete(put[4]!.name) // missing is fine
      assert.deepEqual((await store.list()).map(s => s.name), [put[3]!.name])
      await assert.rejects(store.get('../../etc/passwd'), /is not a snapshot name/)
      await assert.rejects(store.prune(-1), RangeError)
    })

    it('marks deltas in the name and kind, and prunes deltas only once no kept full snapshot precedes them', async () => {
      const store = open(fresh())
      const full0 = await store.put(Readable.from([jsonl('f0', 2)]))
      const delta0 = await store.put(Readable.from([jsonl('d0', 1)]), { kind: 'delta' })
      const full1 = await store.put(Readable.from([jsonl('f1', 2)]))
      const delta1 = await store.put(Readable.from([jsonl('d1', 1)]), { kind: 'delta' })
      assert.equal(full0.kind, 'full')
      assert.equal(delta0.kind, 'delta')
      assert.match(delta0.name, /^snapshot-\d{8}T\d{9}Z-[0-9a-f]{8}\.delta\.jsonl\.gz$/)
      assert.deepEqual((await store.list()).map(s => [s.name, s.kind]), [delta1, full1, delta0, full0].map(s => [s.name, s.kind]))
      assert.equal(await read(store, delta0.name), jsonl('d0', 1))
      assert.deepEqual(await store.prune(2), [], 'both full snapshots kept, so every delta after the older one')
      assert.deepEqual(await store.prune(1), [delta0.name, full0.name])
      assert.deepEqual((await store.list()).map(s => s.name), [delta1.name, full1.name])
      assert.deepEqual(await store.prune(0), [delta1.name, full1.name].filter(n => n === full1.name), 'with no full snapshot kept, deltas stay')
    })

    it('takes a source that is an async iterable, and a snapshot bigger than an upload chunk', async () => {
      const store = open(fresh())
      const big = Array.from({ length: 3 }, () => randomBytes(CHUNK).toString('base64') + '\n')
      async function* source(): AsyncGenerator<string> {
        yield* big
      }
      const info = await store.put(source())
      assert.ok(info.bytes > CHUNK)
      assert.equal(await read(store, info.name), big.join(''))
    })

    it('two stores on the same target putting at once never overwrite or corrupt each other', async () => {
      const target = fresh()
      const [a, b] = [open(target), open(target)]
      // Some small (one request), some over a chunk (resumable); all at the same time.
      const contents = Array.from({ length: 8 }, (_, i) => (i % 3 === 0 ? randomBytes(CHUNK).toString('base64') + '\n' : jsonl(`c${i}`, 20)))
      const infos = await Promise.all(contents.map((c, i) => (i % 2 ? a : b).put(Readable.from([c]))))
      assert.equal(new Set(infos.map(i => i.name)).size, contents.length)
      const listed = await b.list()
      assert.deepEqual(new Set(listed.map(s => s.name)), new Set(infos.map(i => i.name)))
      for (const [i, info] of infos.entries()) assert.equal(await read(a, info.name), contents[i])
    })

    it('a put whose source fails midway leaves nothing listed', async () => {
      const store = open(fresh())
      await assert.rejects(store.put(breaking(jsonl('x', 10))), /source broke/)
      await assert.rejects(store.put(breaking(randomBytes(2 * CHUNK).toString('base64'))), /source broke/)
      assert.deepEqual(await store.list(), [])
    })
  })
}

describe('snapshot store specifics', () => {
  it('directory: nothing but complete snapshots remains after a failed put; prune sweeps temp files left by dead writers', async () => {
    const dir = join(root, 'sweep')
    const store = open(dir)
    await assert.rejects(store.put(breaking('{"a":1}\n')), /source broke/)
    assert.deepEqual(await readdir(dir), [])
    const stale = join(dir, '.snapshot-20200101T000000000Z-00000000.jsonl.gz.deadbeef.tmp')
    const fresh = join(dir, '.snapshot-20200101T000000000Z-11111111.jsonl.gz.cafebabe.tmp')
    await writeFile(stale, 'half')
    await writeFile(fresh, 'half, still being written')
    const old = new Date(Date.now() - 2 * 60 * 60 * 1000)
    await utimes(stale, old, old)
    await writeFile(join(dir, 'notes.txt'), 'not a snapshot')
    assert.deepEqual(await store.list(), [])
    assert.deepEqual(await store.prune(0), [])
    assert.deepEqual((await readdir(dir)).sort(), ['.snapshot-20200101T000000000Z-11111111.jsonl.gz.cafebabe.tmp', 'notes.txt'])
  })

  it('gs://: creates with ifGenerationMatch=0, lists past one page, and leaves no object when uploads keep failing', async () => {
    fake.createBucket('pages')
    const store = openSnapshotStore('gs://pages', { storage, uploadChunkBytes: CHUNK })
    for (let i = 0; i < 1003; i++) fake.putObject('pages', snapshotName(new Date(Date.UTC(2025, 0, 1, 0, 0, 0, i)), true), 'x')
    fake.putObject('pages', 'other/snapshot-20250101T000000000Z-00000000.jsonl.gz', 'x') // not under the prefix
    const listed = await store.list()
    assert.equal(listed.length, 1003)
    assert.equal(listed[0]!.createdAt.getTime(), Date.UTC(2025, 0, 1, 0, 0, 1, 2))
    fake.requests.length = 0
    const info = await store.put(Readable.from(['{"a":1}\n']))
    assert.equal(fake.requests.find(r => r.method === 'POST')?.query.ifGenerationMatch, '0')
    assert.equal((await store.list())[0]!.name, info.name)

    fake.createBucket('failing')
    const failing = openSnapshotStore('gs://failing/s', { storage: fake.storage({ retryOptions: { maxRetries: 1 } }), uploadChunkBytes: CHUNK })
    async function* cutOff(): AsyncGenerator<string> {
      yield randomBytes(2 * CHUNK).toString('base64') // over a chunk, even gzipped
      await until(() => fake.requests.some(r => r.method === 'PUT' && r.path === '/upload/storage/v1/b/failing/o'))
      fake.failNext(100) // the server goes away after the first chunk
      yield randomBytes(CHUNK).toString('base64')
    }
    // The client's message varies with where the retries ran out (even "The offset is lower than…"); it names the snapshot.
    await assert.rejects(failing.put(cutOff()), /^Error: gs:\/\/failing\/s\/snapshot-\d{8}T\d{9}Z-[0-9a-f]{8}\.jsonl\.gz: /)
    fake.failNext(0)
    assert.ok(fake.requests.filter(r => r.path === '/upload/storage/v1/b/failing/o').length >= 3, 'initiation, a chunk, then failed attempts')
    assert.deepEqual(await failing.list(), [])
    assert.deepEqual(fake.objects('failing'), [])
  })
})
