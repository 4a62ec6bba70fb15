// Real client libraries against the platform as `npm start` runs it (infra/local/start.mjs: NIP-42 on,
// the relay's public_url ws://127.0.0.1:<port>, the mailbox API's PUBLIC_URL http://127.0.0.1:<port>):
// nostr-tools (SimplePool with automaticallyAuth, NIP-98 getToken) and NDK (NDKPrivateKeySigner, the
// signIn auth policy). Each test also shows that the library opened connections to our relay only.
// The README's "Client guide" quotes the settings below: keep the two in sync.
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import NDK, { NDKEvent, NDKPrivateKeySigner, NDKRelayAuthPolicies, normalizeRelayUrl, type NDKFilter, type NDKKind } from '@nostr-dev-kit/ndk'
import { createMailboxClient } from '@msr/mailbox-client'
import { getToken } from 'nostr-tools/nip98'
import { SimplePool, useWebSocketImplementation } from 'nostr-tools/pool'
import { finalizeEvent, generateSecretKey, getPublicKey, type EventTemplate, type NostrEvent, type VerifiedEvent } from 'nostr-tools/pure'
import { normalizeURL } from 'nostr-tools/utils'
import { unrefNdkRelayTimers } from './ndk-in-node.js'
import { eventually, freePort, now, removeDir, spawnService, START, tempDir, waitReady, type Service } from './platform.js'
import { recordWebSockets } from './websocket-recorder.js'

const WAIT_MS = 10_000
/** Kinds NDK's NDKKind enum lacks (a filter's kinds are typed NDKKind[]). */
const MLS_GROUP_MESSAGE = 445 as NDKKind
const NOISE_DM = 446 as NDKKind

/** `promise`, or a failure naming `what` after `ms`. */
const within = async <T>(promise: Promise<T>, what: string, ms = WAIT_MS): Promise<T> => {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_resolve, reject) => (timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), ms)))
  try {
    return await Promise.race([promise, timeout])
  } finally {
    clearTimeout(timer)
  }
}

let dir: string
let platform: Service
/** The relay's [network] public_url as `npm start` sets it; clients must connect with this very URL. */
let RELAY: string
/** The mailbox API's PUBLIC_URL as `npm start` sets it; NIP-98 `u` tags are this + path + query. */
let MAILBOX: string

before(async () => {
  dir = await tempDir()
  const [relayPort, mailboxPort, pgPort] = [await freePort(), await freePort(), await freePort()]
  platform = spawnService(START, [], {
    RELAY_PORT: String(relayPort),
    MAILBOX_PORT: String(mailboxPort),
    RELAY_DATA__PATH: join(dir, 'relay'),
    MAILBOX_DATA_DIR: join(dir, 'postgres'),
    MAILBOX_EMBEDDED_PG_PORT: String(pgPort),
  })
  RELAY = `ws://127.0.0.1:${relayPort}`
  MAILBOX = `http://127.0.0.1:${mailboxPort}`
  await waitReady(platform, `${MAILBOX}/readyz`, 'the mailbox API')
  await waitReady(platform, `http://127.0.0.1:${relayPort}/readyz`, 'the relay')
})

after(async () => {
  await platform?.stop()
  await removeDir(dir)
})

// ---------------------------------------------------------------------------------------------
// nostr-tools

type Sign = (template: EventTemplate) => Promise<VerifiedEvent>

/** Signs NIP-42 AUTH and NIP-98 events with a secret key. */
const signWith =
  (secretKey: Uint8Array): Sign =>
  async template =>
    finalizeEvent(template, secretKey)

/** A SimplePool that answers our relay's AUTH challenge (and no other relay's) as `sign`. */
const nostrToolsPool = (sign: Sign): SimplePool => {
  const pool = new SimplePool()
  pool.automaticallyAuth = url => (url === normalizeURL(RELAY) ? sign : null)
  return pool
}

/** A mailbox API request with a NIP-98 header from nostr-tools' getToken. */
const mailboxFetch = async (path: string, method: 'GET' | 'POST', sign: Sign, body?: Record<string, unknown>): Promise<Response> => {
  const url = MAILBOX + path // absolute, and exactly the URL requested (query included)
  const authorization = await getToken(url, method, sign, true, body) // true: "Nostr " prefix; body: the object
  return fetch(url, { method, headers: { authorization, 'content-type': 'application/json' }, body: body && JSON.stringify(body) })
}

interface Key {
  secretKey: Uint8Array
  pubkey: string
  sign: Sign
}

const newKey = (): Key => {
  const secretKey = generateSecretKey()
  return { secretKey, pubkey: getPublicKey(secretKey), sign: signWith(secretKey) }
}

const note = (key: Key, kind: number, tags: string[][], content: string): VerifiedEvent => finalizeEvent({ kind, created_at: now(), tags, content }, key.secretKey)

