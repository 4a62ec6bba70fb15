// Private kinds (446, 1059, 444) by query and live, the kind-445 gate, NIP-70 protected events and the
// NIP-11 document of a relay with NIP-42, end to end.
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { AUTH_ON, ids, newSigner, sign, startTestRelay, TestClient, type NostrEvent, type Signer, type TestRelay } from './harness.js'

let relay: TestRelay
let onlyNoiseDms: TestRelay
const clients: TestClient[] = []

before(async () => {
  ;[relay, onlyNoiseDms] = await Promise.all([
    startTestRelay({ ...AUTH_ON, 'data.query_workers': 1 }),
    startTestRelay({ ...AUTH_ON, 'data.query_workers': 1, 'auth.private_kinds': [446] }),
  ])
})

after(async () => {
  await Promise.all(clients.map(c => c.close()))
  await Promise.all([relay?.close(), onlyNoiseDms?.close()])
})

/** A connection authenticated as each of `signers` (none: unauthenticated), its first challenge claimed. */
const connectAs = async (to: TestRelay, ...signers: Signer[]): Promise<TestClient> => {
  const client = await TestClient.connect(to.url)
  clients.push(client)
  await client.challenge()
  for (const signer of signers) await client.authOk(signer)
  return client
}

/** The REQ was refused with CLOSED "auth-required:" and the challenge followed. */
const assertReqAuthRequired = async (client: TestClient, ...filters: Record<string, unknown>[]): Promise<void> => {
  const subId = `refused-${Math.random().toString(36).slice(2)}`
  client.send(['REQ', subId, ...filters])
  const reply = await client.next(m => (m[0] === 'EOSE' || m[0] === 'CLOSED') && m[1] === subId)
  assert.equal(reply[0], 'CLOSED', `expected CLOSED, got ${JSON.stringify(reply)}`)
  assert.match(String(reply[2]), /^auth-required: /)
  await client.next(m => m[0] === 'AUTH')
}

/** The count a COUNT answers with (fails on CLOSED). */
const countOf = async (client: TestClient, ...filters: Record<string, unknown>[]): Promise<number> => {
  const reply = await client.count(`count-${Math.random().toString(36).slice(2)}`, ...filters)
  assert.equal(reply[0], 'COUNT', JSON.stringify(reply))
  return (reply[2] as { count: number }).count
}

/** The live EVENTs of `subId` received so far with this id (claimed). */
const received = (client: TestClient, subId: string, event: NostrEvent) =>
  client.takeAll(m => m[0] === 'EVENT' && m[1] === subId && (m[2] as NostrEvent).id === event.id)

