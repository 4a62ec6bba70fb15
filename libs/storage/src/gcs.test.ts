import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import type { Readable } from 'node:stream'
import { buffer } from 'node:stream/consumers'
import { after, before, beforeEach, describe, it } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { gunzipSync } from 'node:zlib'
import type { Storage } from '@google-cloud/storage'
import { openReader, openWriter } from './location.js'
import { startFakeGcs, type FakeGcs, type FakeRequest } from './testing/fake-gcs.js'

const KiB = 1024
const CHUNK = 256 * KiB

let fake: FakeGcs
let storage: Storage
before(async () => {
  fake = await startFakeGcs()
  fake.createBucket('bkt')
  storage = fake.storage()
})
after(() => fake.stop())
beforeEach(() => void (fake.requests.length = 0))

/** Text that gzip cannot shrink much, so sizes stay predictable. */
const noise = (bytes: number): Buffer => Buffer.from(randomBytes(Math.ceil((bytes * 3) / 4)).toString('base64').slice(0, bytes))

const write = async (location: string, data: Buffer, opts: { uploadChunkBytes?: number } = {}): Promise<void> => {
  const writer = await openWriter(location, { storage, ...opts })
  for (let at = 0; at < data.length; at += 100 * KiB) writer.stream.write(data.subarray(at, at + 100 * KiB))
  await writer.done()
}
const read = async (location: string): Promise<Buffer> => buffer((await openReader(location, { storage })).stream as Readable)
/** Waits for `condition`, failing the test rather than hanging it. */
const until = async (condition: () => boolean, ms = 10_000): Promise<void> => {
  for (const deadline = Date.now() + ms; !condition(); await sleep(5)) if (Date.now() > deadline) throw new Error(`condition not met within ${ms} ms`)
}
const uploads = (type: string): FakeRequest[] => fake.requests.filter(r => r.path === '/upload/storage/v1/b/bkt/o' && (r.query.uploadType === type || type === '*'))

