// Marmot clients (White Noise on whitenoise-rs/MDK/rust-nostr 0.44, marmot-ts) against a relay started with
// services/relay/config/marmot.toml, over real sockets. Each test replays what those clients put on the wire
// (design/marmot-traffic.md): publishing from connections that never answer AUTH, filters serialised as
// rust-nostr does (sorted kinds and authors, `#h`/`#p` after `limit`/`since`), deletions with `e` tags only,
// whole group histories asked for without `limit`, gift-wrapped Welcomes read after AUTH; the MLS artefacts
// (KeyPackages, commits, Welcomes, application messages) are real, made with ts-mls.
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import type { NostrEvent } from 'nostr-tools/pure'
import { newSigner, now, sign, sleep, type RelayClient, type Signer } from './platform.js'
import {
  anonymous,
  b64,
  catchUpConfig,
  createCommit,
  createGroup,
  decodeKeyPackage,
  decodeWelcome,
  emptyPskIndex,
  encodeKeyPackage,
  encodeMlsMessage,
  giftWrap,
  groupMessage,
  joinGroup,
  keyPackageEvent,
  mlsSuite,
  newKeyPackage,
  publishAll,
  randomHex,
  receive,
  req,
  sendText,
  startMarmotRelay,
  THIRTY_DAYS,
  unwrap,
  welcomeRumor,
  type MarmotRelay,
  type Member,
  type Welcome,
} from './marmot.js'

type Impl = Awaited<ReturnType<typeof mlsSuite>>

const accepted = (ok: unknown[] | undefined): void => assert.equal(ok?.[2], true, `refused: ${String(ok?.[3])}`)
/** White Noise's KeyPackage lookup (K3): kinds sorted, no limit, no since. */
const keyPackageFilter = (pubkey: string) => ({ authors: [pubkey], kinds: [443, 30443] })
/** White Noise's group read (G2) on a first sync, marmot-ts's history: no limit, no since. */
const groupFilter = (...h: string[]) => ({ kinds: [445], '#h': h })
const ids = (events: NostrEvent[]): string[] => events.map(e => e.id).sort()

describe('KeyPackages, published and deleted without AUTH (White Noise K1-K6, marmot-ts purge)', () => {
  let relay: MarmotRelay
  let impl: Impl
  const clients: RelayClient[] = []
  const connect = async () => {
    const client = await anonymous(relay)
    clients.push(client)
    return client
  }

  before(async () => {
    ;[relay, impl] = await Promise.all([startMarmotRelay(), mlsSuite()])
  })
  after(async () => {
    for (const c of clients) c.close()
    await relay?.stop()
  })

  /** A user's 30443 (slot `d`) and its 443 twin, published from a connection that ignores the challenge. */
  const publishPair = async (user: Signer, d: string, createdAt = now()) => {
    const keys = await newKeyPackage(user.pubkey, impl)
    const opts = { d, relays: [relay.url], createdAt }
    const canonical = await keyPackageEvent(user, 30443, keys, impl, opts)
    const twin = await keyPackageEvent(user, 443, keys, impl, opts)
    const publisher = await connect()
    await publisher.next(m => m[0] === 'AUTH', 'the AUTH challenge (never answered)')
    accepted(await publisher.publish(canonical))
    accepted(await publisher.publish(twin))
    return { keys, canonical, twin }
  }

  it('accepts a 30443 and its 443 twin from an unauthenticated connection; another one fetches both', async () => {
    const user = newSigner()
    const { keys, canonical, twin } = await publishPair(user, randomHex())
    const got = await req(await connect(), 'kp_lookup', keyPackageFilter(user.pubkey))
    assert.equal(got.end, 'EOSE')
    assert.deepEqual(ids(got.events), ids([canonical, twin]))
    for (const event of got.events) {
      assert.deepEqual(encodeKeyPackage(decodeKeyPackage(event.content)), encodeKeyPackage(keys.publicPackage), 'the KeyPackage comes back intact')
      assert.deepEqual(event.tags.find(t => t[0] === 'encoding'), ['encoding', 'base64'])
    }
  })

  it('replaces the 30443 when the same d slot is rotated with a newer created_at (K2)', async () => {
    const user = newSigner()
    const d = randomHex()
    const first = await publishPair(user, d, now() - 10)
    const second = await publishPair(user, d, now())
    const got = await req(await connect(), 'kp_lookup', keyPackageFilter(user.pubkey))
    assert.equal(got.end, 'EOSE')
    assert.deepEqual(ids(got.events.filter(e => e.kind === 30443)), [second.canonical.id], 'only the newest 30443 of the slot')
    assert.deepEqual(ids(got.events.filter(e => e.kind === 443)), ids([first.twin, second.twin]), '443s are regular events')
  })

  it('deletes with a kind 5 carrying e tags only (White Noise): OK true, gone on the re-fetch 500 ms later (K6)', async () => {
    const user = newSigner()
    const { canonical, twin } = await publishPair(user, randomHex())
    const deletion = sign(user, 5, [['e', canonical.id], ['e', twin.id]])
    const publisher = await connect()
    accepted(await publisher.publish(deletion))
    await sleep(500)
    const got = await req(await connect(), 'kp_lookup', keyPackageFilter(user.pubkey))
    assert.equal(got.end, 'EOSE')
    assert.deepEqual(ids(got.events), [], 'no KeyPackage left')
  })

  it('deletes with a kind 5 carrying k, e and a tags (marmot-ts purge)', async () => {
    const user = newSigner()
    const d = randomHex()
    const { canonical } = await publishPair(user, d)
    const purge = sign(user, 5, [['k', '30443'], ['e', canonical.id], ['a', `30443:${user.pubkey}:${d}`]])
    accepted(await (await connect()).publish(purge))
    await sleep(500)
    const got = await req(await connect(), 'kp_lookup', keyPackageFilter(user.pubkey))
    assert.deepEqual(ids(got.events.filter(e => e.kind === 30443)), [], 'the 30443 is gone')
  })
})

