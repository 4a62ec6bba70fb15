// NIP-40 expiration end to end: refused when already expired, never served once expired, swept in background.
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { EventStore } from '../src/store/event-store.js'
import { ids, newSigner, now, sign, startTestRelay, TestClient, waitUntil, type TestRelay } from './harness.js'

const expiring = (seconds: number) => [['expiration', String(now() + seconds)]]

describe('expiration at publish and query time', () => {
  let relay: TestRelay
  let client: TestClient

  before(async () => {
    // The sweeper stays out of the way here (default 1 minute): what is tested is the query-time filter.
    relay = await startTestRelay()
    client = await TestClient.connect(relay.url)
  })

  after(async () => {
    await client?.close()
    await relay?.close()
  })

  it('refuses an already expired event with OK false "invalid:"', async () => {
    const signer = newSigner()
    for (const at of [now() - 10, now() - 3600, 0]) {
      const event = sign(signer, { tags: [['expiration', String(at)]], content: `expired at ${at}` })
      const ok = await client.publish(event)
      assert.equal(ok[2], false)
      assert.match(ok[3], /^invalid: /)
      assert.deepEqual(await client.query({ ids: [event.id] }), [])
    }
  })

  it('serves an event before it expires and never after', async () => {
    const signer = newSigner()
    const soon = sign(signer, { tags: expiring(3), content: 'short-lived' })
    const lasting = sign(signer, { tags: expiring(3600), content: 'long-lived' })
    await client.publishOk(soon)
    await client.publishOk(lasting)
    const live = await TestClient.connect(relay.url)
    try {
      assert.deepEqual(new Set(ids(await live.req('before', { authors: [signer.pubkey] }))), new Set([soon.id, lasting.id]))
      assert.deepEqual(await client.count('c-before', { authors: [signer.pubkey] }), ['COUNT', 'c-before', { count: 2 }])
      await waitUntil(async () => (await client.query({ ids: [soon.id] })).length === 0, 'the event to expire', 20_000, 250)
      assert.deepEqual(ids(await client.query({ authors: [signer.pubkey] })), [lasting.id])
      assert.deepEqual(await client.count('c-after', { authors: [signer.pubkey] }), ['COUNT', 'c-after', { count: 1 }])
      // Publishing it again now is refused as expired.
      const again = await client.publish(soon)
      assert.equal(again[2], false)
    } finally {
      await live.close()
    }
  })

  it('an event without a valid expiration tag never expires', async () => {
    const signer = newSigner()
    const event = sign(signer, { tags: [['expiration', 'soon']], content: 'no numeric expiration' })
    await client.publishOk(event)
    assert.deepEqual(await client.query({ ids: [event.id] }), [event])
  })
})

describe('expiration sweeper', () => {
  it('deletes expired events from the store in the background', async () => {
    const relay = await startTestRelay({ 'data.expiration_sweep_interval': '200ms' }, { logLevel: 'info' })
    try {
      const client = await TestClient.connect(relay.url)
      const signer = newSigner()
      const soon = sign(signer, { tags: expiring(2), content: 'swept' })
      const lasting = sign(signer, { content: 'kept' })
      await client.publishOk(soon)
      await client.publishOk(lasting)
      assert.deepEqual(await client.count('c1', { authors: [signer.pubkey] }), ['COUNT', 'c1', { count: 2 }])
      const swept = await relay.waitForLog(r => r.message === 'deleted expired events', 20_000)
      assert.equal(swept.deleted, 1)
      assert.deepEqual(await client.count('c2', { authors: [signer.pubkey] }), ['COUNT', 'c2', { count: 1 }])
      assert.deepEqual(await client.query({ authors: [signer.pubkey] }), [lasting])
      await client.close()
      await relay.stop()
      // The store itself no longer holds the expired event, not just the query-time filter.
      const store = EventStore.open(relay.dataDir)
      try {
        assert.equal(store.size(), 1)
        assert.equal(store.get(soon.id), undefined)
        assert.ok(store.get(lasting.id))
      } finally {
        await store.close()
      }
    } finally {
      await relay.close()
    }
  })
})
