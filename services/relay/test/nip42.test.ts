// NIP-42 authentication end to end: the challenge, AUTH accepted and refused, re-authentication, kind
// 22242 never stored or broadcast, auth disabled, and the configuration that auth needs.
import assert from 'node:assert/strict'
import { rm } from 'node:fs/promises'
import { after, before, describe, it } from 'node:test'
import { loadConfig } from '@msr/config'
import { relayConfigSchema } from '../src/config.js'
import { MAX_AUTHED_KEYS } from '../src/connection/auth.js'
import {
  AUTH_ON,
  authEvent,
  ids,
  newSigner,
  now,
  runCli,
  sign,
  startTestRelay,
  TEST_PUBLIC_URL,
  tempDir,
  testConfig,
  TestClient,
  withTimeout,
  type NostrEvent,
  type OkMessage,
  type TestRelay,
} from './harness.js'

/** Public URL of the second relay: wss, with a path. */
const WSS_URL = 'wss://relay.test/nostr'

let relay: TestRelay
let wssRelay: TestRelay
let plainRelay: TestRelay
const clients: TestClient[] = []

before(async () => {
  ;[relay, wssRelay, plainRelay] = await Promise.all([
    startTestRelay({ ...AUTH_ON, 'data.query_workers': 1 }),
    startTestRelay({ 'auth.enabled': true, 'network.public_url': WSS_URL, 'data.query_workers': 1 }),
    startTestRelay({ 'data.query_workers': 1 }),
  ])
})

after(async () => {
  await Promise.all(clients.map(c => c.close()))
  await Promise.all([relay?.close(), wssRelay?.close(), plainRelay?.close()])
})

/** A new connection, closed after the file. */
const connect = async (to: TestRelay = relay): Promise<TestClient> => {
  const client = await TestClient.connect(to.url)
  clients.push(client)
  return client
}

/** A new connection and its challenge (claimed, so any later AUTH frame is a re-send). */
const connectWithChallenge = async (to: TestRelay = relay): Promise<[TestClient, string]> => {
  const client = await connect(to)
  return [client, await client.challenge()]
}

/** Sends `["AUTH", event]` and resolves with the OK for its id. */
const sendAuth = async (client: TestClient, event: NostrEvent | Record<string, unknown>): Promise<OkMessage> => {
  client.send(['AUTH', event])
  return (await client.next(m => m[0] === 'OK' && m[1] === event.id)) as OkMessage
}

/** True when the connection may read private kinds (it is authenticated as someone); claims the re-sent challenge otherwise. */
const isAuthenticated = async (client: TestClient): Promise<boolean> => {
  const subId = `probe-${Math.random().toString(36).slice(2)}`
  client.send(['REQ', subId, { kinds: [446], limit: 0 }])
  const reply = await client.next(m => (m[0] === 'EOSE' || m[0] === 'CLOSED') && m[1] === subId)
  if (reply[0] === 'EOSE') {
    client.send(['CLOSE', subId])
    return true
  }
  assert.match(String(reply[2]), /^auth-required: /)
  await client.next(m => m[0] === 'AUTH')
  return false
}

/** The AUTH was refused with `auth-required:`, the same challenge was sent again, and the connection is still unauthenticated. */
const assertRefused = async (client: TestClient, challenge: string, ok: OkMessage, reason?: RegExp): Promise<void> => {
  assert.equal(ok[2], false, JSON.stringify(ok))
  assert.match(ok[3], /^auth-required: /)
  if (reason) assert.match(ok[3], reason)
  const again = await client.next(m => m[0] === 'AUTH')
  assert.deepEqual(again, ['AUTH', challenge])
  assert.equal(await isAuthenticated(client), false)
}

/** A copy of a hex string with its first character changed. */
const flipFirst = (hex: string): string => (hex[0] === '0' ? '1' : '0') + hex.slice(1)

