// What the Marmot profile (config/marmot.toml) needs from the relay itself: complete histories for
// no-limit group and gift-wrap reads (in pages, CLOSED when cut short), the per-group budget, the door rules
// for gift wraps and top-level Welcomes, and KeyPackage deletions as White Noise and marmot-ts send them.
import assert from 'node:assert/strict'
import { fileURLToPath } from 'node:url'
import { after, before, describe, it } from 'node:test'
import type { NostrEvent } from 'nostr-tools/pure'
import { loadRelayConfig } from '../src/config.js'
import { newSigner, sign, startTestRelay, TestClient, type Signer, type TestRelay } from './harness.js'

/** As config/marmot.toml: group messages need no AUTH (White Noise never authenticates to publish). */
const OPEN = { 'auth.auth_required_kinds': [] }
const GROUP = 'aa'.repeat(16)
const OTHER_GROUP = 'bb'.repeat(16)

/** Sends every event at once and waits for each OK; resolves with the answers in order. */
const publishAll = async (client: TestClient, events: NostrEvent[]): Promise<unknown[][]> => {
  for (const event of events) client.send(['EVENT', event])
  const answers: unknown[][] = []
  for (const event of events) answers.push(await client.next(m => m[0] === 'OK' && m[1] === event.id))
  return answers
}

/** `n` group messages of `group`, each by a fresh key, `perSecond` sharing each created_at (Marmot bursts). */
const groupMessages = (group: string, n: number, perSecond: number, start: number): NostrEvent[] =>
  Array.from({ length: n }, (_, i) => sign(newSigner(), { kind: 445, created_at: start + Math.floor(i / perSecond), tags: [['h', group], ['encoding', 'base64']], content: `m${i}` }))

describe('the Marmot profile file', () => {
  it('loads, and says what Marmot clients need', () => {
    const file = fileURLToPath(new URL('../../config/marmot.toml', import.meta.url))
    const loaded = loadRelayConfig(file, { RELAY_METRICS__AUTH: 'metrics-key-for-tests-0123' })
    assert.ok(loaded.ok, loaded.ok ? '' : loaded.errors.join('\n'))
    const { auth, limitation, rate_limiter } = loaded.value
    assert.equal(auth.required, false)
    assert.deepEqual(auth.auth_required_kinds, [], 'White Noise never authenticates its publishing connections')
    assert.deepEqual([...auth.private_kinds].sort(), [1059, 446])
    assert.deepEqual(limitation.history_kinds, [445, 1059])
    assert.deepEqual(limitation.refused_kinds, [444])
    assert.deepEqual(limitation.single_recipient_kinds, [1059])
    const perGroup = rate_limiter.event.find(rule => rule.per_tag === 'h')
    assert.deepEqual(perGroup?.kinds, [445])
  })
})