describe('Discovery: metadata and relay lists, unauthenticated (White Noise D1)', () => {
  let relay: MarmotRelay
  const clients: RelayClient[] = []

  before(async () => {
    relay = await startMarmotRelay()
  })
  after(async () => {
    for (const c of clients) c.close()
    await relay?.stop()
  })

  it('accepts kinds 0, 10002, 10050, 10051 without AUTH and serves them to {"authors":[…],"kinds":[0,10002,10050,10051]}', async () => {
    const users = [newSigner(), newSigner()]
    const publisher = await anonymous(relay)
    clients.push(publisher)
    const published: NostrEvent[] = []
    for (const [i, user] of users.entries()) {
      published.push(
        sign(user, 0, [], JSON.stringify({ name: `user${i}`, display_name: `User ${i}` })),
        sign(user, 10002, [['r', relay.url]]),
        sign(user, 10050, [['relay', relay.url]]),
        sign(user, 10051, [['relay', relay.url]]),
      )
    }
    for (const ok of await publishAll(publisher, published)) accepted(ok)
    const reader = await anonymous(relay)
    clients.push(reader)
    const got = await req(reader, 'discovery_user_data_0', { authors: users.map(u => u.pubkey).sort(), kinds: [0, 10002, 10050, 10051] })
    assert.equal(got.end, 'EOSE')
    assert.deepEqual(ids(got.events), ids(published))
  })
})