describe('the NIP-42 challenge', () => {
  it('is sent on connect as ["AUTH", <64 hex>], a different one for each connection', async () => {
    const [a, b] = await Promise.all([connect(), connect()])
    const [first, second] = [await a.next(), await b.next()]
    assert.equal(first[0], 'AUTH')
    assert.equal(second[0], 'AUTH')
    assert.equal(first.length, 2)
    assert.match(String(first[1]), /^[0-9a-f]{64}$/)
    assert.match(String(second[1]), /^[0-9a-f]{64}$/)
    assert.notEqual(first[1], second[1])
  })

  it('answered with a valid AUTH gives OK true "" and an authenticated connection', async () => {
    const [client, challenge] = await connectWithChallenge()
    const event = authEvent(newSigner(), challenge, TEST_PUBLIC_URL)
    assert.deepEqual(await sendAuth(client, event), ['OK', event.id, true, ''])
    assert.equal(await isAuthenticated(client), true)
  })

  it('after a refused AUTH, a valid one on the same connection is accepted', async () => {
    const [client, challenge] = await connectWithChallenge()
    const signer = newSigner()
    await assertRefused(client, challenge, await client.auth(signer, { challenge: flipFirst(challenge) }))
    await client.authOk(signer)
    assert.equal(await isAuthenticated(client), true)
  })
})

describe('AUTH refused with OK false "auth-required:" and the challenge sent again', () => {
  it('with a wrong challenge', async () => {
    const [client, challenge] = await connectWithChallenge()
    const ok = await client.auth(newSigner(), { challenge: flipFirst(challenge) })
    await assertRefused(client, challenge, ok, /challenge/)
  })

  it("with another connection's challenge", async () => {
    const [client, challenge] = await connectWithChallenge()
    const [, otherChallenge] = await connectWithChallenge()
    await assertRefused(client, challenge, await client.auth(newSigner(), { challenge: otherChallenge }), /challenge/)
  })

  it('with an empty challenge tag', async () => {
    const [client, challenge] = await connectWithChallenge()
    await assertRefused(client, challenge, await client.auth(newSigner(), { challenge: '' }), /challenge/)
  })

  const wrongRelays: Array<[string, string]> = [
    ['another host', 'ws://other.test'],
    ['a host that only starts like it', 'ws://relay.test.evil.example'],
    ['another port', 'ws://relay.test:8080'],
    ['another path', 'ws://relay.test/other'],
    ['another scheme (wss)', 'wss://relay.test'],
    ['no scheme', 'relay.test'],
    ['an empty value', ''],
  ]
  for (const [what, url] of wrongRelays) {
    it(`with a relay tag naming ${what}: ${JSON.stringify(url)}`, async () => {
      const [client, challenge] = await connectWithChallenge()
      // The refusal names the URL that would have been accepted (the configured public_url).
      await assertRefused(client, challenge, await client.auth(newSigner(), { relay: url }), /relay tag does not name this relay: expected ws:\/\/relay\.test$/)
    })
  }

  const wrongWssRelays = ['wss://relay.test', 'wss://relay.test/other', 'wss://relay.test:8443/nostr', 'wss://other.test/nostr', 'ws://relay.test/nostr']
  for (const url of wrongWssRelays) {
    it(`with a relay tag ${url} on a relay whose public URL is ${WSS_URL}`, async () => {
      const [client, challenge] = await connectWithChallenge(wssRelay)
      await assertRefused(client, challenge, await client.auth(newSigner(), { relay: url }), /relay/)
    })
  }

  it('with created_at 11 minutes in the past', async () => {
    const [client, challenge] = await connectWithChallenge()
    await assertRefused(client, challenge, await client.auth(newSigner(), { parts: { created_at: now() - 11 * 60 } }), /created_at/)
  })

  it('with created_at 11 minutes in the future', async () => {
    const [client, challenge] = await connectWithChallenge()
    await assertRefused(client, challenge, await client.auth(newSigner(), { parts: { created_at: now() + 11 * 60 } }), /created_at/)
  })

  it('with a bad signature', async () => {
    const [client, challenge] = await connectWithChallenge()
    const event = authEvent(newSigner(), challenge, TEST_PUBLIC_URL)
    await assertRefused(client, challenge, await sendAuth(client, { ...event, sig: flipFirst(event.sig) }), /signature/)
  })

  it("with another key's signature (pubkey swapped)", async () => {
    const [client, challenge] = await connectWithChallenge()
    const victim = newSigner()
    const forged = authEvent(newSigner(), challenge, TEST_PUBLIC_URL)
    // Same content, claimed by the victim: the id must be recomputed for the event to pass the id check.
    const claimed = authEvent(victim, challenge, TEST_PUBLIC_URL, { created_at: forged.created_at })
    await assertRefused(client, challenge, await sendAuth(client, { ...claimed, sig: forged.sig }), /signature/)
  })

  it('with kind 1 instead of 22242', async () => {
    const [client, challenge] = await connectWithChallenge()
    await assertRefused(client, challenge, await client.auth(newSigner(), { parts: { kind: 1 } }), /kind/)
  })

  it('with no tags at all', async () => {
    const [client, challenge] = await connectWithChallenge()
    await assertRefused(client, challenge, await client.auth(newSigner(), { parts: { tags: [] } }))
  })

  it('with only the relay tag', async () => {
    const [client, challenge] = await connectWithChallenge()
    const ok = await client.auth(newSigner(), { parts: { tags: [['relay', TEST_PUBLIC_URL]] } })
    await assertRefused(client, challenge, ok, /challenge/)
  })

  it('with only the challenge tag', async () => {
    const [client, challenge] = await connectWithChallenge()
    const ok = await client.auth(newSigner(), { parts: { tags: [['challenge', challenge]] } })
    await assertRefused(client, challenge, ok, /relay/)
  })
})