describe('complete history for no-limit reads of history kinds', () => {
  let relay: TestRelay
  let client: TestClient
  const start = Math.floor(Date.now() / 1000) - 3600
  // 2,500 messages, 300 to a second (more than a page shares one created_at), and noise in another group.
  const history = groupMessages(GROUP, 2500, 300, start)
  const noise = groupMessages(OTHER_GROUP, 50, 50, start)

  before(async () => {
    relay = await startTestRelay({ ...OPEN, 'limitation.max_limit': 1000, 'limitation.default_limit': 500, 'limitation.max_history': 100000, 'data.query_workers': 1 })
    client = await TestClient.connect(relay.url)
    for (let i = 0; i < history.length; i += 500) for (const [, , ok] of await publishAll(client, history.slice(i, i + 500))) assert.equal(ok, true)
    for (const [, , ok] of await publishAll(client, noise)) assert.equal(ok, true)
  })

  after(async () => {
    await client?.close()
    await relay?.close()
  })

  it('answers {kinds:[445],"#h":[g]} without limit with every stored message, once each, newest first, then EOSE', async () => {
    const got = await client.query({ kinds: [445], '#h': [GROUP] })
    assert.equal(got.length, history.length)
    assert.equal(new Set(got.map(e => e.id)).size, history.length, 'no duplicates across pages')
    assert.deepEqual(new Set(got.map(e => e.id)), new Set(history.map(e => e.id)))
    for (let i = 1; i < got.length; i++) assert.ok((got[i - 1] as NostrEvent).created_at >= (got[i] as NostrEvent).created_at, 'newest first')
  })

  it('respects since, and keeps default_limit for a filter that names a limit or another kind', async () => {
    const since = start + 5 // the last 1,000 messages
    assert.equal((await client.query({ kinds: [445], '#h': [GROUP], since })).length, 1000)
    assert.equal((await client.query({ kinds: [445], '#h': [GROUP], limit: 10 })).length, 10)
    assert.equal((await client.query({ kinds: [445, 1], '#h': [GROUP] })).length, 500, 'kind 1 is not a history kind')
  })

  it('delivers a live message that arrives during the pages after EOSE, once', async () => {
    client.send(['REQ', 'catch-up', { kinds: [445], '#h': [GROUP] }])
    const live = sign(newSigner(), { kind: 445, tags: [['h', GROUP]], content: 'live' })
    const writer = await TestClient.connect(relay.url)
    await writer.publishOk(live)
    await writer.close()
    const backfill = await client.collectUntilEose('catch-up')
    const afterEose = await client.nextEvent('catch-up')
    const all = [...backfill, afterEose]
    assert.equal(all.filter(e => e.id === live.id).length, 1, 'the live message exactly once')
    assert.ok(all.length === history.length + 1)
    client.send(['CLOSE', 'catch-up'])
  })
})

describe('a history read in pages beside other filters', () => {
  let relay: TestRelay
  let client: TestClient
  const start = Math.floor(Date.now() / 1000) - 600
  const author = newSigner()
  // Newest first: the group's five messages (the fourth by `author`), then two of another group.
  const group = [0, 1, 2, 3, 4].map(i => sign(i === 3 ? author : newSigner(), { kind: 445, created_at: start + 10 - i, tags: [['h', GROUP]], content: `g${i}` }))
  const other = [0, 1].map(i => sign(newSigner(), { kind: 445, created_at: start + 20 - i, tags: [['h', OTHER_GROUP]], content: `o${i}` }))
  const contents = (events: NostrEvent[]) => events.map(e => e.content)

  before(async () => {
    // Pages of two events: the group's history takes three.
    relay = await startTestRelay({ ...OPEN, 'limitation.max_limit': 2, 'limitation.default_limit': 2 })
    client = await TestClient.connect(relay.url)
    for (const [, , ok] of await publishAll(client, [...group, ...other])) assert.equal(ok, true)
  })

  after(async () => {
    await client?.close()
    await relay?.close()
  })

  it('sends an event two history filters match once, in the first', async () => {
    const got = await client.query({ kinds: [445], '#h': [GROUP] }, { kinds: [445], authors: [author.pubkey] })
    assert.deepEqual(contents(got), ['g0', 'g1', 'g2', 'g3', 'g4'])
  })

  it('sends what a later filter matches after every page of the history, and only what the history did not send', async () => {
    const got = await client.query({ kinds: [445], '#h': [GROUP] }, { ids: [(group[3] as NostrEvent).id, (other[1] as NostrEvent).id] })
    assert.deepEqual(contents(got), ['g0', 'g1', 'g2', 'g3', 'g4', 'o1'])
  })

  it('streams the filters in request order: a limited filter first, and what it left out follows the history', async () => {
    // The limited filter sends o0 only; the last filter, answered pages later, sends o1 but not o0 again.
    const got = await client.query({ kinds: [445], '#h': [OTHER_GROUP], limit: 1 }, { kinds: [445], '#h': [GROUP] }, { kinds: [445], '#h': [OTHER_GROUP] })
    assert.deepEqual(contents(got), ['o0', 'g0', 'g1', 'g2', 'g3', 'g4', 'o1'])
  })
})