describe('A group of three: real MLS group messages (445) and a reader catching up with one REQ (G1, G2)', () => {
  let relay: MarmotRelay
  let impl: Impl
  const clients: RelayClient[] = []
  const connect = async () => {
    const client = await anonymous(relay)
    clients.push(client)
    return client
  }
  const h = randomHex()
  let alice: Member
  let bob: Member
  let carol: Member
  /** Carol's Welcome: she joins from it again for each reading, a member who was never online. */
  let carolWelcome: Welcome
  const texts: string[] = []
  const published: NostrEvent[] = []

  /** Publishes `events` in chunks over `n` connections at once (each event signed by its own fresh key). */
  const publishOver = async (n: number, events: NostrEvent[]) => {
    const conns = await Promise.all(Array.from({ length: n }, () => connect()))
    const oks = await Promise.all(conns.map((c, i) => publishAll(c, events.filter((_, j) => j % n === i))))
    for (const ok of oks.flat()) accepted(ok)
    published.push(...events)
  }

  /** `count` application messages, alternately from Alice and Bob. */
  const chat = async (count: number): Promise<NostrEvent[]> => {
    const events: NostrEvent[] = []
    for (let i = 0; i < count; i++) {
      const from = i % 2 === 0 ? alice : bob
      const text = `${from.name} #${texts.length}`
      texts.push(text)
      events.push(await sendText(from, h, text, impl))
    }
    return events
  }

  /** Carol, fresh from her Welcome, reads every event of `events`; returns the texts she decrypted. */
  const carolReads = async (events: NostrEvent[]): Promise<string[]> => {
    const reader: Member = { ...carol, state: await joinGroup(carolWelcome, carol.keys.publicPackage, carol.keys.privatePackage, emptyPskIndex, impl, undefined, undefined, catchUpConfig) }
    const read: string[] = []
    for (const event of [...events].sort((a, b) => a.created_at - b.created_at)) {
      const text = await receive(reader, event, impl)
      if (text !== undefined && text !== 'commit') read.push(text)
    }
    return read
  }

  before(async () => {
    // The history is seeded faster than any member would write; the rate limits have their own tests below.
    ;[relay, impl] = await Promise.all([startMarmotRelay({ RELAY_RATE_LIMITER__ENABLED: 'false' }), mlsSuite()])
    const member = async (name: string): Promise<Member> => {
      const signer = newSigner()
      return { name, signer, keys: await newKeyPackage(signer.pubkey, impl) }
    }
    ;[alice, bob, carol] = await Promise.all([member('Alice'), member('Bob'), member('Carol')])

    // Bob and Carol publish their KeyPackages; Alice looks them up as White Noise does.
    const publisher = await connect()
    for (const m of [bob, carol]) accepted(await publisher.publish(await keyPackageEvent(m.signer, 30443, m.keys, impl, { d: randomHex(), relays: [relay.url] })))
    const lookup = async (m: Member) => {
      const got = await req(await connect(), 'kp', keyPackageFilter(m.signer.pubkey))
      const event = got.events.find(e => e.kind === 30443)
      assert.ok(event, `${m.name}'s KeyPackage is on the relay`)
      return decodeKeyPackage(event.content)
    }

    // Alice creates the group and adds Bob, then Carol; each commit goes to the group as a 445.
    alice.state = await createGroup(new Uint8Array(Buffer.from(randomHex(), 'hex')), alice.keys.publicPackage, alice.keys.privatePackage, [], impl)
    const add = async (m: Member) => {
      const result = await createCommit({ state: alice.state!, cipherSuite: impl }, { extraProposals: [{ proposalType: 'add', add: { keyPackage: await lookup(m) } }], ratchetTreeExtension: true })
      alice.state = result.newState
      const commit = groupMessage(h, encodeMlsMessage(result.commit))
      accepted(await publisher.publish(commit))
      published.push(commit)
      assert.ok(result.welcome)
      return result.welcome
    }
    const bobWelcome = await add(bob)
    bob.state = await joinGroup(bobWelcome, bob.keys.publicPackage, bob.keys.privatePackage, emptyPskIndex, impl)
    carolWelcome = await add(carol)
    // Bob catches up from the relay: the commit that added him (an epoch he cannot read) and the one adding Carol.
    const history = await req(await connect(), 'bob_groups', groupFilter(h))
    const seen: (string | undefined)[] = []
    for (const event of history.events.sort((a, b) => a.created_at - b.created_at)) seen.push(await receive(bob, event, impl))
    assert.deepEqual(seen.filter(Boolean), ['commit'])
    carol.state = await joinGroup(carolWelcome, carol.keys.publicPackage, carol.keys.privatePackage, emptyPskIndex, impl)
    assert.equal(bob.state.groupContext.epoch, alice.state.groupContext.epoch)
    assert.equal(carol.state.groupContext.epoch, alice.state.groupContext.epoch)
  })
  after(async () => {
    for (const c of clients) c.close()
    await relay?.stop()
  })

  it('a member reads a live message of another as it is published', async () => {
    const listener = await connect()
    const live = await req(listener, 'live', { kinds: [445], '#h': [h], since: now() }, false)
    assert.equal(live.end, 'EOSE')
    const [event] = await chat(1)
    await publishOver(1, [event!])
    const delivered = await listener.next(m => m[0] === 'EVENT' && m[1] === 'live', 'the live 445')
    const reader: Member = { ...carol }
    assert.equal(await receive(reader, delivered[2] as NostrEvent, impl), texts.at(-1))
    carol.state = reader.state
  })

  it('a fresh reader gets a 300-message history with one {"kinds":[445],"#h":[id]} REQ, then EOSE, and decrypts it all', async () => {
    await publishOver(3, await chat(299))
    const got = await req(await connect(), 'catch_up', groupFilter(h))
    assert.equal(got.end, 'EOSE', `ended with ${got.end} ${got.reason ?? ''}`)
    assert.equal(got.events.length, published.length, `all ${published.length} events of the group (300 messages, 2 commits)`)
    assert.deepEqual(ids(got.events), ids(published))
    assert.deepEqual((await carolReads(got.events)).sort(), [...texts].sort())
  })

  it('a fresh reader gets the whole 2,000-message history with the same single REQ, then EOSE, and decrypts it', { timeout: 600_000 }, async () => {
    await publishOver(4, await chat(2000 - texts.length))
    assert.equal(texts.length, 2000)
    const got = await req(await connect(), 'catch_up', groupFilter(h))
    assert.equal(got.end, 'EOSE', `ended with ${got.end} ${got.reason ?? ''}`)
    assert.equal(got.events.length, published.length, `all ${published.length} events of the group (2,000 messages, 2 commits), not a page of them`)
    assert.deepEqual(ids(got.events), ids(published))
    assert.deepEqual((await carolReads(got.events)).sort(), [...texts].sort())
  })
})