describe('AUTH accepted', () => {
  const equivalent = ['ws://relay.test/', 'ws://RELAY.TEST', 'ws://Relay.Test/', 'ws://relay.test:80', 'ws://relay.test:80/']
  for (const url of equivalent) {
    it(`with a relay tag that differs from ${TEST_PUBLIC_URL} only by normalisation: ${url}`, async () => {
      const [client] = await connectWithChallenge()
      assert.deepEqual((await client.auth(newSigner(), { relay: url })).slice(2), [true, ''])
      assert.equal(await isAuthenticated(client), true)
    })
  }

  const equivalentWss = ['wss://relay.test/nostr/', 'wss://RELAY.test/nostr', 'wss://relay.test:443/nostr', 'wss://relay.test:443/nostr/']
  for (const url of equivalentWss) {
    it(`with a relay tag that differs from ${WSS_URL} only by normalisation: ${url}`, async () => {
      const [client] = await connectWithChallenge(wssRelay)
      assert.deepEqual((await client.auth(newSigner(), { relay: url })).slice(2), [true, ''])
      assert.equal(await isAuthenticated(client), true)
    })
  }

  for (const minutes of [-9, 9]) {
    it(`with created_at ${Math.abs(minutes)} minutes in the ${minutes < 0 ? 'past' : 'future'}`, async () => {
      const [client] = await connectWithChallenge()
      assert.deepEqual((await client.auth(newSigner(), { parts: { created_at: now() + minutes * 60 } })).slice(2), [true, ''])
    })
  }
})

describe('malformed AUTH messages', () => {
  /** Sends a frame, expects NOTICE "invalid:" and checks the connection still works and is not authenticated. */
  const expectNotice = async (message: unknown[]) => {
    const [client] = await connectWithChallenge()
    client.send(message)
    const notice = await client.next(m => m[0] === 'NOTICE')
    assert.match(String(notice[1]), /^invalid: /)
    assert.equal(await isAuthenticated(client), false)
  }

  it('a string instead of an event gets NOTICE "invalid:"', () => expectNotice(['AUTH', 'not an event']))
  it('a number instead of an event gets NOTICE "invalid:"', () => expectNotice(['AUTH', 42]))
  it('an array instead of an event gets NOTICE "invalid:"', () => expectNotice(['AUTH', []]))
  it('AUTH with no event gets NOTICE "invalid:"', () => expectNotice(['AUTH']))
  it('an event whose id is not 64 hex gets NOTICE "invalid:"', async () => {
    const event = authEvent(newSigner(), '0'.repeat(64), TEST_PUBLIC_URL)
    await expectNotice(['AUTH', { ...event, id: 'not-an-id' }])
  })

  it('AUTH with two events, or an event and more, gets OK false "invalid:" for the first one\'s id (NIP-42)', async () => {
    for (const extra of [['extra'], [{ kind: 1 }], [1, 2]]) {
      const [client, challenge] = await connectWithChallenge()
      const event = authEvent(newSigner(), challenge, TEST_PUBLIC_URL)
      client.send(['AUTH', event, ...extra])
      const answer = await client.next(m => m[0] === 'OK' || m[0] === 'NOTICE')
      assert.deepEqual(answer, ['OK', event.id, false, 'invalid: AUTH takes exactly one event'], JSON.stringify(extra))
      assert.equal(await isAuthenticated(client), false)
    }
  })

  it('an event with a readable but wrong id gets OK false "invalid:" for that id', async () => {
    const [client, challenge] = await connectWithChallenge()
    const event = authEvent(newSigner(), challenge, TEST_PUBLIC_URL)
    const ok = await sendAuth(client, { ...event, content: 'changed after signing' })
    assert.equal(ok[2], false)
    assert.match(ok[3], /^invalid: /)
    assert.equal(await isAuthenticated(client), false)
  })

  it('an event without its tags field gets OK false "invalid:"', async () => {
    const [client, challenge] = await connectWithChallenge()
    const { tags: _tags, ...event } = authEvent(newSigner(), challenge, TEST_PUBLIC_URL)
    const ok = await sendAuth(client, event)
    assert.equal(ok[2], false)
    assert.match(ok[3], /^invalid: /)
    assert.equal(await isAuthenticated(client), false)
  })
})

