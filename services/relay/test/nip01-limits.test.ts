// The [limitation] section end to end, each limit set small and answered with its prefixed message.
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { newSigner, now, sign, startTestRelay, TestClient, type TestRelay } from './harness.js'

const MAX_MESSAGE = 4096
const MAX_SUBS = 3
const MAX_FILTERS = 2
const MAX_SUBID = 10
const MAX_TAGS = 5
const OLDEST = 3600
const NEWEST = 60

let relay: TestRelay
let client: TestClient

before(async () => {
  relay = await startTestRelay({
    'limitation.max_message_length': MAX_MESSAGE,
    'limitation.max_subscriptions': MAX_SUBS,
    'limitation.max_filters': MAX_FILTERS,
    'limitation.max_subid_length': MAX_SUBID,
    'limitation.max_event_tags': MAX_TAGS,
    'limitation.max_event_time_older_than_now': OLDEST,
    'limitation.max_event_time_newer_than_now': NEWEST,
  })
  client = await TestClient.connect(relay.url)
})

after(async () => {
  await client?.close()
  await relay?.close()
})

const assertPrefix = (text: unknown, prefix: string) => assert.match(String(text), new RegExp(`^${prefix}: `))

describe('max_message_length', () => {
  const signer = newSigner()

  it('refuses an oversized EVENT with OK false "invalid:" carrying its id', async () => {
    const event = sign(signer, { content: 'x'.repeat(MAX_MESSAGE) })
    const ok = await client.publish(event)
    assert.equal(ok[2], false)
    assertPrefix(ok[3], 'invalid')
    assert.deepEqual(await client.query({ ids: [event.id] }), [])
  })

  it('finds the id of an oversized EVENT wherever it stands in the object', async () => {
    const event = sign(signer, { content: 'w'.repeat(MAX_MESSAGE) })
    const { id, ...rest } = event
    client.sendRaw(JSON.stringify(['EVENT', { ...rest, id }]))
    const ok = await client.next(m => m[0] === 'OK' && m[1] === id)
    assert.equal(ok[2], false)
    assertPrefix(ok[3], 'invalid')
  })

  it('refuses an oversized AUTH with OK false "invalid:" carrying its id (NIP-42: AUTH is answered like EVENT)', async () => {
    const event = sign(signer, { kind: 22242, tags: [['relay', 'ws://x'], ['challenge', 'c']], content: 'x'.repeat(MAX_MESSAGE) })
    client.send(['AUTH', event])
    const answer = await client.next(m => (m[0] === 'OK' && m[1] === event.id) || m[0] === 'NOTICE')
    assert.deepEqual(answer.slice(0, 3), ['OK', event.id, false])
    assertPrefix(answer[3], 'invalid')
  })

  it('accepts an event just under the limit', async () => {
    const probe = sign(signer, { content: '' })
    const room = MAX_MESSAGE - JSON.stringify(['EVENT', probe]).length
    const event = sign(signer, { content: 'y'.repeat(room), created_at: probe.created_at })
    assert.equal(JSON.stringify(['EVENT', event]).length, MAX_MESSAGE)
    await client.publishOk(event)
  })

  it('answers an oversized REQ with NOTICE "invalid:"', async () => {
    client.send(['REQ', 'big', { '#t': ['z'.repeat(MAX_MESSAGE)] }])
    const notice = await client.next(m => m[0] === 'NOTICE')
    assertPrefix(notice[1], 'invalid')
    await client.sync()
    assert.deepEqual(client.takeAll(m => m[1] === 'big'), [])
  })

  it('answers an oversized EVENT whose id cannot be found with NOTICE "invalid:"', async () => {
    client.sendRaw(JSON.stringify(['EVENT', { content: 'x'.repeat(MAX_MESSAGE) }]))
    assertPrefix((await client.next(m => m[0] === 'NOTICE'))[1], 'invalid')
  })
})