describe('nostr-tools (SimplePool, automaticallyAuth, nip98.getToken)', () => {
  const sockets = recordWebSockets()
  const pools: SimplePool[] = []
  const poolOf = (key: Key): SimplePool => {
    const pool = nostrToolsPool(key.sign)
    pools.push(pool)
    return pool
  }

  before(() => useWebSocketImplementation(sockets.WebSocket)) // Node 20 has no global WebSocket

  after(() => {
    for (const pool of pools) pool.destroy()
  })

  /** Every connection went to our relay, and the pools know no other relay. */
  const onlyOurRelay = () => {
    assert.ok(sockets.urls.length > 0)
    assert.deepEqual(new Set(sockets.urls), new Set([normalizeURL(RELAY)]))
    for (const pool of pools) for (const url of pool.listConnectionStatus().keys()) assert.equal(url, normalizeURL(RELAY))
  }

  it('publishes a note that another client receives live, and stored', async () => {
    const [alice, bob, carol] = [newKey(), newKey(), newKey()]
    const live: NostrEvent[] = []
    let eose = false
    const sub = poolOf(bob).subscribe([RELAY], { kinds: [1], authors: [alice.pubkey] }, { onevent: e => void live.push(e), oneose: () => (eose = true) })
    await eventually(async () => eose || undefined, "EOSE of Bob's subscription", WAIT_MS)
    const hello = note(alice, 1, [], 'hello from nostr-tools')
    assert.deepEqual(await Promise.all(poolOf(alice).publish([RELAY], hello)), [''])
    await eventually(async () => live.find(e => e.id === hello.id), 'the note, live', WAIT_MS)
    sub.close()
    const stored = await poolOf(carol).querySync([RELAY], { ids: [hello.id] })
    assert.deepEqual(stored.map(e => e.content), ['hello from nostr-tools'])
    onlyOurRelay()
  })

  it('authenticates (NIP-42): a 445 is accepted; a 446 reaches its recipient and not a third key', async () => {
    // Fresh pools whose first message needs AUTH: `onauth` retries it once the challenge is answered.
    const [alice, bob, carol] = [newKey(), newKey(), newKey()]
    const [alices, bobs, carols] = [poolOf(alice), poolOf(bob), poolOf(carol)]
    const mls = note(newKey(), 445, [['h', `nt-${Math.random().toString(16).slice(2)}`]], 'mls ciphertext') // throwaway key
    assert.deepEqual(await Promise.all(alices.publish([RELAY], mls, { onauth: alice.sign })), [''])

    const inbox: NostrEvent[] = []
    let eose = false
    const sub = bobs.subscribe([RELAY], { kinds: [446], '#p': [bob.pubkey] }, { onevent: e => void inbox.push(e), oneose: () => (eose = true), onauth: bob.sign })
    await eventually(async () => eose || undefined, "EOSE of Bob's inbox", WAIT_MS)
    const dm = note(alice, 446, [['p', bob.pubkey]], 'noise ciphertext')
    assert.deepEqual(await Promise.all(alices.publish([RELAY], dm, { onauth: alice.sign })), [''])
    await eventually(async () => inbox.find(e => e.id === dm.id), "the 446 in Bob's inbox, live", WAIT_MS)
    sub.close()
    assert.deepEqual((await bobs.querySync([RELAY], { kinds: [446], '#p': [bob.pubkey] })).map(e => e.id), [dm.id])

    // Carol, authenticated as herself (her first REQ names a private kind: it ends in EOSE only once she
    // is), sees nothing, by recipient or by id.
    for (const filter of [{ kinds: [446], '#p': [bob.pubkey] }, { ids: [dm.id] }]) {
      const seen: NostrEvent[] = []
      const reasons = await within(
        new Promise<{ reason: string }[]>(resolve =>
          carols.subscribeEose([RELAY], filter, { onevent: e => void seen.push(e), onclose: resolve, onauth: carol.sign }),
        ),
        `Carol's REQ ${JSON.stringify(filter)}`,
      )
      assert.deepEqual(reasons.map(r => r.reason), ['closed automatically on eose'])
      assert.deepEqual(seen, [])
    }
    onlyOurRelay()
  })

  it('NIP-98 with getToken: a sender deposits a KeyPackage, the recipient lists and acknowledges it', async () => {
    const [alice, bob] = [newKey(), newKey()]
    const body = { recipient: bob.pubkey, content_b64: Buffer.from('key package bytes').toString('base64') }
    const deposit = await mailboxFetch('/api/v1/keypackages', 'POST', alice.sign, body)
    assert.equal(deposit.status, 201, await deposit.clone().text())
    const { id } = (await deposit.json()) as { id: string }

    const list = await mailboxFetch(`/api/v1/keypackages?recipient=${bob.pubkey}`, 'GET', bob.sign)
    assert.equal(list.status, 200)
    const { items } = (await list.json()) as { items: { id: string; sender: string; content_b64: string }[] }
    assert.deepEqual(items.map(i => [i.id, i.sender, i.content_b64]), [[id, alice.pubkey, body.content_b64]])

    const ack = await mailboxFetch(`/api/v1/keypackages/${id}/ack`, 'POST', bob.sign)
    assert.equal(ack.status, 200)
    const again = await mailboxFetch(`/api/v1/keypackages?recipient=${bob.pubkey}`, 'GET', bob.sign)
    assert.deepEqual(((await again.json()) as { items: unknown[] }).items, [])
  })

  it('NIP-98 with getToken: what the mailbox API refuses (no prefix, the body string, a relative URL)', async () => {
    const [alice, bob] = [newKey(), newKey()]
    const path = '/api/v1/keypackages'
    const body = { recipient: bob.pubkey, content_b64: 'AAEC' }
    const send = async (authorization: string) => {
      const res = await fetch(MAILBOX + path, { method: 'POST', headers: { authorization, 'content-type': 'application/json' }, body: JSON.stringify(body) })
      return [res.status, ((await res.json()) as { error: { code: string } }).error.code]
    }
    // Without includeAuthorizationScheme the token lacks "Nostr ".
    assert.deepEqual(await send(await getToken(MAILBOX + path, 'POST', alice.sign, false, body)), [401, 'AUTH_INVALID'])
    // getToken hashes JSON.stringify(payload): the body string would be hashed with its quotes.
    const asString = JSON.stringify(body) as unknown as Record<string, unknown>
    assert.deepEqual(await send(await getToken(MAILBOX + path, 'POST', alice.sign, true, asString)), [401, 'AUTH_PAYLOAD_MISMATCH'])
    // The u tag is PUBLIC_URL + path, never the path alone.
    assert.deepEqual(await send(await getToken(path, 'POST', alice.sign, true, body)), [401, 'AUTH_URL_MISMATCH'])
  })
})