describe('re-authentication on the same connection', () => {
  it('adds the second pubkey: private events to either are readable, others are not', async () => {
    const [alice, bob, carol, sender] = [newSigner(), newSigner(), newSigner(), newSigner()]
    const publisher = await connect()
    const toAlice = sign(sender, { kind: 446, tags: [['p', alice.pubkey]], content: 'to alice' })
    const toBob = sign(sender, { kind: 446, tags: [['p', bob.pubkey]], content: 'to bob' })
    const toCarol = sign(sender, { kind: 446, tags: [['p', carol.pubkey]], content: 'to carol' })
    for (const event of [toAlice, toBob, toCarol]) await publisher.publishOk(event)

    const [client] = await connectWithChallenge()
    await client.authOk(alice)
    assert.deepEqual(ids(await client.query({ kinds: [446], authors: [sender.pubkey] })), [toAlice.id])
    await client.authOk(bob)
    const readable = await client.query({ kinds: [446], authors: [sender.pubkey] })
    assert.deepEqual(ids(readable).sort(), [toAlice.id, toBob.id].sort())

    // Live as well: a new event to either pubkey arrives, one to Carol does not.
    client.send(['REQ', 'live', { kinds: [446], authors: [sender.pubkey], since: now() - 5 }])
    await client.collectUntilEose('live')
    const laterCarol = sign(sender, { kind: 446, tags: [['p', carol.pubkey]], content: 'to carol again' })
    const laterBob = sign(sender, { kind: 446, tags: [['p', bob.pubkey]], content: 'to bob again' })
    const laterAlice = sign(sender, { kind: 446, tags: [['p', alice.pubkey]], content: 'to alice again' })
    for (const event of [laterCarol, laterBob, laterAlice]) await publisher.publishOk(event)
    assert.equal((await client.nextEvent('live')).id, laterBob.id)
    assert.equal((await client.nextEvent('live')).id, laterAlice.id)
  })

  it(`accepts at most ${MAX_AUTHED_KEYS} keys per connection: the next is refused "restricted:", one of them again is accepted`, async () => {
    const [client, challenge] = await connectWithChallenge()
    const signers = Array.from({ length: MAX_AUTHED_KEYS + 1 }, () => newSigner())
    for (const signer of signers.slice(0, MAX_AUTHED_KEYS)) await client.authOk(signer)
    const extra = authEvent(signers[MAX_AUTHED_KEYS]!, challenge, TEST_PUBLIC_URL)
    const ok = await sendAuth(client, extra)
    assert.equal(ok[2], false)
    assert.match(ok[3], new RegExp(`^restricted: this connection is already authenticated as ${MAX_AUTHED_KEYS} keys`))
    await client.authOk(signers[3]!)
    assert.equal(await isAuthenticated(client), true)
  })

  it('re-authenticating as the same pubkey is accepted again', async () => {
    const [client] = await connectWithChallenge()
    const signer = newSigner()
    await client.authOk(signer)
    await client.authOk(signer)
    assert.equal(await isAuthenticated(client), true)
  })
})

describe('kind 22242', () => {
  it('sent as EVENT is refused, and no 22242 (EVENT or AUTH) is ever broadcast or stored', async () => {
    const sentinelAuthor = newSigner()
    const watcher = await connect()
    await watcher.authOk(newSigner())
    await watcher.req('auth-events', { kinds: [22242] })
    await watcher.req('sentinel', { kinds: [1], authors: [sentinelAuthor.pubkey] })

    const [client, challenge] = await connectWithChallenge()
    const asEvent = authEvent(newSigner(), challenge, TEST_PUBLIC_URL)
    const ok = await client.publish(asEvent)
    assert.equal(ok[2], false)
    assert.match(ok[3], /^(invalid|restricted|blocked): /)
    const asAuth = authEvent(newSigner(), challenge, TEST_PUBLIC_URL)
    assert.deepEqual(await sendAuth(client, asAuth), ['OK', asAuth.id, true, ''])

    // Fan-out keeps order: once the sentinel published afterwards arrives, any 22242 would have come first.
    const sentinel = sign(sentinelAuthor, { content: 'sentinel' })
    await client.publishOk(sentinel)
    assert.equal((await watcher.nextEvent('sentinel')).id, sentinel.id)
    assert.deepEqual(watcher.takeAll(m => m[0] === 'EVENT' && m[1] === 'auth-events'), [])
    assert.deepEqual(await watcher.query({ kinds: [22242] }), [])
    assert.deepEqual(await watcher.query({ ids: [asEvent.id, asAuth.id] }), [])
  })
})

