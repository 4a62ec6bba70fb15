// [auth.req] and [auth.event] end to end: IP allow/deny lists (IPv4/IPv6, addresses and CIDR ranges),
// NIP-42 pubkey lists (hex and npub), event-author lists, auth.required, and the client IP behind
// trusted proxies (X-Forwarded-For counted from the right).
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { npubEncode } from 'nostr-tools/nip19'
import { AUTH_ON, newSigner, sign, startTestRelay, testConfig, TestClient, type Signer, type TestRelay } from './harness.js'

const clients: TestClient[] = []

after(async () => {
  await Promise.all(clients.map(c => c.close()))
})

/** Starts a relay for one describe block and closes it after the block. */
const relayFor = (overrides: Record<string, unknown>): (() => TestRelay) => {
  let relay: TestRelay | undefined
  before(async () => {
    relay = await startTestRelay({ 'data.query_workers': 1, ...overrides })
  })
  after(async () => {
    await relay?.close()
  })
  return () => {
    if (!relay) throw new Error('relay not started')
    return relay
  }
}

/**
 * A connection, optionally with an X-Forwarded-For header; with auth enabled its first challenge is
 * claimed, so any later AUTH frame is a re-send.
 */
const connect = async (relay: TestRelay, forwardedFor?: string): Promise<TestClient> => {
  const client = await TestClient.connect(relay.url, forwardedFor === undefined ? {} : { headers: { 'X-Forwarded-For': forwardedFor } })
  clients.push(client)
  if (relay.config.auth.enabled) await client.challenge()
  return client
}

let serial = 0

/** What the relay answers a REQ with: 'EOSE', or the CLOSED reason. */
const reqAnswer = async (client: TestClient): Promise<string> => {
  const subId = `req-${++serial}`
  client.send(['REQ', subId, { kinds: [1], limit: 0 }])
  const reply = await client.next(m => (m[0] === 'EOSE' || m[0] === 'CLOSED') && m[1] === subId)
  if (reply[0] === 'CLOSED') return String(reply[2])
  client.send(['CLOSE', subId])
  return 'EOSE'
}

/** What the relay answers a COUNT with: 'COUNT', or the CLOSED reason. */
const countAnswer = async (client: TestClient): Promise<string> => {
  const reply = await client.count(`count-${++serial}`, { kinds: [1] })
  return reply[0] === 'COUNT' ? 'COUNT' : String(reply[2])
}

/** What the relay answers an EVENT by `author` with: 'OK' when accepted, else the refusal. */
const eventAnswer = async (client: TestClient, author: Signer = newSigner()): Promise<string> => {
  const event = sign(author, { content: `event ${++serial}` })
  const ok = await client.publish(event)
  return ok[2] ? 'OK' : ok[3]
}

/** The answer is `auth-required:` and the relay sent its challenge again. */
const assertAuthRequired = async (client: TestClient, answer: string): Promise<void> => {
  assert.match(answer, /^auth-required: /)
  const challenge = await client.next(m => m[0] === 'AUTH')
  assert.match(String(challenge[1]), /^[0-9a-f]{64}$/)
}

/** The answer is `restricted:` and no challenge followed it. */
const assertRestricted = async (client: TestClient, answer: string): Promise<void> => {
  assert.match(answer, /^restricted: /)
  await client.sync()
  assert.deepEqual(
    client.takeAll(m => m[0] === 'AUTH'),
    [],
  )
}

