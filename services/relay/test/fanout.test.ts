// Live fan-out end to end: many subscribers, exact-once delivery, no false matches, slow clients dropped alone.
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { newSigner, now, sign, startTestRelay, TestClient, type NostrEvent, type Signer, type TestRelay } from './harness.js'

const SUBSCRIBERS = 50

/** Fifty filters of every shape, all matching `event`. */
const matchingFilters = (event: NostrEvent, count: number): Record<string, unknown>[] => {
  const shapes: Record<string, unknown>[] = [
    { authors: [event.pubkey] },
    { kinds: [event.kind] },
    { '#t': ['fanout'] },
    { '#p': [event.tags.find(t => t[0] === 'p')?.[1]] },
    { ids: [event.id] },
    {},
    { authors: [event.pubkey], kinds: [event.kind], '#t': ['fanout', 'other'] },
    { since: event.created_at - 10, until: event.created_at + 10 },
    { kinds: [30000, event.kind], '#p': [event.tags.find(t => t[0] === 'p')?.[1]] },
    { authors: [newSigner().pubkey, event.pubkey], limit: 0 },
  ]
  return Array.from({ length: count }, (_, i) => shapes[i % shapes.length] as Record<string, unknown>)
}

describe('fan-out to many subscribers', () => {
  let relay: TestRelay
  let publisher: TestClient
  let signer: Signer
  let tagged: Signer

  before(async () => {
    relay = await startTestRelay({ 'limitation.max_subscriptions': SUBSCRIBERS + 5 })
    publisher = await TestClient.connect(relay.url)
    signer = newSigner()
    tagged = newSigner()
  })

  after(async () => {
    await publisher?.close()
    await relay?.close()
  })

  const nextEvent = (created_at = now() + 1): NostrEvent =>
    sign(signer, { kind: 1, created_at, tags: [['t', 'fanout'], ['p', tagged.pubkey]], content: `fan ${Math.random()}` })

  it(`${SUBSCRIBERS} subscriptions on one connection each receive a matching event exactly once`, async () => {
    const event = nextEvent()
    const client = await TestClient.connect(relay.url)
    try {
      const filters = matchingFilters(event, SUBSCRIBERS)
      for (const [i, filter] of filters.entries()) assert.deepEqual(await client.req(`s${i}`, { ...filter, limit: 0 }), [])
      await publisher.publishOk(event)
      const got = new Map<string, number>()
      for (let i = 0; i < SUBSCRIBERS; i++) {
        const m = await client.next(x => x[0] === 'EVENT')
        assert.deepEqual(m[2], event)
        got.set(String(m[1]), (got.get(String(m[1])) ?? 0) + 1)
      }
      assert.equal(got.size, SUBSCRIBERS)
      await client.sync()
      assert.deepEqual(client.takeAll(m => m[0] === 'EVENT'), [])
    } finally {
      await client.close()
    }
  })

  it(`${SUBSCRIBERS} connections each receive a matching event exactly once`, async () => {
    const event = nextEvent()
    const filters = matchingFilters(event, SUBSCRIBERS)
    const clients = await Promise.all(filters.map(() => TestClient.connect(relay.url)))
    try {
      await Promise.all(clients.map((c, i) => c.req('sub', { ...filters[i], limit: 0 })))
      await publisher.publishOk(event)
      const received = await Promise.all(clients.map(c => c.nextEvent('sub')))
      for (const e of received) assert.deepEqual(e, event)
      await Promise.all(clients.map(c => c.sync()))
      for (const c of clients) assert.deepEqual(c.takeAll(m => m[0] === 'EVENT'), [])
    } finally {
      await Promise.all(clients.map(c => c.close()))
    }
  })

  it('filters that do not match receive nothing', async () => {
    const event = nextEvent(now())
    const client = await TestClient.connect(relay.url)
    try {
      const near: Record<string, unknown>[] = [
        { authors: [tagged.pubkey] },
        { kinds: [2] },
        { '#t': ['fanout-not'] },
        { '#p': [signer.pubkey] },
        { ids: ['0'.repeat(64)] },
        { authors: [signer.pubkey], kinds: [7] },
        { kinds: [1], '#t': ['nope'] },
        { authors: [signer.pubkey], since: event.created_at + 1 },
        { authors: [signer.pubkey], until: event.created_at - 1 },
        { '#t': ['fanout'], '#e': ['1'.repeat(64)] },
        { '#T': ['fanout'] },
        { authors: [] },
      ]
      for (const [i, filter] of near.entries()) assert.deepEqual(await client.req(`n${i}`, { ...filter, limit: 0 }), [])
      assert.deepEqual(await client.req('control', { ids: [event.id] }), [])
      await publisher.publishOk(event)
      // The control subscription's delivery comes in the same flush as any (wrong) other delivery.
      assert.deepEqual(await client.nextEvent('control'), event)
      await client.sync()
      assert.deepEqual(client.takeAll(m => m[0] === 'EVENT'), [])
    } finally {
      await client.close()
    }
  })

  it('an event matching several filters of one subscription arrives once', async () => {
    const event = nextEvent()
    const client = await TestClient.connect(relay.url)
    try {
      const filters = matchingFilters(event, 10).map(f => ({ ...f, limit: 0 }))
      assert.deepEqual(await client.req('multi', ...filters.slice(0, 10)), [])
      await publisher.publishOk(event)
      assert.deepEqual(await client.nextEvent('multi'), event)
      await client.sync()
      assert.deepEqual(client.takeAll(m => m[0] === 'EVENT'), [])
    } finally {
      await client.close()
    }
  })

  it('an event matching a subscription on several connections and several subscriptions reaches each once', async () => {
    const event = nextEvent()
    const a = await TestClient.connect(relay.url)
    const b = await TestClient.connect(relay.url)
    try {
      await a.req('x', { authors: [signer.pubkey], limit: 0 })
      await a.req('y', { '#t': ['fanout'], limit: 0 }, { kinds: [1], limit: 0 })
      await b.req('x', { '#p': [tagged.pubkey], limit: 0 })
      await publisher.publishOk(event)
      assert.deepEqual(await a.nextEvent('x'), event)
      assert.deepEqual(await a.nextEvent('y'), event)
      assert.deepEqual(await b.nextEvent('x'), event)
      await Promise.all([a.sync(), b.sync()])
      assert.deepEqual([...a.takeAll(m => m[0] === 'EVENT'), ...b.takeAll(m => m[0] === 'EVENT')], [])
    } finally {
      await a.close()
      await b.close()
    }
  })

  it('events from several publishers sending at once reach every subscriber, each publisher\'s in the order it sent them', async () => {
    const PUBLISHERS = 4
    const PER_PUBLISHER = 50
    const signers = Array.from({ length: PUBLISHERS }, () => newSigner())
    const sent = signers.map((author, p) =>
      Array.from({ length: PER_PUBLISHER }, (_, i) => sign(author, { kind: 1, created_at: now(), tags: [['t', 'order']], content: `${p}:${i}` })),
    )
    const publishers = await Promise.all(signers.map(() => TestClient.connect(relay.url)))
    // Two connections; the same subscription id on both (they share frames), and a second subscription on one.
    const [a, b] = [await TestClient.connect(relay.url), await TestClient.connect(relay.url)]
    try {
      await a.req('x', { '#t': ['order'], limit: 0 })
      await a.req('y', { kinds: [1], authors: signers.map(s => s.pubkey), limit: 0 })
      await b.req('x', { '#t': ['order'], limit: 0 })
      // Every EVENT sent at once, none waiting for its OK.
      for (const [p, client] of publishers.entries()) for (const event of sent[p] ?? []) client.send(['EVENT', event])
      const oks = await Promise.all(publishers.map(c => Promise.all(Array.from({ length: PER_PUBLISHER }, () => c.next(m => m[0] === 'OK')))))
      assert.ok(oks.flat().every(ok => ok[2] === true), 'every event accepted')
      const all = PUBLISHERS * PER_PUBLISHER
      for (const [client, subId] of [[a, 'x'], [a, 'y'], [b, 'x']] as const) {
        const received: string[] = []
        for (let i = 0; i < all; i++) received.push((await client.nextEvent(subId)).content)
        for (let p = 0; p < PUBLISHERS; p++)
          assert.deepEqual(received.filter(c => c.startsWith(`${p}:`)), Array.from({ length: PER_PUBLISHER }, (_, i) => `${p}:${i}`), `${subId}: publisher ${p}`)
      }
      await Promise.all([a.sync(), b.sync()])
      assert.deepEqual([...a.takeAll(m => m[0] === 'EVENT'), ...b.takeAll(m => m[0] === 'EVENT')], [], 'nothing twice')
    } finally {
      await Promise.all([a, b, ...publishers].map(c => c.close()))
    }
  })
})