describe('with auth disabled', () => {
  it('no challenge is sent on connect', async () => {
    const client = await connect(plainRelay)
    await client.sync()
    assert.deepEqual(
      client.history.filter(m => m[0] === 'AUTH'),
      [],
    )
  })

  it('AUTH is answered OK false "restricted:" and no challenge follows', async () => {
    const client = await connect(plainRelay)
    const event = authEvent(newSigner(), '0'.repeat(64), TEST_PUBLIC_URL)
    const ok = await sendAuth(client, event)
    assert.equal(ok[2], false)
    assert.match(ok[3], /^restricted: /)
    await client.sync()
    assert.deepEqual(
      client.history.filter(m => m[0] === 'AUTH'),
      [],
    )
  })
})

describe('auth enabled by a reload', () => {
  it('a connection opened before it has no challenge to answer: an empty challenge tag is refused, then a challenge is sent', async () => {
    const reloaded = await startTestRelay({ 'network.public_url': TEST_PUBLIC_URL, 'data.query_workers': 1 })
    try {
      const client = await TestClient.connect(reloaded.url)
      clients.push(client)
      await client.sync()
      reloaded.running.settings.reload(testConfig(reloaded.dataDir, { ...AUTH_ON, 'data.query_workers': 1 }))
      const ok = await client.auth(newSigner(), { challenge: '' })
      assert.equal(ok[2], false, JSON.stringify(ok))
      assert.match(ok[3], /^auth-required: /)
      const challenge = await client.challenge()
      assert.match(challenge, /^[0-9a-f]{64}$/)
      assert.deepEqual((await client.auth(newSigner(), { challenge })).slice(2), [true, ''])
    } finally {
      await reloaded.close()
    }
  })
})

describe('configuration', () => {
  const load = (overrides: Record<string, unknown>) => loadConfig({ schema: relayConfigSchema, overrides })

  it('auth.enabled without network.public_url is refused, naming the key', () => {
    const loaded = load({ 'auth.enabled': true })
    assert.equal(loaded.ok, false)
    assert.match(loaded.ok ? '' : loaded.errors.join('\n'), /network\.public_url/)
  })

  it('a public_url that is not a ws:// or wss:// URL is refused', () => {
    for (const url of ['relay.test', 'ftp://relay.test']) {
      const loaded = load({ 'auth.enabled': true, 'network.public_url': url })
      assert.equal(loaded.ok, false, url)
      assert.match(loaded.ok ? '' : loaded.errors.join('\n'), /network\.public_url/)
    }
  })

  it('auth.required without auth.enabled is refused', () => {
    const loaded = load({ 'auth.required': true, 'network.public_url': TEST_PUBLIC_URL })
    assert.equal(loaded.ok, false)
    assert.match(loaded.ok ? '' : loaded.errors.join('\n'), /auth\.required/)
  })

  it('auth.enabled with a public_url is valid', () => {
    assert.equal(load({ ...AUTH_ON }).ok, true)
  })

  it('`msr-relay config check` refuses RELAY_AUTH__ENABLED=true without a public URL and accepts it with one', async () => {
    const dir = await tempDir('msr-relay-nip42-cli-')
    const bad = runCli(['config', 'check'], { RELAY_AUTH__ENABLED: 'true' }, dir)
    const good = runCli(['config', 'check'], { RELAY_AUTH__ENABLED: 'true', RELAY_NETWORK__PUBLIC_URL: 'wss://relay.example.com' }, dir)
    const [badExit, goodExit] = await Promise.all([withTimeout(bad.exited, 'config check to exit'), withTimeout(good.exited, 'config check to exit')])
    await rm(dir, { recursive: true, force: true })
    assert.notEqual(badExit.code, 0)
    assert.match(bad.stderr.join('\n'), /network\.public_url/)
    assert.equal(goodExit.code, 0, good.stderr.join('\n'))
  })
})