describe('IP lists behind one trusted proxy: [auth.req] ip_blacklist, [auth.event] ip_whitelist', () => {
  const relay = relayFor({
    'network.trusted_proxies': 1,
    'auth.req.ip_blacklist': ['203.0.113.7', '198.51.100.0/24', '2001:db8::bad', '2001:db8:dead::/48'],
    'auth.event.ip_whitelist': ['192.0.2.1', '10.20.0.0/16', '2001:db8::1', '2001:db8:cafe::/48'],
  })

  const blacklisted = ['203.0.113.7', '198.51.100.0', '198.51.100.255', '2001:db8::bad', '2001:db8:dead::1', '2001:db8:dead:ffff::9', '2001:DB8:0:0:0:0:0:BAD', '::ffff:203.0.113.7']
  for (const ip of blacklisted) {
    it(`REQ and COUNT from ${ip} get CLOSED "restricted:"`, async () => {
      const client = await connect(relay(), ip)
      await assertRestricted(client, await reqAnswer(client))
      await assertRestricted(client, await countAnswer(client))
    })
  }

  const notBlacklisted = ['203.0.113.8', '198.51.101.1', '198.51.99.255', '2001:db8::bae', '2001:db8:deae::1', '2001:db8:def0::1', '10.0.0.1']
  for (const ip of notBlacklisted) {
    it(`REQ and COUNT from ${ip} are served`, async () => {
      const client = await connect(relay(), ip)
      assert.equal(await reqAnswer(client), 'EOSE')
      assert.equal(await countAnswer(client), 'COUNT')
    })
  }

  const whitelisted = ['192.0.2.1', '10.20.0.0', '10.20.255.254', '2001:db8::1', '2001:db8:cafe::1', '2001:db8:cafe:ffff::1']
  for (const ip of whitelisted) {
    it(`EVENT from ${ip} is accepted`, async () => {
      const client = await connect(relay(), ip)
      assert.equal(await eventAnswer(client), 'OK')
    })
  }

  const notWhitelisted = ['192.0.2.2', '10.21.0.1', '10.19.255.255', '2001:db8::2', '2001:db8:caff::1', '203.0.113.7']
  for (const ip of notWhitelisted) {
    it(`EVENT from ${ip} gets OK false "restricted:" and is not stored`, async () => {
      const client = await connect(relay(), ip)
      const event = sign(newSigner(), { content: `from ${ip}` })
      const ok = await client.publish(event)
      assert.equal(ok[2], false)
      await assertRestricted(client, ok[3])
      const reader = await connect(relay(), '10.0.0.1')
      assert.deepEqual(await reader.query({ ids: [event.id] }), [])
    })
  }
})

describe('IP lists behind one trusted proxy: [auth.req] ip_whitelist, [auth.event] ip_blacklist', () => {
  const relay = relayFor({
    'network.trusted_proxies': 1,
    'auth.req.ip_whitelist': ['10.0.0.9', '192.0.2.0/24', '2001:db8::9', '2001:db8:beef::/48'],
    'auth.event.ip_blacklist': ['192.0.2.66', '192.0.2.128/25', '2001:db8:beef::66', '2001:db8:beef:1::/64'],
  })

  for (const ip of ['10.0.0.9', '192.0.2.5', '192.0.2.200', '2001:db8::9', '2001:db8:beef:ffff::1']) {
    it(`REQ and COUNT from whitelisted ${ip} are served`, async () => {
      const client = await connect(relay(), ip)
      assert.equal(await reqAnswer(client), 'EOSE')
      assert.equal(await countAnswer(client), 'COUNT')
    })
  }

  for (const ip of ['10.0.0.8', '192.0.3.1', '2001:db8::8', '2001:db8:bef0::1', '127.0.0.1']) {
    it(`REQ and COUNT from ${ip}, outside the whitelist, get CLOSED "restricted:"`, async () => {
      const client = await connect(relay(), ip)
      await assertRestricted(client, await reqAnswer(client))
      await assertRestricted(client, await countAnswer(client))
    })
  }

  for (const ip of ['192.0.2.66', '192.0.2.128', '192.0.2.255', '2001:db8:beef::66', '2001:db8:beef:1::abcd']) {
    it(`EVENT from blacklisted ${ip} gets OK false "restricted:"`, async () => {
      const client = await connect(relay(), ip)
      await assertRestricted(client, await eventAnswer(client))
    })
  }

  for (const ip of ['192.0.2.65', '192.0.2.127', '2001:db8:beef::67', '2001:db8:beef:2::1', '10.1.1.1']) {
    it(`EVENT from ${ip} is accepted (the REQ whitelist does not apply to EVENT)`, async () => {
      const client = await connect(relay(), ip)
      assert.equal(await eventAnswer(client), 'OK')
    })
  }
})

