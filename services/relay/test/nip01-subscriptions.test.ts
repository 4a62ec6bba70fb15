// NIP-01 REQ/CLOSE end to end: every filter field, ordering, limits, live delivery, replacement, CLOSE.
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { ids, newSigner, now, sign, signTied, startTestRelay, TestClient, withTimeout, type NostrEvent, type Signer, type TestRelay } from './harness.js'
import { flushGate } from '../src/testing/flush-gate.js'

const MAX_LIMIT = 20
const DEFAULT_LIMIT = 7

let relay: TestRelay
let client: TestClient

before(async () => {
  relay = await startTestRelay({ 'limitation.max_limit': MAX_LIMIT, 'limitation.default_limit': DEFAULT_LIMIT })
  client = await TestClient.connect(relay.url)
})

after(async () => {
  await client?.close()
  await relay?.close()
})

/** Newest first, ties by lowest id: the order NIP-01 asks for. */
const newestFirst = (events: NostrEvent[]): NostrEvent[] =>
  [...events].sort((a, b) => b.created_at - a.created_at || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))

describe('filter fields', () => {
  const alice = newSigner()
  const bob = newSigner()
  const base = now() - 1000
  const topic = `topic-${Date.now()}`
  let root: NostrEvent
  let reply: NostrEvent
  let mention: NostrEvent
  let article: NostrEvent
  let other: NostrEvent
  let all: NostrEvent[]

  before(async () => {
    root = sign(alice, { created_at: base, content: 'root', tags: [['t', topic]] })
    reply = sign(bob, { created_at: base + 10, content: 'reply', tags: [['e', root.id], ['p', alice.pubkey], ['t', topic]] })
    mention = sign(bob, { kind: 7, created_at: base + 20, content: '+', tags: [['e', root.id], ['p', alice.pubkey]] })
    article = sign(alice, { kind: 30023, created_at: base + 30, content: 'article', tags: [['d', 'my-article'], ['t', topic]] })
    other = sign(bob, { created_at: base + 40, content: 'unrelated', tags: [['t', `${topic}-other`]] })
    all = [root, reply, mention, article, other]
    for (const e of all) await client.publishOk(e)
  })

  it('ids', async () => {
    assert.deepEqual(ids(await client.query({ ids: [root.id, article.id] })), ids([article, root]))
    assert.deepEqual(await client.query({ ids: ['f'.repeat(64)] }), [])
  })

  it('authors', async () => {
    assert.deepEqual(ids(await client.query({ authors: [alice.pubkey] })), ids([article, root]))
    assert.deepEqual(ids(await client.query({ authors: [alice.pubkey, bob.pubkey] })), ids(newestFirst(all)))
  })

  it('kinds, alone and with authors', async () => {
    assert.deepEqual(ids(await client.query({ kinds: [7], authors: [bob.pubkey] })), ids([mention]))
    assert.deepEqual(ids(await client.query({ kinds: [1, 30023], authors: [alice.pubkey] })), ids([article, root]))
    assert.ok(ids(await client.query({ kinds: [30023], limit: MAX_LIMIT })).includes(article.id))
  })

  it('#e and #p', async () => {
    assert.deepEqual(ids(await client.query({ '#e': [root.id] })), ids([mention, reply]))
    assert.deepEqual(ids(await client.query({ '#p': [alice.pubkey] })), ids([mention, reply]))
    assert.deepEqual(ids(await client.query({ '#p': [alice.pubkey], kinds: [1] })), ids([reply]))
  })

  it('#t and #d', async () => {
    assert.deepEqual(ids(await client.query({ '#t': [topic] })), ids([article, reply, root]))
    assert.deepEqual(ids(await client.query({ '#t': [topic, `${topic}-other`] })), ids([other, article, reply, root]))
    assert.deepEqual(ids(await client.query({ '#d': ['my-article'], authors: [alice.pubkey] })), ids([article]))
  })

  it('several tag conditions must all hold', async () => {
    assert.deepEqual(ids(await client.query({ '#t': [topic], '#e': [root.id] })), ids([reply]))
    assert.deepEqual(await client.query({ '#t': [`${topic}-other`], '#e': [root.id] }), [])
  })

  it('since and until are inclusive', async () => {
    const who = { authors: [alice.pubkey, bob.pubkey] }
    assert.deepEqual(ids(await client.query({ ...who, since: base + 20 })), ids([other, article, mention]))
    assert.deepEqual(ids(await client.query({ ...who, until: base + 10 })), ids([reply, root]))
    assert.deepEqual(ids(await client.query({ ...who, since: base + 10, until: base + 20 })), ids([mention, reply]))
    assert.deepEqual(await client.query({ ...who, since: base + 21, until: base + 20 }), [])
  })

  it('limit keeps the newest', async () => {
    assert.deepEqual(ids(await client.query({ authors: [alice.pubkey, bob.pubkey], limit: 2 })), ids([other, article]))
  })

  it('every condition of a filter combined', async () => {
    const filter = { authors: [bob.pubkey], kinds: [1], '#e': [root.id], '#p': [alice.pubkey], '#t': [topic], since: base, until: base + 10 }
    assert.deepEqual(ids(await client.query(filter)), ids([reply]))
  })

  it('an empty list matches nothing', async () => {
    assert.deepEqual(await client.query({ authors: [] }), [])
    assert.deepEqual(await client.query({ kinds: [], '#t': [topic] }), [])
  })
})