describe('a history longer than max_history', () => {
  let relay: TestRelay
  let client: TestClient

  before(async () => {
    relay = await startTestRelay({ ...OPEN, 'limitation.max_limit': 100, 'limitation.max_history': 250 })
    client = await TestClient.connect(relay.url)
    await publishAll(client, groupMessages(GROUP, 300, 7, Math.floor(Date.now() / 1000) - 600))
  })

  after(async () => {
    await client?.close()
    await relay?.close()
  })

  it('ends with CLOSED saying so, never an EOSE that looks complete', async () => {
    client.send(['REQ', 'long', { kinds: [445], '#h': [GROUP] }])
    const events: unknown[] = []
    for (;;) {
      const m = await client.next(x => x[1] === 'long')
      if (m[0] === 'EVENT') events.push(m[2])
      else {
        assert.equal(m[0], 'CLOSED')
        assert.match(String(m[2]), /^blocked: history cut at 250 events \(max_history\), more may match; ask again with until/)
        break
      }
    }
    assert.equal(events.length, 250, 'exactly max_history events before CLOSED')
  })
})

describe('max_history counts per history filter, and never sends more than it says', () => {
  let relay: TestRelay
  let client: TestClient
  const THIRD_GROUP = 'cc'.repeat(16)

  before(async () => {
    // Pages of three, seven events per history filter: five and six fit, nine do not.
    relay = await startTestRelay({ ...OPEN, 'limitation.max_limit': 3, 'limitation.max_history': 7 })
    client = await TestClient.connect(relay.url)
    const start = Math.floor(Date.now() / 1000) - 600
    await publishAll(client, [...groupMessages(GROUP, 5, 1, start), ...groupMessages(OTHER_GROUP, 6, 1, start + 100), ...groupMessages(THIRD_GROUP, 9, 1, start + 200)])
  })

  after(async () => {
    await client?.close()
    await relay?.close()
  })

  /** The events a REQ was answered with, and how it ended. */
  const answer = async (subId: string, ...filters: object[]): Promise<{ events: number; end: string }> => {
    client.send(['REQ', subId, ...filters])
    let events = 0
    for (;;) {
      const m = await client.next(x => x[1] === subId)
      if (m[0] === 'EVENT') events++
      else return { events, end: m[0] === 'EOSE' ? 'EOSE' : String(m[2]) }
    }
  }

  it('two history filters of five and six events: all eleven, then EOSE', async () => {
    assert.deepEqual(await answer('both', { kinds: [445], '#h': [GROUP] }, { kinds: [445], '#h': [OTHER_GROUP] }), { events: 11, end: 'EOSE' })
  })

  it('a history filter of nine: exactly seven, then CLOSED; a limited filter before it does not count', async () => {
    for (const filters of [[{ kinds: [445], '#h': [THIRD_GROUP] }], [{ kinds: [445], '#h': [GROUP], limit: 3 }, { kinds: [445], '#h': [THIRD_GROUP] }]]) {
      const { events, end } = await answer(`cut${filters.length}`, ...filters)
      assert.equal(events, filters.length === 1 ? 7 : 3 + 7, JSON.stringify(filters))
      assert.match(end, /^blocked: history cut at 7 events \(max_history\)/)
    }
  })
})

describe('the per-group budget (per_tag = "h")', () => {
  let relay: TestRelay

  before(async () => {
    relay = await startTestRelay({
      ...OPEN,
      'rate_limiter.event': [{ name: 'per_group', description: 'group messages to one group', period: '1m', limit: 20, kinds: [445], per_tag: 'h' }],
    })
  })

  after(async () => relay?.close())

  it('throttles a flooded group whoever sends, while another group flows', async () => {
    const flooders = await Promise.all([TestClient.connect(relay.url), TestClient.connect(relay.url)])
    const answers = (await Promise.all(flooders.map(f => publishAll(f, groupMessages(GROUP, 15, 15, Math.floor(Date.now() / 1000)))))).flat()
    const accepted = answers.filter(a => a[2] === true).length
    assert.equal(accepted, 20, 'one budget for the group, shared by both senders')
    const refused = answers.find(a => a[2] === false)
    assert.equal(refused?.[3], 'rate-limited: group messages to one group')
    const other = await TestClient.connect(relay.url)
    for (const [, , ok] of await publishAll(other, groupMessages(OTHER_GROUP, 10, 10, Math.floor(Date.now() / 1000)))) assert.equal(ok, true)
    for (const c of [...flooders, other]) await c.close()
  })
})