describe('IP lists over a real loopback connection, no proxies', () => {
  describe('127.0.0.1 in [auth.req] ip_blacklist and in an [auth.event] ip_whitelist range', () => {
    const relay = relayFor({ 'auth.req.ip_blacklist': ['127.0.0.1'], 'auth.event.ip_whitelist': ['127.0.0.0/8'] })

    it('REQ and COUNT get CLOSED "restricted:", EVENT is accepted', async () => {
      const client = await connect(relay())
      await assertRestricted(client, await reqAnswer(client))
      await assertRestricted(client, await countAnswer(client))
      assert.equal(await eventAnswer(client), 'OK')
    })
  })

  describe('127.0.0.1 outside an [auth.req] ip_whitelist and in an [auth.event] ip_blacklist range', () => {
    const relay = relayFor({ 'auth.req.ip_whitelist': ['10.0.0.0/8', '::1'], 'auth.event.ip_blacklist': ['127.0.0.0/24'] })

    it('REQ and COUNT get CLOSED "restricted:", EVENT gets OK false "restricted:"', async () => {
      const client = await connect(relay())
      await assertRestricted(client, await reqAnswer(client))
      await assertRestricted(client, await countAnswer(client))
      await assertRestricted(client, await eventAnswer(client))
    })

    it('an X-Forwarded-For header naming a whitelisted address changes nothing (no trusted proxies)', async () => {
      const client = await connect(relay(), '10.0.0.1')
      await assertRestricted(client, await reqAnswer(client))
    })
  })

  describe('127.0.0.1 in an [auth.req] ip_whitelist (as a plain and an IPv4-mapped IPv6 address)', () => {
    const plain = relayFor({ 'auth.req.ip_whitelist': ['127.0.0.1'] })
    const mapped = relayFor({ 'auth.req.ip_whitelist': ['::ffff:127.0.0.1'] })

    it('REQ and COUNT are served', async () => {
      for (const relay of [plain(), mapped()]) {
        const client = await connect(relay)
        assert.equal(await reqAnswer(client), 'EOSE')
        assert.equal(await countAnswer(client), 'COUNT')
      }
    })
  })
})

const [alice, bob, carol, mallory, eve, dave] = [newSigner(), newSigner(), newSigner(), newSigner(), newSigner(), newSigner()]

/** A connection authenticated (NIP-42) as each of `signers`, in order. */
const authedAs = async (relay: TestRelay, ...signers: Signer[]): Promise<TestClient> => {
  const client = await connect(relay)
  for (const signer of signers) await client.authOk(signer)
  return client
}

describe('[auth.req] pubkey_whitelist (hex, upper-case hex and npub) and [auth.event] pubkey_blacklist', () => {
  const relay = relayFor({
    ...AUTH_ON,
    'auth.req.pubkey_whitelist': [alice.pubkey, npubEncode(bob.pubkey), dave.pubkey.toUpperCase()],
    'auth.event.pubkey_blacklist': [mallory.pubkey, npubEncode(eve.pubkey)],
  })

  it('an unauthenticated REQ gets CLOSED "auth-required:" followed by the challenge; COUNT likewise', async () => {
    const client = await connect(relay())
    await assertAuthRequired(client, await reqAnswer(client))
    await assertAuthRequired(client, await countAnswer(client))
  })

  it('REQ and COUNT authenticated as a pubkey not on the list get CLOSED "restricted:" (no challenge)', async () => {
    const client = await authedAs(relay(), carol)
    await assertRestricted(client, await reqAnswer(client))
    await assertRestricted(client, await countAnswer(client))
  })

  for (const [name, signer] of [
    ['listed as hex', alice],
    ['listed as npub', bob],
    ['listed as upper-case hex', dave],
  ] as const) {
    it(`REQ and COUNT authenticated as a pubkey ${name} are served`, async () => {
      const client = await authedAs(relay(), signer)
      assert.equal(await reqAnswer(client), 'EOSE')
      assert.equal(await countAnswer(client), 'COUNT')
    })
  }

  it('a connection authenticated as an unlisted and then a listed pubkey is served', async () => {
    const client = await connect(relay())
    await client.authOk(carol)
    await assertRestricted(client, await reqAnswer(client))
    await client.authOk(bob)
    assert.equal(await reqAnswer(client), 'EOSE')
  })

  it('EVENT is accepted unauthenticated and as an unlisted pubkey (the REQ whitelist does not apply)', async () => {
    assert.equal(await eventAnswer(await connect(relay())), 'OK')
    assert.equal(await eventAnswer(await authedAs(relay(), carol)), 'OK')
  })

  it('EVENT from a connection authenticated as a blacklisted pubkey (hex or npub) gets OK false "restricted:", whoever signed it', async () => {
    for (const banned of [mallory, eve]) {
      const client = await authedAs(relay(), banned)
      await assertRestricted(client, await eventAnswer(client, banned))
      await assertRestricted(client, await eventAnswer(client, carol))
    }
  })

  it('a blacklisted pubkey keeps its connection restricted even when it also authenticates as another pubkey', async () => {
    const client = await authedAs(relay(), alice, mallory)
    await assertRestricted(client, await eventAnswer(client, alice))
  })
})