describe('ordering and multiple filters', () => {
  const signer = newSigner()
  const base = now() - 2000
  let events: NostrEvent[]

  before(async () => {
    // Three events per second over four seconds: ties are ordered by id.
    events = []
    for (let s = 0; s < 4; s++) events.push(...signTied(signer, 3, { created_at: base + s, content: `s${s}` }))
    for (const e of [...events].reverse()) await client.publishOk(e)
  })

  it('returns newest first, ties in created_at ordered by lowest id', async () => {
    assert.deepEqual(ids(await client.query({ authors: [signer.pubkey] })), ids(newestFirst(events).slice(0, DEFAULT_LIMIT)))
    assert.deepEqual(ids(await client.query({ authors: [signer.pubkey], limit: 12 })), ids(newestFirst(events)))
  })

  it('streams each filter in request order, each newest first, each event once', async () => {
    const early = { authors: [signer.pubkey], until: base + 1, limit: 10 }
    const late = { authors: [signer.pubkey], since: base + 2, limit: 10 }
    const expected = [...newestFirst(events.filter(e => e.created_at <= base + 1)), ...newestFirst(events.filter(e => e.created_at >= base + 2))]
    assert.deepEqual(ids(await client.query(early, late)), ids(expected))
  })

  it('sends an event matching two filters once, in the first filter that matches it', async () => {
    const [first, second] = [newestFirst(events)[0] as NostrEvent, newestFirst(events)[1] as NostrEvent]
    const got = await client.query({ ids: [first.id] }, { authors: [signer.pubkey], limit: 2 })
    assert.deepEqual(ids(got), [first.id, second.id])
  })

  it('the union honours each filter’s own limit (overlapping filters)', async () => {
    const sorted = newestFirst(events)
    const got = await client.query({ authors: [signer.pubkey], limit: 2 }, { authors: [signer.pubkey], limit: 3 })
    assert.deepEqual(ids(got), ids(sorted.slice(0, 3)))
  })

  it('limit larger than max_limit is clamped; no limit gives default_limit', async () => {
    const many = newSigner()
    const batch = Array.from({ length: MAX_LIMIT + 5 }, (_, i) => sign(many, { created_at: base + i, content: `m${i}` }))
    for (const e of batch) await client.publishOk(e)
    assert.equal((await client.query({ authors: [many.pubkey], limit: 1000 })).length, MAX_LIMIT)
    assert.equal((await client.query({ authors: [many.pubkey] })).length, DEFAULT_LIMIT)
    assert.deepEqual(ids(await client.query({ authors: [many.pubkey], limit: 3 })), ids(newestFirst(batch).slice(0, 3)))
  })
})

describe('live subscriptions', () => {
  let sub: TestClient
  let signer: Signer

  before(async () => {
    sub = await TestClient.connect(relay.url)
    signer = newSigner()
  })

  after(async () => {
    await sub?.close()
  })

  it('stays open after EOSE and delivers new matching events only', async () => {
    const stored = sign(signer, { content: 'stored' })
    await client.publishOk(stored)
    assert.deepEqual(await sub.req('open', { authors: [signer.pubkey] }), [stored])
    const live = sign(signer, { content: 'live' })
    const unrelated = sign(newSigner(), { content: 'unrelated' })
    await client.publishOk(unrelated)
    await client.publishOk(live)
    assert.deepEqual(await sub.nextEvent('open'), live)
    await sub.sync()
    assert.deepEqual(sub.takeAll(m => m[0] === 'EVENT'), [])
    sub.send(['CLOSE', 'open'])
  })

  it('limit: 0 gives an immediate EOSE and live events still arrive', async () => {
    await client.publishOk(sign(signer, { content: 'before' }))
    assert.deepEqual(await sub.req('zero', { authors: [signer.pubkey], limit: 0 }), [])
    const live = sign(signer, { content: 'after' })
    await client.publishOk(live)
    assert.deepEqual(await sub.nextEvent('zero'), live)
    sub.send(['CLOSE', 'zero'])
  })

  it('a REQ with an existing subscription id replaces it', async () => {
    const other = newSigner()
    assert.deepEqual(await sub.req('same', { authors: [signer.pubkey], limit: 0 }), [])
    const olderOfOther = sign(other, { content: 'stored for other' })
    await client.publishOk(olderOfOther)
    assert.deepEqual(await sub.req('same', { authors: [other.pubkey] }), [olderOfOther])
    await client.publishOk(sign(signer, { content: 'old filter' }))
    const wanted = sign(other, { content: 'new filter' })
    await client.publishOk(wanted)
    assert.deepEqual(await sub.nextEvent('same'), wanted)
    await sub.sync()
    assert.deepEqual(sub.takeAll(m => m[1] === 'same'), [])
    sub.send(['CLOSE', 'same'])
  })

  it('CLOSE stops delivery and gets no reply', async () => {
    assert.deepEqual(await sub.req('closing', { authors: [signer.pubkey], limit: 0 }), [])
    sub.send(['CLOSE', 'closing'])
    sub.send(['CLOSE', 'never-opened'])
    await sub.sync()
    await client.publishOk(sign(signer, { content: 'after close' }))
    await sub.sync()
    assert.deepEqual(
      sub.takeAll(m => m[1] === 'closing' || m[1] === 'never-opened' || m[0] === 'NOTICE'),
      [],
    )
  })

  it('an event published on the subscribing connection itself is delivered to it', async () => {
    assert.deepEqual(await sub.req('self', { authors: [signer.pubkey], limit: 0 }), [])
    const own = sign(signer, { content: 'mine' })
    await sub.publishOk(own)
    assert.deepEqual(await sub.nextEvent('self'), own)
    sub.send(['CLOSE', 'self'])
  })

  it('no event is lost or doubled between the stored part and the live part', async () => {
    const burst = newSigner()
    const events = Array.from({ length: 60 }, (_, i) => sign(burst, { content: `b${i}` }))
    for (const e of events) client.send(['EVENT', e])
    // Subscribe while the burst is being processed.
    const stored = await sub.req('race', { authors: [burst.pubkey], limit: 100 })
    for (const e of events) await client.next(m => m[0] === 'OK' && m[1] === e.id && m[2] === true)
    const seen = new Set(ids(stored))
    while (seen.size < events.length) {
      const e = await sub.nextEvent('race')
      assert.ok(!seen.has(e.id), `event ${e.id} delivered twice`)
      seen.add(e.id)
    }
    await sub.sync()
    assert.deepEqual(sub.takeAll(m => m[1] === 'race'), [])
    sub.send(['CLOSE', 'race'])
  })
})