describe('Marmot rules at the door, and KeyPackage deletions', () => {
  let relay: TestRelay
  let client: TestClient
  let alice: Signer

  before(async () => {
    relay = await startTestRelay({ ...OPEN, 'limitation.refused_kinds': [444] })
    client = await TestClient.connect(relay.url)
    alice = newSigner()
  })

  after(async () => {
    await client?.close()
    await relay?.close()
  })

  it('refuses a gift wrap without exactly one recipient and a top-level Welcome, saying why', async () => {
    const bob = newSigner()
    const noRecipient = sign(alice, { kind: 1059, content: 'wrap' })
    const twoRecipients = sign(alice, { kind: 1059, tags: [['p', bob.pubkey], ['p', alice.pubkey]], content: 'wrap' })
    const welcome = sign(alice, { kind: 444, tags: [['p', bob.pubkey]], content: 'welcome' })
    const [a, b, c] = await publishAll(client, [noRecipient, twoRecipients, welcome])
    assert.deepEqual(a?.slice(2), [false, 'invalid: a kind 1059 event must name exactly one recipient (one p tag, NIP-59); it has 0'])
    assert.deepEqual(b?.slice(2), [false, 'invalid: a kind 1059 event must name exactly one recipient (one p tag, NIP-59); it has 2'])
    assert.deepEqual(c?.slice(2), [false, 'invalid: kind 444 (an MLS Welcome) is accepted only inside a NIP-59 gift wrap (kind 1059)'])
    const wrap = sign(alice, { kind: 1059, tags: [['p', bob.pubkey], ['expiration', String(Math.floor(Date.now() / 1000) + 30 * 86400)]], content: 'wrap' })
    await client.publishOk(wrap)
  })

  it('accepts the extra tags of a Marmot 445 and never serves it once expired', async () => {
    const soon = Math.floor(Date.now() / 1000) + 2
    const message = sign(newSigner(), { kind: 445, tags: [['h', GROUP], ['encoding', 'base64'], ['client', 'MDK/0.8.0'], ['expiration', String(soon)]], content: 'x' })
    await client.publishOk(message)
    assert.equal((await client.query({ ids: [message.id] })).length, 1)
    await new Promise(resolve => setTimeout(resolve, 2200))
    assert.equal((await client.query({ ids: [message.id] })).length, 0, 'expired: not served')
  })

  it('deletes KeyPackages by e tags alone (White Noise), by e + k (MDK), and by a (marmot-ts purge)', async () => {
    const d = 'cd'.repeat(32)
    const kp = sign(alice, { kind: 30443, tags: [['d', d], ['mls_protocol_version', '1.0'], ['encoding', 'base64']], content: 'kp' })
    const legacy = sign(alice, { kind: 443, tags: [['mls_protocol_version', '1.0'], ['encoding', 'base64']], content: 'kp' })
    await publishAll(client, [kp, legacy])
    const fetch = () => client.query({ authors: [alice.pubkey], kinds: [443, 30443] })
    assert.equal((await fetch()).length, 2)
    await client.publishOk(sign(alice, { kind: 5, tags: [['e', legacy.id]] }))
    assert.deepEqual((await fetch()).map(e => e.id), [kp.id])
    await client.publishOk(sign(alice, { kind: 5, tags: [['e', kp.id], ['k', '30443']] }))
    assert.deepEqual(await fetch(), [])
    const rotated = sign(alice, { kind: 30443, created_at: kp.created_at + 1, tags: [['d', 'ef'.repeat(32)]], content: 'kp2' })
    await client.publishOk(rotated)
    await client.publishOk(sign(alice, { kind: 5, tags: [['k', '30443'], ['e', rotated.id], ['a', `30443:${alice.pubkey}:${'ef'.repeat(32)}`]] }))
    assert.deepEqual(await fetch(), [])
  })
})