describe('[auth.req] pubkey_blacklist and [auth.event] pubkey_whitelist', () => {
  const relay = relayFor({
    ...AUTH_ON,
    'auth.req.pubkey_blacklist': [npubEncode(mallory.pubkey), eve.pubkey],
    'auth.event.pubkey_whitelist': [npubEncode(alice.pubkey), bob.pubkey],
  })

  it('REQ and COUNT authenticated as a blacklisted pubkey (npub or hex) get CLOSED "restricted:"', async () => {
    for (const banned of [mallory, eve]) {
      const client = await authedAs(relay(), banned)
      await assertRestricted(client, await reqAnswer(client))
      await assertRestricted(client, await countAnswer(client))
    }
  })

  it('REQ and COUNT unauthenticated or as another pubkey are served', async () => {
    for (const client of [await connect(relay()), await authedAs(relay(), carol)]) {
      assert.equal(await reqAnswer(client), 'EOSE')
      assert.equal(await countAnswer(client), 'COUNT')
    }
  })

  it('an unauthenticated EVENT gets OK false "auth-required:" followed by the challenge', async () => {
    const client = await connect(relay())
    await assertAuthRequired(client, await eventAnswer(client, alice))
  })

  it('EVENT authenticated as a pubkey not on the whitelist gets OK false "restricted:"', async () => {
    const client = await authedAs(relay(), carol)
    await assertRestricted(client, await eventAnswer(client, carol))
  })

  it('EVENT authenticated as a whitelisted pubkey (npub or hex) is accepted, whoever signed it', async () => {
    for (const allowed of [alice, bob]) {
      const client = await authedAs(relay(), allowed)
      assert.equal(await eventAnswer(client, allowed), 'OK')
      assert.equal(await eventAnswer(client, dave), 'OK')
    }
  })
})

describe('[auth.event] event_pubkey_whitelist (hex and npub): refusal by event author', () => {
  const relay = relayFor({ 'auth.event.event_pubkey_whitelist': [alice.pubkey, npubEncode(bob.pubkey)] })

  it('events by listed authors are accepted, others get OK false "restricted:" and are not stored', async () => {
    const client = await connect(relay())
    assert.equal(await eventAnswer(client, alice), 'OK')
    assert.equal(await eventAnswer(client, bob), 'OK')
    const refused = sign(carol, { content: 'not on the list' })
    const ok = await client.publish(refused)
    assert.equal(ok[2], false)
    await assertRestricted(client, ok[3])
    assert.deepEqual(await client.query({ ids: [refused.id] }), [])
  })
})

describe('[auth.event] event_pubkey_blacklist (hex and npub): refusal by event author', () => {
  const relay = relayFor({ ...AUTH_ON, 'auth.event.event_pubkey_blacklist': [npubEncode(mallory.pubkey), eve.pubkey] })

  it('events by listed authors get OK false "restricted:", even from a connection authenticated as someone else', async () => {
    const client = await connect(relay())
    for (const banned of [mallory, eve]) await assertRestricted(client, await eventAnswer(client, banned))
    const authed = await authedAs(relay(), alice)
    await assertRestricted(authed, await eventAnswer(authed, mallory))
  })

  it('events by other authors are accepted', async () => {
    assert.equal(await eventAnswer(await connect(relay()), carol), 'OK')
  })
})

describe('a reload that denies what is already open', () => {
  const relay = relayFor(AUTH_ON)

  it('closes the live subscriptions it would refuse now with CLOSED "restricted:"; others go on receiving', async () => {
    const [banned, kept] = [await authedAs(relay(), mallory), await authedAs(relay(), carol)]
    for (const client of [banned, kept]) {
      client.send(['REQ', 'live', { kinds: [1], limit: 0 }])
      await client.collectUntilEose('live')
    }
    const { dataDir } = relay()
    relay().running.settings.reload(testConfig(dataDir, { 'data.query_workers': 1, ...AUTH_ON, 'auth.req.pubkey_blacklist': [mallory.pubkey] }))
    const closed = await banned.next(m => m[0] === 'CLOSED' && m[1] === 'live')
    assert.match(String(closed[2]), /^restricted: reading is not allowed for your pubkey/)
    const publisher = await connect(relay())
    const event = sign(newSigner(), { content: 'after the reload' })
    await publisher.publishOk(event)
    assert.equal((await kept.nextEvent('live')).id, event.id)
    await banned.sync()
    assert.deepEqual(
      banned.takeAll(m => m[0] === 'EVENT'),
      [],
      'nothing reaches the closed subscription',
    )
  })
})

