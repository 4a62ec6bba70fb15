import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { after, before, describe, it } from 'node:test'
import { crc32cBase64 } from '../crc32c.js'
import { startFakeGcs, type FakeGcs } from './fake-gcs.js'

let fake: FakeGcs
before(async () => {
  fake = await startFakeGcs()
  fake.createBucket('bkt')
})
after(() => fake.stop())

const call = (path: string, init: RequestInit = {}): Promise<Response> => fetch(`${fake.endpoint}${path}`, init)
const errorOf = async (res: Response): Promise<string> => ((await res.json()) as { error: { message: string } }).error.message
const KiB = 1024

describe('fake Cloud Storage', () => {
  it('answers an unknown route 501 and an unknown parameter 400, naming them', async () => {
    const route = await call('/storage/v1/b/bkt/acl', { method: 'PATCH' })
    assert.equal(route.status, 501)
    assert.match(await errorOf(route), /PATCH \/storage\/v1\/b\/bkt\/acl/)
    const param = await call('/storage/v1/b/bkt/o?matchGlob=**.gz')
    assert.equal(param.status, 400)
    assert.match(await errorOf(param), /matchGlob=\*\*\.gz/)
    assert.equal((await call('/storage/v1/b/nope')).status, 404)
    assert.equal(((await (await call('/storage/v1/b/bkt')).json()) as { name: string }).name, 'bkt')
  })

  it('serves media with the hashes and generation the client checks, and honours Range', async () => {
    const data = Buffer.from('0123456789')
    fake.putObject('bkt', 'dir/digits.txt', data, 'text/plain')
    const [object] = fake.objects('bkt').filter(o => o.name === 'dir/digits.txt')
    const whole = await call('/storage/v1/b/bkt/o/dir%2Fdigits.txt?alt=media')
    assert.equal(whole.status, 200)
    assert.equal(whole.headers.get('x-goog-hash'), `crc32c=${crc32cBase64(data)},md5=${createHash('md5').update(data).digest('base64')}`)
    assert.equal(whole.headers.get('x-goog-generation'), object!.generation)
    assert.equal(whole.headers.get('x-goog-stored-content-encoding'), 'identity')
    assert.equal(await whole.text(), '0123456789')
    const part = await call('/storage/v1/b/bkt/o/dir%2Fdigits.txt?alt=media', { headers: { range: 'bytes=2-4' } })
    assert.equal(part.status, 206)
    assert.equal(part.headers.get('content-range'), 'bytes 2-4/10')
    assert.equal(await part.text(), '234')
    assert.equal((await call('/storage/v1/b/bkt/o/dir%2Fdigits.txt?alt=media', { headers: { range: 'bytes=20-' } })).status, 416)
    const meta = (await (await call('/storage/v1/b/bkt/o/dir%2Fdigits.txt')).json()) as Record<string, string>
    assert.deepEqual([meta.size, meta.crc32c, meta.generation], ['10', crc32cBase64(data), object!.generation])
    assert.equal((await call(`/storage/v1/b/bkt/o/dir%2Fdigits.txt?generation=1`)).status, 404)
  })

  it('lists by prefix and delimiter, page by page', async () => {
    for (const name of ['p/a', 'p/b', 'p/c', 'p/sub/d', 'q/e']) fake.putObject('bkt', name, name)
    const names: string[] = []
    let token: string | undefined
    let pages = 0
    do {
      const res = (await (await call(`/storage/v1/b/bkt/o?prefix=p/&maxResults=2${token ? `&pageToken=${token}` : ''}`)).json()) as { items?: { name: string }[]; nextPageToken?: string }
      names.push(...(res.items ?? []).map(i => i.name))
      token = res.nextPageToken
      pages++
    } while (token)
    assert.deepEqual(names, ['p/a', 'p/b', 'p/c', 'p/sub/d'])
    assert.equal(pages, 2)
    const grouped = (await (await call('/storage/v1/b/bkt/o?prefix=p/&delimiter=/')).json()) as { items: { name: string }[]; prefixes: string[] }
    assert.deepEqual([grouped.items.map(i => i.name), grouped.prefixes], [['p/a', 'p/b', 'p/c'], ['p/sub/']])
  })

  it('enforces ifGenerationMatch on uploads and deletes, and deletes 204 then 404', async () => {
    const media = (query: string): Promise<Response> => call(`/upload/storage/v1/b/bkt/o?uploadType=media&name=g.txt${query}`, { method: 'POST', body: 'x' })
    assert.equal((await media('&ifGenerationMatch=0')).status, 200)
    const first = fake.objects('bkt').find(o => o.name === 'g.txt')!
    assert.equal((await media('&ifGenerationMatch=0')).status, 412)
    assert.equal((await media(`&ifGenerationMatch=${first.generation}`)).status, 200)
    assert.equal((await call(`/storage/v1/b/bkt/o/g.txt?ifGenerationMatch=${first.generation}`, { method: 'DELETE' })).status, 412)
    assert.equal((await call('/storage/v1/b/bkt/o/g.txt', { method: 'DELETE' })).status, 204)
    assert.equal((await call('/storage/v1/b/bkt/o/g.txt', { method: 'DELETE' })).status, 404)
  })

  it('checks a hash declared in X-Goog-Hash', async () => {
    const res = await call('/upload/storage/v1/b/bkt/o?uploadType=media&name=h.txt', { method: 'POST', body: 'data', headers: { 'x-goog-hash': `crc32c=${crc32cBase64(Buffer.from('other'))}` } })
    assert.equal(res.status, 400)
    assert.match(await errorOf(res), /Provided CRC32C/)
  })

  it('runs the resumable protocol: session, 308 with Range, 256 KiB granularity, completion', async () => {
    const start = await call('/upload/storage/v1/b/bkt/o?uploadType=resumable&name=r.bin&ifGenerationMatch=0', { method: 'POST', body: '{}', headers: { 'content-type': 'application/json' } })
    assert.equal(start.status, 200)
    const session = start.headers.get('location')!
    assert.match(session, /upload_id=/)
    const put = (range: string, body: Buffer | string = ''): Promise<Response> => fetch(session, { method: 'PUT', body, headers: { 'content-range': range }, redirect: 'manual' })
    const status = await put('bytes */*')
    assert.deepEqual([status.status, status.headers.get('range')], [308, null])
    assert.equal((await put('bytes 0-99/*', Buffer.alloc(100))).status, 400, 'a non-final chunk under 256 KiB')
    const chunk = await put(`bytes 0-${256 * KiB - 1}/*`, Buffer.alloc(256 * KiB, 1))
    assert.deepEqual([chunk.status, chunk.headers.get('range')], [308, `bytes=0-${256 * KiB - 1}`])
    assert.equal((await put(`bytes 0-9/*`, Buffer.alloc(10))).status, 400, 'a chunk that does not continue where the last ended')
    assert.equal(fake.openSessions(), 1)
    const done = await put(`bytes ${256 * KiB}-${256 * KiB + 9}/${256 * KiB + 10}`, Buffer.alloc(10, 2))
    assert.equal(done.status, 200)
    assert.equal(((await done.json()) as { size: string }).size, String(256 * KiB + 10))
    assert.equal((await put('bytes */*')).status, 200, 'a finished session answers with the object')
    assert.equal(fake.openSessions(), 0)
  })

  it('fails the next requests on demand without effect', async () => {
    fake.failNext(2, 429)
    assert.equal((await call('/storage/v1/b/bkt')).status, 429)
    assert.equal((await call('/upload/storage/v1/b/bkt/o?uploadType=media&name=never.txt', { method: 'POST', body: 'x' })).status, 429)
    assert.equal((await call('/storage/v1/b/bkt')).status, 200)
    assert.equal(fake.read('bkt', 'never.txt'), undefined)
  })
})