describe('openWriter and openReader on Cloud Storage (real client, fake server)', () => {
  it('sends a small object in one multipart request that declares its hashes, without credentials', async () => {
    const data = Buffer.from('{"id":"a"}\n{"id":"b"}\n')
    await write('gs://bkt/small.jsonl', data)
    assert.deepEqual(
      fake.requests.map(r => `${r.method} ${r.path}`),
      ['GET /storage/v1/b/bkt/o/small.jsonl', 'POST /upload/storage/v1/b/bkt/o'],
    )
    assert.equal(uploads('multipart').length, 1)
    assert.equal(uploads('multipart')[0]!.query.ifGenerationMatch, '0', 'created only if absent')
    assert.deepEqual(fake.read('bkt', 'small.jsonl'), data)
    assert.deepEqual(await read('gs://bkt/small.jsonl'), data)
    assert.ok(fake.requests.every(r => r.headers.authorization === undefined))
    // A non-Google apiEndpoint makes the client skip google-auth-library: no credential was ever looked up.
    assert.equal((storage as unknown as { authClient: { cachedCredential: unknown } }).authClient.cachedCredential, null)
  })

  it('sends an object of a chunk or more as a chunked resumable upload, gzip applied by the name', async () => {
    const data = noise(5 * CHUNK + 1000)
    await write('gs://bkt/big.jsonl.gz', data, { uploadChunkBytes: CHUNK })
    const [start, ...puts] = uploads('*')
    assert.equal(start!.query.uploadType, 'resumable')
    assert.ok(puts.length >= 3, `${puts.length} chunks`)
    assert.ok(puts.every(p => p.method === 'PUT' && p.query.upload_id))
    assert.match(String(puts[0]!.headers['content-range']), /^bytes 0-262143\/\*$/)
    assert.match(String(puts.at(-1)!.headers['content-range']), /^bytes \d+-(\d+)\/\d+$/)
    const stored = fake.read('bkt', 'big.jsonl.gz')!
    assert.deepEqual(gunzipSync(stored), data)
    const reader = await openReader('gs://bkt/big.jsonl.gz', { storage })
    assert.equal(reader.bytes, stored.length)
    assert.deepEqual(await buffer(reader.stream as Readable), data)
    assert.equal(reader.bytesRead(), stored.length)
  })

  it('stores and reads back an empty object', async () => {
    await write('gs://bkt/empty.jsonl', Buffer.alloc(0))
    assert.equal(fake.objects('bkt').find(o => o.name === 'empty.jsonl')?.size, 0)
    assert.equal((await read('gs://bkt/empty.jsonl')).length, 0)
  })

  it('uses 8 MiB chunks by default: 20 MB go up in three', async () => {
    const data = noise(20 * 1000 * 1000)
    await write('gs://bkt/default.jsonl', data)
    const puts = uploads('resumable').filter(r => r.method === 'PUT')
    assert.deepEqual(
      puts.map(p => p.headers['content-range']),
      ['bytes 0-8388607/*', 'bytes 8388608-16777215/*', `bytes 16777216-${data.length - 1}/${data.length}`],
    )
    assert.deepEqual(await read('gs://bkt/default.jsonl'), data)
  })

  it('replaces an object only if nobody else did since open, naming the location otherwise', async () => {
    fake.putObject('bkt', 'shared.jsonl', 'v1\n')
    await write('gs://bkt/shared.jsonl', Buffer.from('v2\n'))
    assert.equal(fake.read('bkt', 'shared.jsonl')?.toString(), 'v2\n')
    const writer = await openWriter('gs://bkt/shared.jsonl', { storage })
    fake.putObject('bkt', 'shared.jsonl', 'someone else\n')
    writer.stream.write('v3\n')
    await assert.rejects(writer.done(), (err: Error) => err.message.startsWith('gs://bkt/shared.jsonl: ') && /pre-conditions/.test(err.message))
    assert.equal(fake.read('bkt', 'shared.jsonl')?.toString(), 'someone else\n')
  })

  it('retries a chunk the server failed with 503 and stores every byte once', async () => {
    const data = noise(3 * CHUNK)
    const writer = await openWriter('gs://bkt/retried.jsonl', { storage, uploadChunkBytes: CHUNK })
    writer.stream.write(data.subarray(0, CHUNK))
    await until(() => uploads('resumable').length > 0) // the session exists; its first chunk is next
    fake.failNext(1)
    writer.stream.write(data.subarray(CHUNK))
    await writer.done()
    const statuses = uploads('resumable').map(r => r.headers['content-range'])
    assert.ok(statuses.includes('bytes */*'), `the client asked where to resume: ${statuses.join(', ')}`)
    assert.deepEqual(fake.read('bkt', 'retried.jsonl'), data)
  })

  it('fails an upload the server saw corrupted: declared hashes refuse a small one, the returned CRC32C a large one', async () => {
    fake.corruptUploads(1)
    await assert.rejects(write('gs://bkt/bad-small.jsonl', Buffer.from('x\n')), /gs:\/\/bkt\/bad-small\.jsonl: Provided CRC32C/)
    fake.corruptUploads(1)
    await assert.rejects(write('gs://bkt/bad-big.jsonl', noise(2 * CHUNK), { uploadChunkBytes: CHUNK }), /gs:\/\/bkt\/bad-big\.jsonl: .*(mismatch|did not match)/i)
    assert.ok(fake.requests.some(r => r.method === 'DELETE' && r.path.endsWith('/bad-big.jsonl')), 'the client deletes what it cannot trust')
    assert.deepEqual(fake.objects('bkt').filter(o => o.name.startsWith('bad-')), [])
  })

  it('rejects a download whose bytes do not match the CRC32C the server sent', async () => {
    const data = noise(100 * KiB)
    fake.putObject('bkt', 'flaky.jsonl', data)
    fake.corruptDownloads(1)
    await assert.rejects(read('gs://bkt/flaky.jsonl'), (err: Error) => err.message.startsWith('gs://bkt/flaky.jsonl: ') && /did not match/.test(err.message))
    assert.deepEqual(await read('gs://bkt/flaky.jsonl'), data, 'a second read is clean')
  })

  it('names the location when an object or a bucket is missing', async () => {
    await assert.rejects(openReader('gs://bkt/missing.jsonl', { storage }), (err: Error) => err.message.startsWith('gs://bkt/missing.jsonl: No such object'))
    await assert.rejects(write('gs://nobucket/x.jsonl', Buffer.from('x\n')), (err: Error) => err.message.startsWith('gs://nobucket/x.jsonl: ') && /bucket does not exist/.test(err.message))
  })
})