describe('Welcomes: NIP-59 gift wraps published without AUTH, read only by their recipient after AUTH (W1, W2)', () => {
  let relay: MarmotRelay
  let impl: Impl
  const clients: RelayClient[] = []
  const connect = async () => {
    const client = await anonymous(relay)
    clients.push(client)
    return client
  }
  let alice: Member
  let carol: Member
  let wrap: NostrEvent
  /** White Noise's inbox REQ: since = last sync minus 7 days. */
  let inboxFilter: Record<string, unknown>

  before(async () => {
    ;[relay, impl] = await Promise.all([startMarmotRelay(), mlsSuite()])
    const [a, c] = [newSigner(), newSigner()]
    alice = { name: 'Alice', signer: a, keys: await newKeyPackage(a.pubkey, impl) }
    carol = { name: 'Carol', signer: c, keys: await newKeyPackage(c.pubkey, impl) }
    const kp = await keyPackageEvent(carol.signer, 30443, carol.keys, impl, { d: randomHex(), relays: [relay.url] })
    accepted(await (await connect()).publish(kp))
    const [found] = (await req(await connect(), 'kp', keyPackageFilter(carol.signer.pubkey))).events
    assert.ok(found)
    alice.state = await createGroup(new Uint8Array(Buffer.from(randomHex(), 'hex')), alice.keys.publicPackage, alice.keys.privatePackage, [], impl)
    const result = await createCommit({ state: alice.state, cipherSuite: impl }, { extraProposals: [{ proposalType: 'add', add: { keyPackage: decodeKeyPackage(found.content) } }], ratchetTreeExtension: true })
    alice.state = result.newState
    assert.ok(result.welcome)
    wrap = giftWrap(welcomeRumor(result.welcome, found.id, [relay.url]), alice.signer, carol.signer.pubkey)
    inboxFilter = { kinds: [1059], '#p': [carol.signer.pubkey], since: now() - 7 * 24 * 3600 - 60 }
  })
  after(async () => {
    for (const c of clients) c.close()
    await relay?.stop()
  })

  it('accepts the gift wrap (one p tag, expiration in 30 days, created_at up to 2 days back) from an unauthenticated connection', async () => {
    assert.deepEqual(wrap.tags.map(t => t[0]), ['p', 'expiration'])
    assert.ok(Number(wrap.tags[1]![1]) - now() > THIRTY_DAYS - 60)
    assert.ok(wrap.created_at <= now() && wrap.created_at > now() - 2 * 24 * 3600 - 60)
    const publisher = await connect()
    await publisher.next(m => m[0] === 'AUTH', 'the AUTH challenge (never answered)')
    accepted(await publisher.publish(wrap))
  })

  it('answers the inbox REQ before AUTH with CLOSED "auth-required:"; after AUTH as the recipient, the same REQ gets the Welcome', async () => {
    const inbox = await connect()
    const subId = 'a1b2c3d4e5f60718_giftwrap'
    const before = await req(inbox, subId, inboxFilter, false)
    assert.equal(before.end, 'CLOSED', 'not an EOSE: rust-nostr would never re-send the REQ')
    assert.match(before.reason ?? '', /^auth-required: /)
    assert.equal(before.events.length, 0)
    // rust-nostr answers the challenge and re-sends the closed subscription: same id, same filter.
    await inbox.auth(carol.signer, relay.url)
    const after = await req(inbox, subId, inboxFilter)
    assert.equal(after.end, 'EOSE')
    assert.deepEqual(ids(after.events), [wrap.id])
    const rumor = unwrap(after.events[0]!, carol.signer)
    assert.equal(rumor.kind, 444)
    assert.equal(rumor.pubkey, alice.signer.pubkey)
    carol.state = await joinGroup(decodeWelcome(rumor.content), carol.keys.publicPackage, carol.keys.privatePackage, emptyPskIndex, impl)
    assert.equal(carol.state.groupContext.epoch, alice.state!.groupContext.epoch, 'Carol joined the group from the Welcome')
  })

  it('shows the gift wrap to no other authenticated pubkey', async () => {
    const mallory = newSigner()
    const conn = await connect()
    await conn.auth(mallory, relay.url)
    const got = await req(conn, 'm_giftwrap', inboxFilter)
    assert.deepEqual(ids(got.events), [], `${got.end} ${got.reason ?? ''}`)
    const all = await req(conn, 'm_all', { kinds: [1059] })
    assert.ok(!all.events.some(e => e.id === wrap.id), 'not without #p either')
  })

  it('refuses a gift wrap naming no recipient or two with OK false "invalid:"', async () => {
    const conn = await connect()
    const rumor = { kind: 444, content: b64(new Uint8Array([1, 2, 3])), tags: [] }
    const expiration = ['expiration', String(now() + THIRTY_DAYS)]
    const answers: Record<string, string> = {}
    for (const [what, tags] of [
      ['no p tag', [expiration]],
      ['two p tags', [['p', carol.signer.pubkey], ['p', alice.signer.pubkey], expiration]],
    ] as const) {
      const ok = await conn.publish(giftWrap(rumor, alice.signer, carol.signer.pubkey, tags.map(t => [...t])))
      answers[what] = ok[2] === false && /^invalid: /.test(String(ok[3])) ? 'refused invalid:' : `OK ${String(ok[2])} ${String(ok[3])}`
    }
    assert.deepEqual(answers, { 'no p tag': 'refused invalid:', 'two p tags': 'refused invalid:' })
  })

  it('refuses a top-level kind 444 (a Welcome only travels gift-wrapped) with OK false "invalid:"', async () => {
    const ok = await (await connect()).publish(sign(alice.signer, 444, [['e', randomHex()], ['encoding', 'base64']], b64(new Uint8Array([1, 2, 3]))))
    assert.equal(ok[2], false, 'accepted')
    assert.match(String(ok[3]), /^invalid: /)
  })
})

