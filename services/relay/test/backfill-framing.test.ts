// REQ answers are framed by the query workers: with no WebSocket extension the relay writes them as
// ready wire bytes, with permessage-deflate it hands each frame to ws. Both must reach a client intact,
// for every header size an event can need (16-bit and 64-bit payload lengths: an event frame is never
// under 126 bytes).
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { samples } from './client-helpers.js'
import { newSigner, now, sign, startTestRelay, TestClient, type NostrEvent, type TestRelay } from './harness.js'

const sizes = [10, 2_000, 60_000, 150_000] // content bytes: 16-bit lengths up to 65535, then 64-bit

for (const deflate of [false, true]) {
  describe(`REQ backfill framing, permessage_deflate ${deflate ? 'on' : 'off'}`, () => {
    let relay: TestRelay
    let client: TestClient
    const signer = newSigner()
    const events: NostrEvent[] = []

    before(async () => {
      relay = await startTestRelay({ 'network.permessage_deflate': deflate })
      client = await TestClient.connect(relay.url)
      const base = now() // once: a second ticking over mid-loop would tie two created_at values
      for (const [i, size] of sizes.entries()) {
        const event = sign(signer, { created_at: base - i, content: `${i}:${'é'.repeat(size / 2)}` })
        await client.publishOk(event)
        events.push(event)
      }
    })

    after(async () => {
      await client?.close()
      await relay?.close()
    })

    it('negotiates the extension only when configured', () => {
      assert.equal(client.ws.extensions.includes('permessage-deflate'), deflate)
    })

    it('delivers every stored event byte for byte, newest first, then EOSE', async () => {
      assert.deepEqual(await client.query({ authors: [signer.pubkey] }), events)
    })

    it('keeps frames of several subscriptions and live events in order on one connection', async () => {
      client.send(['REQ', 'a', { authors: [signer.pubkey], limit: 2 }])
      client.send(['REQ', 'b', { authors: [signer.pubkey] }])
      const a = await client.collectUntilEose('a')
      const b = await client.collectUntilEose('b')
      assert.deepEqual(a, events.slice(0, 2))
      assert.deepEqual(b, events)
      const live = sign(signer, { content: 'live after backfill' })
      await client.publishOk(live)
      assert.deepEqual(await client.nextEvent('a'), live)
      assert.deepEqual(await client.nextEvent('b'), live)
    })
  })
}

describe('REQ backfill larger than a slab of the shared arena (1 MiB)', () => {
  const METRICS_KEY = 'metrics-key-for-framing-tests-01'
  let relay: TestRelay

  before(async () => {
    relay = await startTestRelay({ 'metrics.enabled': true, 'metrics.auth': METRICS_KEY })
  })

  after(async () => {
    await relay?.close()
  })

  const allocated = async (): Promise<number> => {
    const res = await fetch(`http://127.0.0.1:${relay.port}/metrics`, { headers: { authorization: `Bearer ${METRICS_KEY}` } })
    return samples(await res.text()).get('msr_relay_backfills_allocated_total') ?? Number.NaN
  }

  it('arrives whole from an allocated buffer, counted; an answer that fits a slab is not', async () => {
    const signer = newSigner()
    const client = await TestClient.connect(relay.url)
    try {
      const base = now()
      const events = Array.from({ length: 9 }, (_, i) => sign(signer, { created_at: base - i, content: `${i}:${'x'.repeat(150_000)}` }))
      for (const event of events) await client.publishOk(event)
      assert.equal(await allocated(), 0)
      assert.deepEqual(await client.query({ authors: [signer.pubkey], limit: 2 }), events.slice(0, 2))
      assert.equal(await allocated(), 0, '300 KB fits a slab')
      assert.deepEqual(await client.query({ authors: [signer.pubkey] }), events, '1.35 MB, newest first, byte for byte')
      assert.equal(await allocated(), 1)
    } finally {
      await client.close()
    }
  })
})
