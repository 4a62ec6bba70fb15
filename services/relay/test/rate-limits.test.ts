// [rate_limiter] end to end: event rules per client IP and per authenticated pubkey, connections per IP, REQs per minute.
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { connectFrom, upgradeStatus } from './client-helpers.js'
import { AUTH_ON, newSigner, sign, startTestRelay, TestClient, waitUntil, type TestRelay } from './harness.js'

/** The spec's two rules (445: 100/min, 446: 50/min), scaled down so a test can exhaust them. */
const SPEC_RULES = [
  { name: 'mls_group_messages', description: 'MLS messages (kind 445)', period: '1m', limit: 3, kinds: [445], ip_whitelist: ['10.9.0.0/16', 'fd00::/8'] },
  { name: 'noise_dms', description: 'Noise DMs (kind 446)', period: '1m', limit: 2, kinds: [446] },
]
const MLS_LIMITED = 'rate-limited: MLS messages (kind 445)'
const DMS_LIMITED = 'rate-limited: Noise DMs (kind 446)'

const open: TestClient[] = []
const track = async (client: Promise<TestClient>): Promise<TestClient> => {
  const c = await client
  open.push(c)
  return c
}
after(() => Promise.all(open.map(c => c.close())))

/** An MLS group message: kind 445, signed by a throwaway key. */
const mls = (content = 'ciphertext') => sign(newSigner(), { kind: 445, content, tags: [['h', 'group-1']] })
/** A Noise DM to someone. */
const dm = () => sign(newSigner(), { kind: 446, tags: [['p', newSigner().pubkey]] })

/** The OK messages' accepted flag and message for `events` published in order on `client`. */
const publishAll = async (client: TestClient, events: ReturnType<typeof mls>[]) => {
  const answers: Array<[boolean, string]> = []
  for (const event of events) {
    const [, , accepted, message] = await client.publish(event)
    answers.push([accepted, message])
  }
  return answers
}

const accepted = (n: number): Array<[boolean, string]> => Array.from({ length: n }, () => [true, ''])

describe('event rules per client IP (behind one trusted proxy, without auth)', () => {
  let relay: TestRelay

  before(async () => {
    relay = await startTestRelay({
      'network.trusted_proxies': 1,
      'auth.auth_required_kinds': [],
      'rate_limiter.event': SPEC_RULES,
    })
  })
  after(() => relay?.close())

  it('answers the 4th kind-445 event with OK false "rate-limited: <description>" and does not store it', async () => {
    const client = await track(connectFrom(relay.url, '10.1.0.1'))
    const events = [mls('1'), mls('2'), mls('3'), mls('4')]
    assert.deepEqual(await publishAll(client, events.slice(0, 3)), accepted(3))
    const fourth = events[3]!
    assert.deepEqual(await client.publish(fourth), ['OK', fourth.id, false, MLS_LIMITED])
    assert.deepEqual(await client.query({ ids: [fourth.id] }), [])
    assert.equal((await client.query({ kinds: [445], '#h': ['group-1'] })).length >= 3, true)
  })

  it('limits kind 446 by its own rule and leaves other kinds alone', async () => {
    const client = await track(connectFrom(relay.url, '10.1.0.2'))
    assert.deepEqual(await publishAll(client, [dm(), dm(), dm()]), [...accepted(2), [false, DMS_LIMITED]])
    const author = newSigner()
    const others = [1, 7, 1, 0, 30023, 1, 7, 1].map((kind, i) => sign(author, { kind, content: `n${i}`, tags: kind === 30023 ? [['d', 'x']] : [] }))
    assert.deepEqual(await publishAll(client, others), accepted(others.length))
    // 445 has a budget of its own, still whole for this address.
    assert.deepEqual(await publishAll(client, [mls(), mls(), mls()]), accepted(3))
  })

  it('counts a second address separately, and a forged left-most X-Forwarded-For entry does not buy a fresh budget', async () => {
    const first = await track(connectFrom(relay.url, '10.1.0.3'))
    assert.deepEqual(await publishAll(first, [mls(), mls(), mls(), mls()]), [...accepted(3), [false, MLS_LIMITED]])
    const second = await track(connectFrom(relay.url, '10.1.0.4'))
    assert.deepEqual(await publishAll(second, [mls(), mls(), mls(), mls()]), [...accepted(3), [false, MLS_LIMITED]])
    const forger = await track(connectFrom(relay.url, '203.0.113.77, 10.1.0.3'))
    assert.deepEqual(await publishAll(forger, [mls()]), [[false, MLS_LIMITED]])
  })

  it('counts an address across its connections', async () => {
    const a = await track(connectFrom(relay.url, '10.1.0.5'))
    const b = await track(connectFrom(relay.url, '10.1.0.5'))
    assert.deepEqual(await publishAll(a, [mls(), mls()]), accepted(2))
    assert.deepEqual(await publishAll(b, [mls(), mls()]), [...accepted(1), [false, MLS_LIMITED]])
  })

  it('exempts addresses and ranges on the rule ip_whitelist (IPv4 and IPv6), and only from that rule', async () => {
    for (const ip of ['10.9.1.1', 'fd00::5']) {
      const client = await track(connectFrom(relay.url, ip))
      const events = Array.from({ length: 6 }, (_, i) => mls(`exempt ${i}`))
      assert.deepEqual(await publishAll(client, events), accepted(6), ip)
      assert.deepEqual(await publishAll(client, [dm(), dm(), dm()]), [...accepted(2), [false, DMS_LIMITED]], ip)
    }
  })
})