describe('A flooder cannot drown a group: 445s limited per client address and per group (h)', () => {
  let relay: MarmotRelay
  const clients: RelayClient[] = []
  /** A connection from `ip` as the load balancer reports it (RELAY_NETWORK__TRUSTED_PROXIES=1). */
  const from = async (ip: string) => {
    const client = await anonymous(relay, ip)
    clients.push(client)
    return client
  }
  /** `n` group messages to `h` (content: stand-in ciphertext; the relay never looks inside). */
  const messages = (h: string, n: number) => Array.from({ length: n }, () => groupMessage(h, new Uint8Array(Buffer.from(randomHex(64), 'hex'))))
  const outcome = (oks: unknown[][]) => ({ accepted: oks.filter(ok => ok[2] === true).length, refusals: oks.filter(ok => ok[2] !== true).map(ok => String(ok[3])) })

  before(async () => {
    relay = await startMarmotRelay({ RELAY_NETWORK__TRUSTED_PROXIES: '1' })
  })
  after(async () => {
    for (const c of clients) c.close()
    await relay?.stop()
  })

  it('refuses a flooding address after 600 messages a minute with "rate-limited:"; another address posting to group B is unaffected', async () => {
    const [groupA, groupB] = [randomHex(), randomHex()]
    const flood = outcome(await publishAll(await from('198.51.100.1'), messages(groupA, 650)))
    assert.equal(flood.accepted, 600)
    assert.equal(flood.refusals.length, 50)
    for (const reason of flood.refusals) assert.match(reason, /^rate-limited: MLS group messages \(kind 445\) from one address/)
    const other = outcome(await publishAll(await from('198.51.100.2'), messages(groupB, 50)))
    assert.deepEqual(other, { accepted: 50, refusals: [] })
  })

  it('refuses messages to a group past 1,200 a minute from several addresses with "rate-limited:", while group B still flows', async () => {
    const [groupA, groupB] = [randomHex(), randomHex()]
    const senders = await Promise.all(['203.0.113.1', '203.0.113.2', '203.0.113.3', '203.0.113.4', '203.0.113.5'].map(from))
    const all = outcome((await Promise.all(senders.map(s => publishAll(s, messages(groupA, 250))))).flat())
    assert.equal(all.accepted, 1200, 'the group budget')
    assert.equal(all.refusals.length, 50)
    for (const reason of all.refusals) assert.match(reason, /^rate-limited: MLS group messages \(kind 445\) to one group/)
    // The same addresses still reach another group.
    const other = outcome((await Promise.all(senders.map(s => publishAll(s, messages(groupB, 10))))).flat())
    assert.deepEqual(other, { accepted: 50, refusals: [] })
  })
})