describe('auth.required = true', () => {
  const relay = relayFor({ ...AUTH_ON, 'auth.required': true })

  it('unauthenticated REQ, COUNT and EVENT get "auth-required:", each followed by the challenge', async () => {
    const client = await connect(relay())
    await assertAuthRequired(client, await reqAnswer(client))
    await assertAuthRequired(client, await countAnswer(client))
    await assertAuthRequired(client, await eventAnswer(client))
  })

  it('after AUTH as any pubkey, REQ, COUNT and EVENT are served', async () => {
    const client = await connect(relay())
    await client.authOk(newSigner())
    assert.equal(await reqAnswer(client), 'EOSE')
    assert.equal(await countAnswer(client), 'COUNT')
    assert.equal(await eventAnswer(client), 'OK')
  })
})

describe('client IP behind trusted proxies (X-Forwarded-For, counted from the right)', () => {
  // Reading is allowed only from 10.0.0.5, publishing is refused from 6.6.6.6: each case shows which address the relay used.
  const lists = { 'auth.req.ip_whitelist': ['10.0.0.5'], 'auth.event.ip_blacklist': ['6.6.6.6'] }

  describe('trusted_proxies = 1', () => {
    const relay = relayFor({ ...lists, 'network.trusted_proxies': 1 })

    it('the right-most entry (appended by the proxy) is the client IP', async () => {
      const client = await connect(relay(), '10.0.0.5')
      assert.equal(await reqAnswer(client), 'EOSE')
      assert.equal(await eventAnswer(client), 'OK')
    })

    it('a forged left-most "6.6.6.6, 10.0.0.5" does not make the client 6.6.6.6', async () => {
      const client = await connect(relay(), '6.6.6.6, 10.0.0.5')
      assert.equal(await reqAnswer(client), 'EOSE')
      assert.equal(await eventAnswer(client), 'OK')
    })

    it('a client at 6.6.6.6 forging "10.0.0.5" ahead of what the proxy appended stays 6.6.6.6', async () => {
      for (const header of ['10.0.0.5, 6.6.6.6', '10.0.0.5,6.6.6.6', '10.0.0.5, 10.0.0.5, 6.6.6.6']) {
        const client = await connect(relay(), header)
        await assertRestricted(client, await reqAnswer(client))
        await assertRestricted(client, await eventAnswer(client))
      }
    })

    it('without the header, or with an entry that is not an address, the TCP peer (127.0.0.1) is used', async () => {
      for (const header of [undefined, 'not-an-ip', '10.0.0.5, unknown']) {
        const client = await connect(relay(), header)
        await assertRestricted(client, await reqAnswer(client))
        assert.equal(await eventAnswer(client), 'OK')
      }
    })
  })

  describe('trusted_proxies = 2', () => {
    const relay = relayFor({ ...lists, 'network.trusted_proxies': 2 })

    it('the second entry from the right is the client IP', async () => {
      for (const header of ['6.6.6.6, 10.0.0.5, 10.0.0.9', '10.0.0.5, 6.6.6.6']) {
        const client = await connect(relay(), header)
        assert.equal(await reqAnswer(client), 'EOSE', header)
        assert.equal(await eventAnswer(client), 'OK', header)
      }
    })

    it('the right-most entry (the last proxy) is not the client IP', async () => {
      const client = await connect(relay(), '6.6.6.6, 10.0.0.5')
      await assertRestricted(client, await reqAnswer(client))
      await assertRestricted(client, await eventAnswer(client))
    })

    it('with fewer entries than proxies, the TCP peer (127.0.0.1) is used', async () => {
      for (const header of ['10.0.0.5', '6.6.6.6']) {
        const client = await connect(relay(), header)
        await assertRestricted(client, await reqAnswer(client))
        assert.equal(await eventAnswer(client), 'OK', header)
      }
    })
  })

  describe('trusted_proxies = 0', () => {
    const relay = relayFor({ ...lists, 'network.trusted_proxies': 0 })

    it('the header is ignored entirely: the TCP peer (127.0.0.1) is the client IP', async () => {
      for (const header of ['10.0.0.5', '6.6.6.6', '6.6.6.6, 10.0.0.5', '10.0.0.5, 6.6.6.6']) {
        const client = await connect(relay(), header)
        await assertRestricted(client, await reqAnswer(client))
        assert.equal(await eventAnswer(client), 'OK', header)
      }
    })
  })
})