for (const kind of [446, 1059, 444]) {
  describe(`kind ${kind} (private by default)`, () => {
    const [alice, bob, carol] = [newSigner(), newSigner(), newSigner()]
    let aliceConn: TestClient
    let bobConn: TestClient
    let carolConn: TestClient
    let anonymous: TestClient
    let dm: NostrEvent
    let note: NostrEvent

    before(async () => {
      ;[aliceConn, bobConn, carolConn, anonymous] = await Promise.all([
        connectAs(relay, alice),
        connectAs(relay, bob),
        connectAs(relay, carol),
        connectAs(relay),
      ])
      dm = sign(alice, { kind, tags: [['p', bob.pubkey]], content: `private ${kind} to bob` })
      note = sign(alice, { kind: 1, content: 'a public note' })
      await aliceConn.publishOk(dm)
      await aliceConn.publishOk(note)
    })

    it('is served to its p-tagged recipient, by kind, by #p and by id', async () => {
      assert.deepEqual(await bobConn.query({ kinds: [kind], authors: [alice.pubkey] }), [dm])
      assert.deepEqual(await bobConn.query({ '#p': [bob.pubkey] }), [dm])
      assert.deepEqual(await bobConn.query({ ids: [dm.id] }), [dm])
      assert.equal(await countOf(bobConn, { authors: [alice.pubkey] }), 2)
    })

    it('is served to its author', async () => {
      assert.deepEqual(await aliceConn.query({ kinds: [kind], authors: [alice.pubkey] }), [dm])
      assert.equal(await countOf(aliceConn, { kinds: [kind], authors: [alice.pubkey] }), 1)
    })

    it('is not served to another authenticated pubkey, whatever the filter, nor counted for it', async () => {
      assert.deepEqual(await carolConn.query({ kinds: [kind] }), [])
      assert.deepEqual(await carolConn.query({ kinds: [kind], authors: [alice.pubkey] }), [])
      assert.deepEqual(await carolConn.query({ authors: [alice.pubkey] }), [note])
      assert.deepEqual(await carolConn.query({ ids: [dm.id, note.id] }), [note])
      assert.deepEqual(await carolConn.query({ '#p': [bob.pubkey] }), [])
      assert.deepEqual(ids(await carolConn.query({ kinds: [1, kind], authors: [alice.pubkey] })), [note.id])
      assert.equal(await countOf(carolConn, { authors: [alice.pubkey] }), 1)
      assert.equal(await countOf(carolConn, { kinds: [kind], authors: [alice.pubkey] }), 0)
    })

    it('an unauthenticated REQ or COUNT naming the kind gets CLOSED "auth-required:" and the challenge', async () => {
      await assertReqAuthRequired(anonymous, { kinds: [kind] })
      await assertReqAuthRequired(anonymous, { kinds: [1] }, { kinds: [1, kind], authors: [alice.pubkey] })
      const reply = await anonymous.count('anon-count', { kinds: [kind] })
      assert.equal(reply[0], 'CLOSED')
      assert.match(String(reply[2]), /^auth-required: /)
      await anonymous.next(m => m[0] === 'AUTH')
    })

    it('an unauthenticated REQ or COUNT without a kinds filter silently leaves it out', async () => {
      assert.deepEqual(await anonymous.query({ authors: [alice.pubkey] }), [note])
      assert.deepEqual(await anonymous.query({ ids: [dm.id] }), [])
      assert.deepEqual(await anonymous.query({ '#p': [bob.pubkey] }), [])
      assert.equal(await countOf(anonymous, { authors: [alice.pubkey] }), 1)
    })

    it('live: delivered to the recipient and the author, not to another pubkey nor to an unauthenticated {} subscription', async () => {
      const dave = newSigner()
      const subs: Array<[TestClient, string, Record<string, unknown>[]]> = [
        [bobConn, 'live', [{ kinds: [kind], limit: 0 }]],
        [aliceConn, 'live', [{ authors: [alice.pubkey], limit: 0 }]],
        [carolConn, 'live', [{ kinds: [kind], limit: 0 }, { kinds: [1], authors: [alice.pubkey], limit: 0 }]],
        [carolConn, 'live-all', [{ limit: 0 }]],
        [anonymous, 'live', [{ limit: 0 }]],
        [anonymous, 'live-alice', [{ authors: [alice.pubkey], limit: 0 }]],
      ]
      for (const [client, subId, filters] of subs) await client.req(subId, ...filters)

      // To Dave and Bob (Bob second among the p tags); then a public sentinel: fan-out keeps order, so
      // once the sentinel has arrived anything that was going to be delivered before it has too.
      // (A gift wrap names exactly one recipient: single_recipient_kinds refuses a 1059 with two.)
      const recipients = kind === 1059 ? [['p', bob.pubkey]] : [['p', dave.pubkey], ['p', bob.pubkey]]
      const liveDm = sign(alice, { kind, tags: recipients, content: 'live' })
      const sentinel = sign(alice, { kind: 1, content: 'sentinel' })
      await aliceConn.publishOk(liveDm)
      await aliceConn.publishOk(sentinel)

      assert.equal((await bobConn.nextEvent('live')).id, liveDm.id)
      assert.equal((await aliceConn.nextEvent('live')).id, liveDm.id)
      assert.equal((await aliceConn.nextEvent('live')).id, sentinel.id)
      for (const [client, subId] of [
        [carolConn, 'live'],
        [carolConn, 'live-all'],
        [anonymous, 'live'],
        [anonymous, 'live-alice'],
      ] as const) {
        await client.next(m => m[0] === 'EVENT' && m[1] === subId && (m[2] as NostrEvent).id === sentinel.id)
        assert.deepEqual(received(client, subId, liveDm), [], `${subId} must not receive the ${kind}`)
      }
      for (const [client, subId] of subs) client.send(['CLOSE', subId])
    })
  })
}

describe('auth.private_kinds = [446]', () => {
  it('makes 1059 public (by query, COUNT and live) while 446 stays private', async () => {
    const [alice, bob, carol] = [newSigner(), newSigner(), newSigner()]
    const [aliceConn, carolConn, anonymous] = await Promise.all([
      connectAs(onlyNoiseDms, alice),
      connectAs(onlyNoiseDms, carol),
      connectAs(onlyNoiseDms),
    ])
    await anonymous.req('wraps', { kinds: [1059], limit: 0 })
    const wrap = sign(alice, { kind: 1059, tags: [['p', bob.pubkey]], content: 'gift wrap' })
    const dm = sign(alice, { kind: 446, tags: [['p', bob.pubkey]], content: 'noise dm' })
    await aliceConn.publishOk(wrap)
    await aliceConn.publishOk(dm)

    assert.equal((await anonymous.nextEvent('wraps')).id, wrap.id)
    assert.deepEqual(await anonymous.query({ kinds: [1059], authors: [alice.pubkey] }), [wrap])
    assert.deepEqual(await carolConn.query({ kinds: [1059], authors: [alice.pubkey] }), [wrap])
    assert.equal(await countOf(anonymous, { kinds: [1059], authors: [alice.pubkey] }), 1)

    await assertReqAuthRequired(anonymous, { kinds: [446] })
    assert.deepEqual(await carolConn.query({ authors: [alice.pubkey] }), [wrap])
    assert.deepEqual(await anonymous.query({ authors: [alice.pubkey] }), [wrap])
  })
})

