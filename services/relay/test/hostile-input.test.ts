// Hostile input found by fuzzing (issue "Hostile input: seven defects"), each sent exactly:
// - subscriptions within the old limits holding millions of filter values (memory and latency blow-up):
//   a budget of filter values per connection and per address, refused with CLOSED "blocked:";
// - a burst of 200 WebSocket pings: every ping answered, the connection kept.
// (The slow reader's close frame is checked in fanout.test.ts.)
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { after, before, describe, it } from 'node:test'
import { newSigner, sign, startTestRelay, TestClient, type RelayMessage, type TestRelay } from './harness.js'

const PER_CONNECTION = 10_000
const PER_IP = 40_000
const KEY = 'hostile-metrics-key-0123456789'
/**
 * REQs per attacking connection. The fuzzer sent 50; each refusal pauses the connection's reading (50 ms
 * doubling, up to 1 s), so 10 in a row already take ~3 s to be answered.
 */
const REQS = 10

let relay: TestRelay

before(async () => {
  relay = await startTestRelay({ 'metrics.enabled': true, 'metrics.auth': KEY })
})
after(() => relay.close())

const hex = () => randomBytes(32).toString('hex')
/** An id no event has: a one-value filter that matches nothing. */
const NOTHING = '0'.repeat(64)

/** The fuzzer's filter: hundreds of authors and about 1,400 `#t` values (a REQ of 20 is ~470 KiB). */
const hugeFilter = () => ({
  authors: Array.from({ length: 300 }, hex),
  '#t': Array.from({ length: 1400 }, (_, i) => `topic-${i}-${randomBytes(4).toString('hex')}`),
})

const answerTo = (subId: string) => (m: RelayMessage) => (m[0] === 'EOSE' || m[0] === 'CLOSED') && m[1] === subId

/** `msr_relay_subscription_filter_values` as /metrics shows it. */
const heldValues = async (): Promise<number> => {
  const res = await fetch(`http://127.0.0.1:${relay.port}/metrics`, { headers: { Authorization: `Bearer ${KEY}` } })
  const line = (await res.text()).split('\n').find(l => l.startsWith('msr_relay_subscription_filter_values '))
  return Number(line?.split(' ')[1])
}

describe('the filter-value budget (max_filter_values, max_filter_values_per_ip)', () => {
  it("refuses the fuzzer's REQs (20 filters of ~1,700 values, ~470 KiB) with CLOSED \"blocked:\", holds nothing for them, reads the sender more slowly", async () => {
    const before = await heldValues()
    const attackers = await Promise.all([TestClient.connect(relay.url), TestClient.connect(relay.url)])
    try {
      for (const [c, client] of attackers.entries()) {
        for (let s = 0; s < REQS; s++) {
          const req = ['REQ', `a${c}-${s}`, ...Array.from({ length: 20 }, hugeFilter)]
          if (s === 0) assert.ok(JSON.stringify(req).length > 400_000, 'the REQ is as large as the fuzzer sent')
          client.send(req)
        }
      }
      for (const [c, client] of attackers.entries()) {
        for (let s = 0; s < REQS; s++) {
          const reply = await client.next(answerTo(`a${c}-${s}`))
          assert.equal(reply[0], 'CLOSED')
          assert.match(String(reply[2]), /^blocked: these filters hold 34000 values .* at most 10000 together/)
        }
      }
      assert.equal(await heldValues(), before)
      // The relay still answers everyone at once.
      const probe = await TestClient.connect(relay.url)
      const note = sign(newSigner())
      await probe.publishOk(note)
      assert.deepEqual((await probe.query({ ids: [note.id] })).map(e => e.id), [note.id])
      await probe.close()
    } finally {
      await Promise.all(attackers.map(a => a.close()))
    }
  })

  it('per connection: subscriptions fill the budget, one more is refused, closing one gives its values back', async () => {
    const client = await TestClient.connect(relay.url)
    try {
      const authors = (n: number) => ({ authors: Array.from({ length: n }, hex) })
      assert.deepEqual(await client.req('s1', authors(6000)), [])
      assert.deepEqual(await client.req('s2', authors(4000)), [])
      client.send(['REQ', 's3', { ids: [NOTHING] }])
      const refused = await client.next(answerTo('s3'))
      assert.equal(refused[0], 'CLOSED')
      assert.match(String(refused[2]), /^blocked: these filters hold 1 values and this connection's open subscriptions 10000; at most 10000 together/)
      client.send(['CLOSE', 's2'])
      assert.deepEqual(await client.req('s3', { ids: [NOTHING] }), [])
      // Replacing a subscription gives back what it held first.
      assert.deepEqual(await client.req('s1', authors(9000)), [])
    } finally {
      await client.close()
    }
  })

  it('per address: the connections from one address share max_filter_values_per_ip; a disconnect gives all back', async () => {
    const before = await heldValues()
    const clients = await Promise.all(Array.from({ length: 5 }, () => TestClient.connect(relay.url)))
    try {
      const full = { authors: Array.from({ length: PER_CONNECTION }, hex) }
      for (const client of clients.slice(0, 4)) assert.deepEqual(await client.req('full', full), [])
      assert.equal(await heldValues(), before + PER_IP)
      const last = clients[4] as TestClient
      last.send(['REQ', 'one', { ids: [NOTHING] }])
      const refused = await last.next(answerTo('one'))
      assert.match(String(refused[2]), /^blocked: the connections from your address hold 40000 filter values; at most 40000 together/)
      await (clients[0] as TestClient).close()
      for (let i = 0; i < 100 && (await heldValues()) !== before + 3 * PER_CONNECTION; i++) await new Promise(resolve => setTimeout(resolve, 20))
      assert.deepEqual(await last.req('one', { ids: [NOTHING] }), [])
    } finally {
      await Promise.all(clients.map(c => c.close()))
    }
    for (let i = 0; i < 100 && (await heldValues()) !== before; i++) await new Promise(resolve => setTimeout(resolve, 20))
    assert.equal(await heldValues(), before, 'every value given back')
  })

  it('live events still reach a subscription with many values, matched by set lookups', async () => {
    const client = await TestClient.connect(relay.url)
    const publisher = await TestClient.connect(relay.url)
    try {
      const signer = newSigner()
      const tags = Array.from({ length: 1400 }, (_, i) => `t${i}`)
      await client.req('many', { authors: [...Array.from({ length: 300 }, hex), signer.pubkey], '#t': tags, limit: 0 })
      const hit = sign(signer, { tags: [['t', 't1399']] })
      const miss = sign(signer, { tags: [['t', 'elsewhere']] })
      await publisher.publishOk(miss)
      await publisher.publishOk(hit)
      assert.equal((await client.nextEvent('many')).id, hit.id)
      await client.sync()
      assert.deepEqual(client.takeAll(m => m[0] === 'EVENT'), [])
    } finally {
      await Promise.all([client.close(), publisher.close()])
    }
  })
})

describe('WebSocket pings', () => {
  it('a burst of 200 pings gets 200 pongs and the connection stays open', async () => {
    const client = await TestClient.connect(relay.url)
    try {
      let pongs = 0
      const all = new Promise<void>(resolve => client.ws.on('pong', () => ++pongs === 200 && resolve()))
      for (let i = 0; i < 200; i++) client.ws.ping(`ping ${i}`)
      await all
      assert.ok(client.isOpen)
      await client.sync()
    } finally {
      await client.close()
    }
  })
})
