// `data.max_size`: past the cap the relay refuses EVENTs as it does on a full disk (STORE_FULL), keeps serving
// REQs, still stores deletions and relays ephemeral events, and stores again once deletions bring the store
// under the cap or a reload raises it. A real relay over WebSocket on a real LMDB directory.
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import type { NostrEvent } from '@msr/nostr'
import { STORE_FULL } from '../src/pipeline/writer.js'
import { samples } from './client-helpers.js'
import { newSigner, sign, startTestRelay, testConfig, TestClient, type TestRelay } from './harness.js'

const CAP = 512 * 1024
const KEY = 'metrics-key-0123456789abcdef'
const FILLER = 'x'.repeat(2000)

describe('data.max_size', () => {
  let relay: TestRelay
  let client: TestClient
  const author = newSigner()

  before(async () => {
    relay = await startTestRelay({ 'data.max_size': CAP, 'metrics.enabled': true, 'metrics.auth': KEY })
    client = await TestClient.connect(relay.url)
  })
  after(async () => {
    await client?.close()
    await relay?.close()
  })

  /** Publishes filler notes until one is refused; the ones stored and the refusal. */
  const fill = async (label: string): Promise<{ stored: NostrEvent[]; refused: NostrEvent; reason: string }> => {
    const stored: NostrEvent[] = []
    for (let i = 0; i < 2000; i++) {
      const event = sign(author, { content: `${label} ${i} ${FILLER}` })
      const answer = await client.publish(event)
      if (answer[2] === false) return { stored, refused: event, reason: String(answer[3]) }
      stored.push(event)
    }
    throw new Error(`2000 events of 2 kB stored under a cap of ${CAP} bytes: the cap is not enforced`)
  }

  /** The store gauges as /metrics serves them. */
  const gauges = async (): Promise<{ used: number | undefined; max: number | undefined }> => {
    const res = await fetch(`http://127.0.0.1:${relay.port}/metrics`, { headers: { Authorization: `Bearer ${KEY}` } })
    const m = samples(await res.text())
    return { used: m.get('msr_relay_store_used_bytes'), max: m.get('msr_relay_store_max_bytes') }
  }

  let first: { stored: NostrEvent[]; refused: NostrEvent; reason: string }

  it('refuses EVENTs past the cap with the full-storage answer, and the refused event is not stored', async () => {
    first = await fill('first')
    assert.equal(first.reason, STORE_FULL)
    assert.ok(first.stored.length > 50, `only ${first.stored.length} events stored before the refusal`)
    const { used, max } = await gauges()
    assert.equal(max, CAP)
    assert.ok(used !== undefined && used >= CAP, `refused while the store was under its cap (store_used_bytes ${used})`)
    assert.deepEqual(await client.query({ ids: [first.refused.id] }), [], 'the refused event was stored')
  })

  it('still serves REQs and relays ephemeral events', async () => {
    const ids = first.stored.slice(0, 10).map(e => e.id)
    assert.deepEqual(new Set((await client.query({ ids })).map(e => e.id)), new Set(ids))
    await client.publishOk(sign(author, { kind: 20001, content: 'ephemeral: never stored' }))
  })

  it('stores a deletion past the cap, and new events once it brings the store under', async () => {
    const gone = first.stored.slice(0, Math.ceil(first.stored.length / 2))
    await client.publishOk(sign(author, { kind: 5, tags: gone.map(e => ['e', e.id]) }))
    const { used } = await gauges()
    assert.ok(used !== undefined && used < CAP, `the deletion did not bring the store under its cap (store_used_bytes ${used})`)
    assert.deepEqual(await client.query({ ids: gone.slice(0, 20).map(e => e.id) }), [])
    await client.publishOk(sign(author, { content: 'stored again after the deletion' }))
  })

  it('stores again once a reload raises the cap', async () => {
    const second = await fill('second')
    assert.equal(second.reason, STORE_FULL)
    const outcome = relay.running.settings.reload(testConfig(relay.dataDir, { 'data.max_size': 4 * CAP, 'metrics.enabled': true, 'metrics.auth': KEY }))
    assert.deepEqual(outcome.applied, ['data.max_size'])
    assert.equal((await gauges()).max, 4 * CAP)
    await client.publishOk(second.refused)
    assert.equal((await client.query({ ids: [second.refused.id] })).length, 1)
  })
})