describe('REQ replacing a subscription', () => {
  it('an invalid REQ reusing an open subscription id closes it: CLOSED, then nothing more for that id', async () => {
    const signer = newSigner()
    const sub = await TestClient.connect(relay.url)
    try {
      assert.deepEqual(await sub.req('reused', { authors: [signer.pubkey] }), [])
      sub.send(['REQ', 'reused', { authors: ['not hex'] }])
      const closed = await sub.next(m => m[0] === 'CLOSED' && m[1] === 'reused')
      assert.match(String(closed[2]), /^invalid: /)
      await client.publishOk(sign(signer, { content: 'after CLOSED' }))
      await sub.sync()
      assert.deepEqual(sub.takeAll(m => m[1] === 'reused'), [])
    } finally {
      await sub.close()
    }
  })

  it('an ids filter with a limit serves the newest of those ids', async () => {
    const signer = newSigner()
    const t = now() - 500
    const events = [0, 1, 2].map(i => sign(signer, { created_at: t + i, content: `i${i}` }))
    for (const e of events) await client.publishOk(e)
    assert.deepEqual(ids(await client.query({ ids: ids(events), limit: 2 })), ids([events[2] as NostrEvent, events[1] as NostrEvent]))
  })
})

/** flushGate, bounded in time. */
const gate = (path: string, command: 'hold' | 'release'): Promise<void> => withTimeout(flushGate(path, command), `the writer's gate to ${command}`)

describe('an event readers see committed before its fan-out has run', () => {
  let gated: TestRelay
  let publisher: TestClient
  let sub: TestClient

  before(async () => {
    // The writer thread holds each commit's answer while told to: the event is readable, its fan-out waits.
    gated = await startTestRelay({}, { writerThread: new URL('../src/testing/gated-write-worker.js', import.meta.url) })
    publisher = await TestClient.connect(gated.url)
    sub = await TestClient.connect(gated.url)
  })

  after(async () => {
    if (gated) await gate(gated.dataDir, 'release')
    await publisher?.close()
    await sub?.close()
    await gated?.close()
  })

  it('reaches a REQ that read it once: in the backfill, not again when its fan-out comes', async () => {
    const signer = newSigner()
    const early = sign(signer, { content: 'read before its fan-out' })
    await gate(gated.dataDir, 'hold')
    publisher.send(['EVENT', early])
    // Its commit becomes readable while the writer's answer waits: REQs until one's backfill holds it.
    let subId = ''
    for (let i = 0; ; i++) {
      assert.ok(i < 500, 'the event never became readable')
      subId = `early-${i}`
      const stored = await sub.req(subId, { authors: [signer.pubkey] })
      if (stored.length > 0) {
        assert.deepEqual(stored, [early])
        break
      }
      sub.send(['CLOSE', subId])
      await new Promise(resolve => setTimeout(resolve, 10))
    }
    await gate(gated.dataDir, 'release')
    assert.deepEqual(await publisher.next(m => m[0] === 'OK' && m[1] === early.id), ['OK', early.id, true, ''])
    // Fan-out keeps commit order: a second delivery of the first event would come before this one.
    const later = sign(signer, { content: 'live' })
    await publisher.publishOk(later)
    assert.deepEqual(await sub.nextEvent(subId), later)
    await sub.sync()
    assert.deepEqual(sub.takeAll(m => m[1] === subId), [])
  })
})