describe('event rules per authenticated pubkey', () => {
  let relay: TestRelay

  before(async () => {
    relay = await startTestRelay({
      ...AUTH_ON,
      'network.trusted_proxies': 1,
      'rate_limiter.event': SPEC_RULES,
    })
  })
  after(() => relay?.close())

  it('the same pubkey from two addresses shares one budget; another pubkey from the same address still meets the address budget', async () => {
    const member = newSigner()
    const a = await track(connectFrom(relay.url, '10.4.0.1'))
    const b = await track(connectFrom(relay.url, '10.4.0.2'))
    await a.authOk(member)
    await b.authOk(member)
    // Events are signed by throwaway keys: the budget follows the authenticated pubkey, not the authors.
    assert.deepEqual(await publishAll(a, [mls(), mls()]), accepted(2))
    assert.deepEqual(await publishAll(b, [mls(), mls()]), [...accepted(1), [false, MLS_LIMITED]])
    // 10.4.0.2 has used 2 of its 3; another member there gets one more, then the address is out.
    const c = await track(connectFrom(relay.url, '10.4.0.2'))
    await c.authOk(newSigner())
    assert.deepEqual(await publishAll(c, [mls(), mls()]), [...accepted(1), [false, MLS_LIMITED]])
  })

  it('counts the authenticated pubkey on a connection that also proved other pubkeys', async () => {
    const member = newSigner()
    const a = await track(connectFrom(relay.url, '10.4.1.1'))
    await a.authOk(member)
    assert.deepEqual(await publishAll(a, [mls(), mls(), mls()]), accepted(3))
    const b = await track(connectFrom(relay.url, '10.4.1.2'))
    await b.authOk(newSigner())
    await b.authOk(member)
    assert.deepEqual(await publishAll(b, [mls()]), [[false, MLS_LIMITED]])
  })
})

describe('connections per IP', () => {
  let relay: TestRelay

  before(async () => {
    relay = await startTestRelay({ 'rate_limiter.max_connections_per_ip': 2 })
  })
  after(() => relay?.close())

  let first: TestClient
  let second: TestClient

  it('refuses the third upgrade from one address with HTTP 429; the first two keep working', async () => {
    first = await track(TestClient.connect(relay.url))
    second = await track(TestClient.connect(relay.url))
    const refused = await upgradeStatus(relay.url)
    assert.equal(refused.status, 429)
    assert.match(refused.body, /^rate-limited: /)
    for (const client of [first, second]) {
      const event = sign(newSigner())
      await client.publishOk(event)
      assert.deepEqual(await client.query({ ids: [event.id] }), [event])
      assert.equal(client.isOpen, true)
    }
  })

  it('admits a new connection once one of them has closed', async () => {
    assert.equal((await upgradeStatus(relay.url)).status, 429)
    await first.close()
    await waitUntil(async () => (await upgradeStatus(relay.url)).status === 101, 'a slot to free up')
    assert.equal(second.isOpen, true)
  })
})

describe('connections per IP behind a trusted proxy', () => {
  let relay: TestRelay

  before(async () => {
    relay = await startTestRelay({ 'rate_limiter.max_connections_per_ip': 1, 'network.trusted_proxies': 1 })
  })
  after(() => relay?.close())

  it('counts the forwarded client address, not the proxy', async () => {
    await track(connectFrom(relay.url, '10.7.0.1'))
    assert.equal((await upgradeStatus(relay.url, { 'X-Forwarded-For': '10.7.0.1' })).status, 429)
    assert.equal((await upgradeStatus(relay.url, { 'X-Forwarded-For': '6.6.6.6, 10.7.0.1' })).status, 429)
    await track(connectFrom(relay.url, '10.7.0.2'))
  })
})

describe('REQs per minute per connection', () => {
  let relay: TestRelay

  before(async () => {
    relay = await startTestRelay({ 'rate_limiter.req_per_minute': 3 })
  })
  after(() => relay?.close())

  const LIMITED = 'rate-limited: at most 3 REQ/COUNT per minute per connection'

  it('answers the 4th REQ with CLOSED "rate-limited: …"; COUNT shares the budget; other connections are not affected', async () => {
    const client = await track(TestClient.connect(relay.url))
    for (const n of [1, 2, 3]) assert.deepEqual(await client.req(`s${n}`, { kinds: [1], limit: 1 }), [])
    client.send(['REQ', 's4', { kinds: [1] }])
    assert.deepEqual(await client.next(m => m[1] === 's4'), ['CLOSED', 's4', LIMITED])
    assert.deepEqual(await client.count('c1', { kinds: [1] }), ['CLOSED', 'c1', LIMITED])
    // The three open subscriptions are untouched and still deliver live events.
    const event = sign(newSigner())
    const other = await track(TestClient.connect(relay.url))
    await other.publishOk(event)
    assert.deepEqual(await client.nextEvent('s1'), event)
    assert.deepEqual(await other.count('c2', { ids: [event.id] }), ['COUNT', 'c2', { count: 1 }])
    assert.deepEqual(await other.req('s5', { ids: [event.id] }), [event])
  })
})

describe('[rate_limiter] enabled = false', () => {
  let relay: TestRelay

  before(async () => {
    relay = await startTestRelay({
      'rate_limiter.enabled': false,
      'rate_limiter.max_connections_per_ip': 1,
      'rate_limiter.req_per_minute': 1,
      'rate_limiter.event': [{ name: 'notes', description: 'notes', period: '1m', limit: 1, kinds: [1] }],
    })
  })
  after(() => relay?.close())

  it('limits no connections, REQs or events', async () => {
    const a = await track(TestClient.connect(relay.url))
    const b = await track(TestClient.connect(relay.url))
    const author = newSigner()
    assert.deepEqual(await publishAll(a, [1, 2, 3].map(n => sign(author, { content: `n${n}` }))), accepted(3))
    for (let i = 0; i < 3; i++) assert.equal((await b.query({ authors: [author.pubkey] })).length, 3)
  })
})