describe('kind 445 (MLS group messages, signed by throwaway keys)', () => {
  it('is refused with OK false "auth-required:" (and the challenge) from an unauthenticated connection', async () => {
    const client = await connectAs(relay)
    const event = sign(newSigner(), { kind: 445, tags: [['h', 'group-id']], content: 'mls ciphertext' })
    const ok = await client.publish(event)
    assert.equal(ok[2], false)
    assert.match(ok[3], /^auth-required: /)
    await client.next(m => m[0] === 'AUTH')
    assert.deepEqual(await client.query({ ids: [event.id] }), [])
  })

  it('is accepted after AUTH even though a throwaway key signed it, and readable by anyone', async () => {
    const member = newSigner()
    const client = await connectAs(relay, member)
    const event = sign(newSigner(), { kind: 445, tags: [['h', 'group-id']], content: 'mls ciphertext' })
    assert.notEqual(event.pubkey, member.pubkey)
    assert.deepEqual(await client.publish(event), ['OK', event.id, true, ''])
    assert.deepEqual(await (await connectAs(relay)).query({ kinds: [445], ids: [event.id] }), [event])
  })
})

describe('NIP-70 protected events (["-"])', () => {
  const alice = newSigner()

  it('are refused with OK false "auth-required:" (and the challenge) from an unauthenticated connection', async () => {
    const client = await connectAs(relay)
    const event = sign(alice, { tags: [['-']], content: 'protected' })
    const ok = await client.publish(event)
    assert.equal(ok[2], false)
    assert.match(ok[3], /^auth-required: /)
    await client.next(m => m[0] === 'AUTH')
  })

  it('are refused with OK false "restricted:" from a connection authenticated as someone else', async () => {
    const client = await connectAs(relay, newSigner())
    const event = sign(alice, { tags: [['-']], content: 'protected' })
    const ok = await client.publish(event)
    assert.equal(ok[2], false)
    assert.match(ok[3], /^restricted: /)
    assert.deepEqual(await client.query({ ids: [event.id] }), [])
  })

  it('are accepted from a connection authenticated as their author (also among other pubkeys)', async () => {
    for (const client of [await connectAs(relay, alice), await connectAs(relay, newSigner(), alice)]) {
      const event = sign(alice, { tags: [['-']], content: `protected ${Math.random()}` })
      assert.deepEqual(await client.publish(event), ['OK', event.id, true, ''])
      assert.deepEqual(await client.query({ ids: [event.id] }), [event])
    }
  })
})

describe('NIP-11 with access control', () => {
  /** The NIP-11 document of a relay started with `overrides` (closed afterwards). */
  const documentOf = async (overrides: Record<string, unknown>) => {
    const started = await startTestRelay({ 'data.query_workers': 1, ...overrides })
    try {
      const res = await fetch(`http://127.0.0.1:${started.port}/`, { headers: { Accept: 'application/nostr+json' } })
      return (await res.json()) as { supported_nips: number[]; limitation: { auth_required: boolean; restricted_writes: boolean } }
    } finally {
      await started.close()
    }
  }

  it('advertises 42 and 70 with auth enabled; neither auth_required nor restricted_writes without lists', async () => {
    const doc = await documentOf({ ...AUTH_ON })
    assert.ok(doc.supported_nips.includes(42))
    assert.ok(doc.supported_nips.includes(70))
    assert.equal(doc.limitation.auth_required, false)
    assert.equal(doc.limitation.restricted_writes, false)
  })

  it('does not advertise 42 with auth disabled', async () => {
    const doc = await documentOf({})
    assert.ok(!doc.supported_nips.includes(42))
    assert.equal(doc.limitation.auth_required, false)
  })

  it('auth_required (and restricted_writes) with auth.required = true', async () => {
    const doc = await documentOf({ ...AUTH_ON, 'auth.required': true })
    assert.equal(doc.limitation.auth_required, true)
    assert.equal(doc.limitation.restricted_writes, true)
  })

  it('auth_required with an [auth.req] pubkey whitelist', async () => {
    const doc = await documentOf({ ...AUTH_ON, 'auth.req.pubkey_whitelist': [newSigner().pubkey] })
    assert.equal(doc.limitation.auth_required, true)
    assert.equal(doc.limitation.restricted_writes, false)
  })

  it('restricted_writes with an [auth.event] event_pubkey_whitelist or pubkey_whitelist', async () => {
    for (const key of ['auth.event.event_pubkey_whitelist', 'auth.event.pubkey_whitelist']) {
      const doc = await documentOf({ ...AUTH_ON, [key]: [newSigner().pubkey] })
      assert.equal(doc.limitation.restricted_writes, true, key)
      assert.equal(doc.limitation.auth_required, false, key)
    }
  })
})