// ---------------------------------------------------------------------------------------------
// NDK

/** An NDK on our relay only, signing in to it (NIP-42) with `signer`. */
const ndkClient = (signer: NDKPrivateKeySigner): NDK =>
  new NDK({
    explicitRelayUrls: [RELAY],
    enableOutboxModel: false, // no outbox pool (purplepag.es, nos.lol) and no relay-list lookups
    autoConnectUserRelays: false, // do not add the signer's own relay list
    relayConnectionFilter: url => url === normalizeRelayUrl(RELAY), // refuse any other relay (hints, p-tags)
    signer,
    relayAuthDefaultPolicy: NDKRelayAuthPolicies.signIn({ signer }),
  })

/** Connects and waits for the relay to accept the AUTH: NDK does not re-send an event refused before it. */
const connectAndSignIn = async (ndk: NDK): Promise<void> => {
  const authed = new Promise(resolve => ndk.pool.once('relay:authed', resolve))
  await ndk.connect(2000)
  await within(authed, 'NDK to sign in to the relay')
}

/** nostr-tools' getToken and @msr/mailbox-client signing with NDK's signer (NDK has no NIP-98 helper). */
const signWithNdk =
  (ndk: NDK) =>
  async (template: EventTemplate): Promise<VerifiedEvent> => {
    const event = new NDKEvent(ndk, template)
    await event.sign()
    return event.rawEvent() as VerifiedEvent
  }

/** The stored events matching `filter`, failing if the relay answers CLOSED instead of EOSE. */
const ndkQuery = (ndk: NDK, filter: NDKFilter): Promise<NDKEvent[]> =>
  within(
    new Promise((resolve, reject) => {
      const events: NDKEvent[] = []
      const sub = ndk.subscribe(filter, { closeOnEose: true }, { onEvent: e => void events.push(e), onEose: () => resolve(events) })
      sub.on('closed', (_relay, reason) => reject(new Error(`CLOSED: ${reason}`)))
    }),
    `NDK query ${JSON.stringify(filter)}`,
  )