describe('slow clients', () => {
  let relay: TestRelay

  before(async () => {
    relay = await startTestRelay({ 'network.max_outbound_buffer': 65536 })
  })

  after(async () => {
    await relay?.close()
  })

  it(
    'a fast client whose REQ backfill is larger than max_outbound_buffer gets all of it, not a disconnect',
    async () => {
      const signer = newSigner()
      const publisher = await TestClient.connect(relay.url)
      const reader = await TestClient.connect(relay.url)
      try {
        const events = Array.from({ length: 12 }, (_, i) => sign(signer, { created_at: now() - i, content: `${i} ${'b'.repeat(30_000)}` }))
        for (const e of events) await publisher.publishOk(e)
        const got = await reader.req('big', { authors: [signer.pubkey], limit: 12 })
        assert.equal(got.length, 12)
        assert.ok(reader.isOpen)
      } finally {
        await Promise.all([publisher.close(), reader.close()])
      }
    },
  )

  it(
    'a fast subscriber receiving a burst larger than max_outbound_buffer in one turn is not disconnected',
    async () => {
      const signer = newSigner()
      const publisher = await TestClient.connect(relay.url)
      const reader = await TestClient.connect(relay.url)
      try {
        await reader.req('burst', { authors: [signer.pubkey], limit: 0 })
        const events = Array.from({ length: 20 }, (_, i) => sign(signer, { content: `${i} ${'c'.repeat(10_000)}` }))
        for (const e of events) publisher.send(['EVENT', e])
        for (const e of events) await publisher.next(m => m[0] === 'OK' && m[1] === e.id && m[2] === true)
        for (let i = 0; i < events.length; i++) await reader.nextEvent('burst')
        assert.ok(reader.isOpen)
      } finally {
        await Promise.all([publisher.close(), reader.close()])
      }
    },
  )

  it('a client that stops reading is disconnected (1008, with a reason) while another subscriber keeps receiving everything', async t => {
    const signer = newSigner()
    const publisher = await TestClient.connect(relay.url)
    const fast = await TestClient.connect(relay.url)
    const slow = await TestClient.connect(relay.url)
    const connected = relay.running.relay.clients.size
    try {
      await fast.req('all', { authors: [signer.pubkey], limit: 0 })
      await slow.req('all', { authors: [signer.pubkey], limit: 0 })
      slow.pauseReading()
      const content = 'z'.repeat(30_000)
      const published: string[] = []
      // Publish one event at a time (each well under the bound) until the relay gives up on the slow
      // client: the loopback socket buffers fill first, then the relay's queue passes the bound.
      while (relay.running.relay.clients.size === connected) {
        assert.ok(published.length < 3000, 'the slow client was never disconnected')
        const event = sign(signer, { content: `${published.length} ${content}` })
        await publisher.publishOk(event)
        assert.equal((await fast.nextEvent('all')).id, event.id)
        published.push(event.id)
      }
      t.diagnostic(`slow client dropped after ${published.length} events of 30 kB`)
      // More events after the drop still reach the fast subscriber, in order.
      for (let i = 0; i < 5; i++) {
        const event = sign(signer, { content: `after ${i}` })
        await publisher.publishOk(event)
        assert.equal((await fast.nextEvent('all')).id, event.id)
        published.push(event.id)
      }
      await fast.sync()
      assert.deepEqual(fast.takeAll(m => m[0] === 'EVENT'), [])
      assert.ok(fast.isOpen)
      // The slow client, once it reads again, finds its connection closed, having missed events.
      slow.resumeReading()
      // It reads what was queued, then the close frame: it learns why (1008 and a reason), no bare TCP close.
      assert.deepEqual(await slow.waitClosed(), { code: 1008, reason: 'outbound buffer exceeded: client too slow' })
      assert.ok(slow.history.filter(m => m[0] === 'EVENT').length < published.length)
    } finally {
      await Promise.all([publisher.close(), fast.close(), slow.close()])
    }
  })
})