describe('max_subscriptions', () => {
  it('refuses one subscription too many with CLOSED "blocked:" and keeps the others', async () => {
    const c = await TestClient.connect(relay.url)
    try {
      const signer = newSigner()
      for (let i = 0; i < MAX_SUBS; i++) assert.deepEqual(await c.req(`s${i}`, { authors: [signer.pubkey] }), [])
      c.send(['REQ', 'extra', { authors: [signer.pubkey] }])
      const closed = await c.next(m => m[0] === 'CLOSED' && m[1] === 'extra')
      assert.equal(closed.length, 3)
      assertPrefix(closed[2], 'blocked')
      // Re-using an open id replaces it and is allowed at the limit.
      assert.deepEqual(await c.req('s0', { authors: [signer.pubkey] }), [])
      const event = sign(signer)
      await client.publishOk(event)
      const got = new Set<string>()
      for (let i = 0; i < MAX_SUBS; i++) got.add(String((await c.next(m => m[0] === 'EVENT' && m[2] !== undefined))[1]))
      assert.deepEqual(got, new Set(['s0', 's1', 's2']))
      await c.sync()
      assert.deepEqual(c.takeAll(m => m[0] === 'EVENT'), [])
      // After a CLOSE there is room again.
      c.send(['CLOSE', 's1'])
      assert.deepEqual(await c.req('s3', { authors: [signer.pubkey] }), [event])
    } finally {
      await c.close()
    }
  })

  it('counts per connection', async () => {
    const a = await TestClient.connect(relay.url)
    const b = await TestClient.connect(relay.url)
    try {
      for (let i = 0; i < MAX_SUBS; i++) await a.req(`a${i}`, { kinds: [1], limit: 0 })
      for (let i = 0; i < MAX_SUBS; i++) await b.req(`b${i}`, { kinds: [1], limit: 0 })
    } finally {
      await a.close()
      await b.close()
    }
  })
})

describe('max_filters', () => {
  it('refuses a REQ with too many filters with CLOSED "invalid:"', async () => {
    client.send(['REQ', 'filters', ...Array.from({ length: MAX_FILTERS + 1 }, (_, i) => ({ kinds: [i] }))])
    const closed = await client.next(m => m[0] === 'CLOSED' && m[1] === 'filters')
    assertPrefix(closed[2], 'invalid')
    assert.deepEqual(await client.req('filters-ok', ...Array.from({ length: MAX_FILTERS }, (_, i) => ({ kinds: [40000 + i] }))), [])
    client.send(['CLOSE', 'filters-ok'])
  })

  it('refuses a COUNT with too many filters with CLOSED "invalid:"', async () => {
    const answer = await client.count('count-filters', ...Array.from({ length: MAX_FILTERS + 1 }, (_, i) => ({ kinds: [i] })))
    assert.equal(answer[0], 'CLOSED')
    assertPrefix(answer[2], 'invalid')
  })
})

describe('max_subid_length', () => {
  it('refuses a longer subscription id with CLOSED "invalid:" and accepts one at the limit', async () => {
    const long = 'x'.repeat(MAX_SUBID + 1)
    client.send(['REQ', long, { kinds: [1], limit: 0 }])
    const closed = await client.next(m => m[0] === 'CLOSED' && m[1] === long)
    assertPrefix(closed[2], 'invalid')
    const exact = 'y'.repeat(MAX_SUBID)
    assert.deepEqual(await client.req(exact, { kinds: [1], limit: 0 }), [])
    client.send(['CLOSE', exact])
  })
})

describe('max_event_tags', () => {
  it('refuses an event with too many tags with OK false "invalid:"', async () => {
    const signer = newSigner()
    const tags = (n: number) => Array.from({ length: n }, (_, i) => ['t', `tag${i}`])
    const tooMany = sign(signer, { tags: tags(MAX_TAGS + 1) })
    const ok = await client.publish(tooMany)
    assert.equal(ok[2], false)
    assertPrefix(ok[3], 'invalid')
    await client.publishOk(sign(signer, { tags: tags(MAX_TAGS) }))
  })
})

describe('created_at bounds', () => {
  const signer = newSigner()

  it('refuses an event too far in the past with OK false "invalid:"', async () => {
    const ok = await client.publish(sign(signer, { created_at: now() - OLDEST - 600 }))
    assert.equal(ok[2], false)
    assertPrefix(ok[3], 'invalid')
  })

  it('refuses an event too far in the future with OK false "invalid:"', async () => {
    const ok = await client.publish(sign(signer, { created_at: now() + NEWEST + 600 }))
    assert.equal(ok[2], false)
    assertPrefix(ok[3], 'invalid')
  })

  it('accepts events inside the window', async () => {
    await client.publishOk(sign(signer, { created_at: now() - OLDEST + 600 }))
    await client.publishOk(sign(signer, { created_at: now() + NEWEST - 30 }))
  })
})