describe('NDK (NDKPrivateKeySigner, NDKRelayAuthPolicies.signIn)', () => {
  const sockets = recordWebSockets()
  const clients: NDK[] = []
  const [alice, bob, carol] = [NDKPrivateKeySigner.generate(), NDKPrivateKeySigner.generate(), NDKPrivateKeySigner.generate()]
  let aliceNdk: NDK
  let bobNdk: NDK
  let carolNdk: NDK
  const globals = globalThis as { WebSocket?: unknown }

  before(async () => {
    globals.WebSocket = sockets.WebSocket // NDK uses the global WebSocket, which Node 20 lacks
    unrefNdkRelayTimers()
    ;[aliceNdk, bobNdk, carolNdk] = [alice, bob, carol].map(ndkClient) as [NDK, NDK, NDK]
    clients.push(aliceNdk, bobNdk, carolNdk)
    await Promise.all(clients.map(connectAndSignIn))
  })

  after(() => {
    for (const ndk of clients) for (const relay of ndk.pool.relays.values()) relay.disconnect()
    delete globals.WebSocket
  })

  /** Every connection went to our relay; each NDK has its one pool with our relay only. */
  const onlyOurRelay = () => {
    assert.deepEqual(new Set(sockets.urls), new Set([normalizeRelayUrl(RELAY)]))
    for (const ndk of clients) {
      assert.equal(ndk.outboxPool, undefined)
      assert.deepEqual(ndk.pools.map(pool => [...pool.relays.keys()]), [[normalizeRelayUrl(RELAY)]])
    }
  }

  it('publishes a note that another client receives live (from the relay), and stored', async () => {
    const live: [string, string | undefined][] = []
    let eose = false
    // skipOptimisticPublishEvent: only what the relay sends, never NDK's local echo of its own publish.
    const sub = bobNdk.subscribe(
      { kinds: [1], authors: [alice.pubkey] },
      { closeOnEose: false, skipOptimisticPublishEvent: true },
      { onEvent: (e, relay) => void live.push([e.id, relay?.url]), onEose: () => (eose = true) },
    )
    await eventually(async () => eose || undefined, "EOSE of Bob's subscription", WAIT_MS)
    const hello = new NDKEvent(aliceNdk, { kind: 1, content: 'hello from NDK' })
    const accepted = await hello.publish()
    assert.deepEqual([...accepted].map(r => r.url), [normalizeRelayUrl(RELAY)])
    await eventually(async () => live.find(([id]) => id === hello.id), 'the note, live', WAIT_MS)
    assert.deepEqual(live, [[hello.id, normalizeRelayUrl(RELAY)]])
    sub.stop()
    assert.deepEqual((await ndkQuery(carolNdk, { ids: [hello.id] })).map(e => e.content), ['hello from NDK'])
    onlyOurRelay()
  })

  it('signs in (NIP-42): a 445 is accepted; a 446 reaches its recipient and not a third key', async () => {
    const mls = new NDKEvent(aliceNdk, { kind: MLS_GROUP_MESSAGE, content: 'mls ciphertext', tags: [['h', `ndk-${Math.random().toString(16).slice(2)}`]] })
    await mls.sign(NDKPrivateKeySigner.generate()) // a throwaway key; Alice's connection is the authenticated one
    assert.equal((await mls.publish()).size, 1)

    const inbox: string[] = []
    let eose = false
    const sub = bobNdk.subscribe(
      { kinds: [NOISE_DM], '#p': [bob.pubkey] },
      { closeOnEose: false, skipOptimisticPublishEvent: true },
      { onEvent: e => void inbox.push(e.id), onEose: () => (eose = true) },
    )
    await eventually(async () => eose || undefined, "EOSE of Bob's inbox", WAIT_MS)
    const dm = new NDKEvent(aliceNdk, { kind: NOISE_DM, content: 'noise ciphertext', tags: [['p', bob.pubkey]] })
    assert.equal((await dm.publish()).size, 1)
    await eventually(async () => inbox.find(id => id === dm.id), "the 446 in Bob's inbox, live", WAIT_MS)
    sub.stop()
    assert.deepEqual((await ndkQuery(bobNdk, { kinds: [NOISE_DM], '#p': [bob.pubkey] })).map(e => e.id), [dm.id])
    assert.deepEqual(await ndkQuery(carolNdk, { kinds: [NOISE_DM], '#p': [bob.pubkey] }), [])
    assert.deepEqual(await ndkQuery(carolNdk, { ids: [dm.id] }), [])
    onlyOurRelay()
  })

  it("NIP-98 with NDK's signer: getToken deposits a KeyPackage, @msr/mailbox-client lists and acknowledges it", async () => {
    const body = { recipient: bob.pubkey, content_b64: Buffer.from('key package bytes').toString('base64') }
    const deposit = await mailboxFetch('/api/v1/keypackages', 'POST', signWithNdk(aliceNdk), body)
    assert.equal(deposit.status, 201, await deposit.clone().text())
    const { id } = (await deposit.json()) as { id: string }

    const mailbox = createMailboxClient({ baseUrl: MAILBOX, signer: { pubkey: bob.pubkey, sign: signWithNdk(bobNdk) } })
    const { items } = await mailbox.keyPackages.list()
    assert.deepEqual(items.map(i => [i.id, i.sender, Buffer.from(i.content).toString()]), [[id, alice.pubkey, 'key package bytes']])
    assert.equal(await mailbox.keyPackages.ack(id), true)
    assert.deepEqual((await mailbox.keyPackages.list()).items, [])
  })
})
