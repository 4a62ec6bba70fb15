// NIP-01 publishing end to end: OK semantics, malformed events, replaceable/addressable/ephemeral kinds.
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { ids, newSigner, now, sign, signTied, startTestRelay, tampered, TestClient, type NostrEvent, type TestRelay } from './harness.js'

let relay: TestRelay
let client: TestClient

before(async () => {
  relay = await startTestRelay()
  client = await TestClient.connect(relay.url)
})

after(async () => {
  await client?.close()
  await relay?.close()
})

/** Asserts `["OK", id, false, "invalid: ..."]`. */
const assertInvalidOk = (ok: unknown[], id: string) => {
  assert.equal(ok[0], 'OK')
  assert.equal(ok[1], id)
  assert.equal(ok[2], false)
  assert.match(String(ok[3]), /^invalid: /)
}

/** Sends an EVENT whose id cannot be read and expects a NOTICE "invalid: …", then checks the connection still works. */
const expectNoticeInvalid = async (event: unknown) => {
  client.send(['EVENT', event])
  const notice = await client.next(m => m[0] === 'NOTICE')
  assert.match(String(notice[1]), /^invalid: /)
  assert.equal(notice.length, 2)
}

describe('publishing a valid event', () => {
  it('answers OK true "" and serves the stored event to a later REQ', async () => {
    const event = sign(newSigner(), { content: 'hello', tags: [['t', 'greeting']] })
    assert.deepEqual(await client.publish(event), ['OK', event.id, true, ''])
    assert.deepEqual(await client.query({ ids: [event.id] }), [event])
  })

  it('answers a duplicate with OK true "duplicate: …" and stores it once', async () => {
    const event = sign(newSigner(), { content: 'twice' })
    await client.publishOk(event)
    const ok = await client.publish(event)
    assert.equal(ok[2], true)
    assert.match(ok[3], /^duplicate: /)
    assert.deepEqual(await client.query({ authors: [event.pubkey] }), [event])
  })

  it('answers a duplicate sent in the same burst as the original with one "" and one "duplicate:"', async () => {
    const event = sign(newSigner(), { content: 'burst' })
    client.send(['EVENT', event])
    client.send(['EVENT', event])
    const first = await client.next(m => m[0] === 'OK' && m[1] === event.id)
    const second = await client.next(m => m[0] === 'OK' && m[1] === event.id)
    assert.deepEqual(first, ['OK', event.id, true, ''])
    assert.equal(second[2], true)
    assert.match(String(second[3]), /^duplicate: /)
  })

  it('stores content with unicode, escapes and control characters byte-for-byte', async () => {
    const event = sign(newSigner(), { content: 'é 😀 "quoted" \\ \n\t\u0001 </script>', tags: [['t', 'ünï'], ['x', '']] })
    await client.publishOk(event)
    assert.deepEqual(await client.query({ ids: [event.id] }), [event])
  })
})

describe('publishing a malformed event', () => {
  const signer = newSigner()

  it('refuses a bad signature with OK false "invalid: …"', async () => {
    const event = sign(signer, { content: 'a' })
    const other = sign(signer, { content: 'b' })
    const forged = tampered(event, { sig: other.sig })
    assertInvalidOk(await client.publish(forged), event.id)
    assert.deepEqual(await client.query({ ids: [event.id] }), [])
  })

  it('refuses a signature by another key', async () => {
    const event = sign(signer, { content: 'stolen' })
    const impostor = tampered(event, { pubkey: newSigner().pubkey })
    assertInvalidOk(await client.publish(impostor), event.id)
  })

  it('refuses an id that does not match the content (tampered content)', async () => {
    const event = sign(signer, { content: 'original' })
    assertInvalidOk(await client.publish(tampered(event, { content: 'changed' })), event.id)
    assert.deepEqual(await client.query({ ids: [event.id] }), [])
  })

  it('refuses tampered tags and created_at', async () => {
    const event = sign(signer, { tags: [['t', 'a']] })
    assertInvalidOk(await client.publish(tampered(event, { tags: [['t', 'b']] })), event.id)
    assertInvalidOk(await client.publish(tampered(event, { created_at: event.created_at + 1 })), event.id)
  })

  it('refuses wrong field types with the id', async () => {
    const event = sign(signer)
    for (const patch of [
      { kind: '1' },
      { kind: 1.5 },
      { created_at: String(event.created_at) },
      { created_at: -1 },
      { content: 42 },
      { content: null },
      { tags: 'none' },
      { tags: [['t', 1]] },
      { tags: ['t'] },
      { pubkey: 42 },
      { sig: 'zz' },
    ]) {
      assertInvalidOk(await client.publish(tampered(event, patch)), event.id)
    }
  })

  it('refuses missing fields with the id', async () => {
    const event = sign(signer)
    for (const field of ['pubkey', 'created_at', 'kind', 'tags', 'content', 'sig']) {
      const partial: Record<string, unknown> = { ...event }
      delete partial[field]
      assertInvalidOk(await client.publish(partial), event.id)
    }
  })

  it('refuses an unknown extra field with the id', async () => {
    const event = sign(signer)
    assertInvalidOk(await client.publish(tampered(event, { extra: 1 })), event.id)
  })

  it('refuses uppercase hex in pubkey or sig with the id', async () => {
    const event = sign(signer)
    assertInvalidOk(await client.publish(tampered(event, { pubkey: event.pubkey.toUpperCase() })), event.id)
    assertInvalidOk(await client.publish(tampered(event, { sig: event.sig.toUpperCase() })), event.id)
  })

  it('refuses a kind out of range with the id', async () => {
    for (const kind of [65536, 70000, -1]) {
      // Signed as given so that only the range is wrong, not the id or signature.
      const raw = sign(signer, { kind: 1 })
      const event = tampered(raw, { kind })
      assertInvalidOk(await client.publish(event), raw.id)
    }
  })

  it('answers NOTICE "invalid: …" when the id cannot be read', async () => {
    const event = sign(signer)
    await expectNoticeInvalid(tampered(event, { id: 'not-hex' }))
    await expectNoticeInvalid(tampered(event, { id: event.id.slice(0, 63) }))
    await expectNoticeInvalid(tampered(event, { id: 7 }))
    await expectNoticeInvalid('an event')
    await expectNoticeInvalid(null)
    await expectNoticeInvalid([event])
    const { id: _id, ...withoutId } = event
    await expectNoticeInvalid(withoutId)
  })

  it('refuses an uppercase-hex id with OK false "invalid: …", echoing the id as sent', async () => {
    const event = sign(signer)
    const upper = event.id.toUpperCase()
    client.send(['EVENT', tampered(event, { id: upper })])
    const answer = await client.next(m => m[0] === 'NOTICE' || (m[0] === 'OK' && m[1] === upper))
    assert.equal(answer[0], 'OK')
    assert.equal(answer[2], false)
    assert.match(String(answer[3]), /^invalid: /)
    assert.deepEqual(await client.query({ ids: [event.id] }), [])
  })

  it('never stores a refused event', async () => {
    const event = sign(signer, { content: 'kept out' })
    await client.publish(tampered(event, { content: 'kept in' }))
    assert.deepEqual(await client.query({ ids: [event.id] }), [])
    await client.publishOk(event)
    assert.deepEqual(await client.query({ ids: [event.id] }), [event])
  })
})

describe('replaceable events (0, 3, 10000-19999)', () => {
  for (const kind of [0, 3, 10002]) {
    it(`kind ${kind}: a newer version replaces the older one`, async () => {
      const signer = newSigner()
      const t = now() - 100
      const v1 = sign(signer, { kind, created_at: t, content: 'v1' })
      const v2 = sign(signer, { kind, created_at: t + 10, content: 'v2' })
      await client.publishOk(v1)
      await client.publishOk(v2)
      assert.deepEqual(await client.query({ authors: [signer.pubkey], kinds: [kind] }), [v2])
      assert.deepEqual(await client.query({ ids: [v1.id] }), [])
    })

    it(`kind ${kind}: an older version arriving later is OK false and never stored`, async () => {
      const signer = newSigner()
      const t = now() - 100
      const newer = sign(signer, { kind, created_at: t + 10, content: 'newer' })
      const older = sign(signer, { kind, created_at: t, content: 'older' })
      await client.publishOk(newer)
      const ok = await client.publish(older)
      assert.equal(ok[2], false)
      assert.match(ok[3], /^[a-z-]+: /)
      assert.deepEqual(await client.query({ authors: [signer.pubkey], kinds: [kind] }), [newer])
      assert.deepEqual(await client.query({ ids: [older.id] }), [])
    })
  }

  it('same created_at: the lowest id wins, whichever arrives first', async () => {
    for (const lowFirst of [true, false]) {
      const signer = newSigner()
      const [low, high] = signTied(signer, 2, { kind: 0, created_at: now() - 50 }) as [NostrEvent, NostrEvent]
      if (lowFirst) {
        await client.publishOk(low)
        assert.equal((await client.publish(high))[2], false)
      } else {
        await client.publishOk(high)
        await client.publishOk(low)
      }
      assert.deepEqual(await client.query({ authors: [signer.pubkey], kinds: [0] }), [low], `low id first: ${lowFirst}`)
      assert.deepEqual(await client.query({ ids: [high.id] }), [])
    }
  })

  it('different authors and kinds are independent', async () => {
    const a = newSigner()
    const b = newSigner()
    const events = [sign(a, { kind: 0 }), sign(a, { kind: 3 }), sign(b, { kind: 0 }), sign(a, { kind: 10002 })]
    for (const e of events) await client.publishOk(e)
    const stored = await client.query({ authors: [a.pubkey, b.pubkey] })
    assert.deepEqual(new Set(ids(stored)), new Set(ids(events)))
  })

  it('a live subscriber receives each accepted version but not the refused older one', async () => {
    const signer = newSigner()
    const sub = await TestClient.connect(relay.url)
    try {
      assert.deepEqual(await sub.req('live', { authors: [signer.pubkey], kinds: [0] }), [])
      const t = now() - 100
      const v2 = sign(signer, { kind: 0, created_at: t + 2, content: 'v2' })
      const v1 = sign(signer, { kind: 0, created_at: t + 1, content: 'v1' })
      await client.publishOk(v2)
      assert.equal((await client.publish(v1))[2], false)
      assert.deepEqual(await sub.nextEvent('live'), v2)
      await sub.sync()
      assert.deepEqual(sub.takeAll(m => m[0] === 'EVENT'), [])
    } finally {
      await sub.close()
    }
  })
})

describe('addressable events (30000-39999)', () => {
  it('one version per (kind, author, d): newer replaces, other d values are independent', async () => {
    const signer = newSigner()
    const t = now() - 100
    const a1 = sign(signer, { kind: 30023, created_at: t, tags: [['d', 'a']], content: 'a1' })
    const a2 = sign(signer, { kind: 30023, created_at: t + 1, tags: [['d', 'a']], content: 'a2' })
    const b1 = sign(signer, { kind: 30023, created_at: t, tags: [['d', 'b']], content: 'b1' })
    for (const e of [a1, b1, a2]) await client.publishOk(e)
    assert.deepEqual(ids(await client.query({ authors: [signer.pubkey], kinds: [30023] })), ids([a2, b1]))
  })

  it('finds the d tag wherever it stands among the tags', async () => {
    const signer = newSigner()
    const t = now() - 100
    const v1 = sign(signer, { kind: 30023, created_at: t, tags: [['t', 'x'], ['title', 'T'], ['d', 'slug']], content: 'v1' })
    const v2 = sign(signer, { kind: 30023, created_at: t + 1, tags: [['d', 'slug'], ['t', 'x']], content: 'v2' })
    const older = sign(signer, { kind: 30023, created_at: t - 1, tags: [['p', signer.pubkey], ['d', 'slug']], content: 'v0' })
    await client.publishOk(v1)
    await client.publishOk(v2)
    assert.equal((await client.publish(older))[2], false)
    assert.deepEqual(await client.query({ authors: [signer.pubkey], kinds: [30023], '#d': ['slug'] }), [v2])
  })

  it("a missing d tag counts as d = ''", async () => {
    const signer = newSigner()
    const t = now() - 100
    const none = sign(signer, { kind: 30023, created_at: t, content: 'no d' })
    const empty = sign(signer, { kind: 30023, created_at: t + 1, tags: [['d', '']], content: 'empty d' })
    const olderNone = sign(signer, { kind: 30023, created_at: t - 1, tags: [['t', 'x']], content: 'older, no d' })
    await client.publishOk(none)
    await client.publishOk(empty)
    assert.equal((await client.publish(olderNone))[2], false)
    assert.deepEqual(await client.query({ authors: [signer.pubkey], kinds: [30023] }), [empty])
  })

  it('older version arriving later is OK false; same created_at keeps the lowest id in both orders', async () => {
    for (const lowFirst of [true, false]) {
      const signer = newSigner()
      const [low, high] = signTied(signer, 2, { kind: 30023, created_at: now() - 50, tags: [['d', 'same']] }) as [NostrEvent, NostrEvent]
      const ok1 = await client.publish(lowFirst ? low : high)
      const ok2 = await client.publish(lowFirst ? high : low)
      assert.equal(ok1[2], true)
      assert.equal(ok2[2], !lowFirst)
      assert.deepEqual(await client.query({ kinds: [30023], authors: [signer.pubkey] }), [low])
    }
  })
})

describe('ephemeral events (20000-29999)', () => {
  it('are accepted, delivered live to a matching subscription and never returned by a later REQ', async () => {
    const signer = newSigner()
    const sub = await TestClient.connect(relay.url)
    try {
      assert.deepEqual(await sub.req('eph', { kinds: [20001], authors: [signer.pubkey] }), [])
      const event = sign(signer, { kind: 20001, content: 'now or never' })
      assert.deepEqual(await client.publish(event), ['OK', event.id, true, ''])
      assert.deepEqual(await sub.nextEvent('eph'), event)
      assert.deepEqual(await client.query({ ids: [event.id] }), [])
      assert.deepEqual(await client.query({ kinds: [20001], authors: [signer.pubkey] }), [])
    } finally {
      await sub.close()
    }
  })

  it('kind 22242 sent as EVENT is refused, not stored and not broadcast', async () => {
    const signer = newSigner()
    const sub = await TestClient.connect(relay.url)
    try {
      assert.deepEqual(await sub.req('auth', { kinds: [22242] }, { authors: [signer.pubkey] }), [])
      const event = sign(signer, { kind: 22242, tags: [['relay', relay.url], ['challenge', 'x']] })
      assertInvalidOk(await client.publish(event), event.id)
      assert.deepEqual(await client.query({ ids: [event.id] }), [])
      // A later event by the same author proves the subscription is live, and that nothing came before it.
      const marker = sign(signer, { content: 'marker' })
      await client.publishOk(marker)
      assert.deepEqual(await sub.nextEvent('auth'), marker)
      assert.deepEqual(sub.takeAll(m => m[0] === 'EVENT'), [])
    } finally {
      await sub.close()
    }
  })
})

describe('protected events (NIP-70)', () => {
  it('are refused with OK false "restricted:" when the relay offers no authentication', async () => {
    const event = sign(newSigner(), { tags: [['-']], content: 'protected' })
    const ok = await client.publish(event)
    assert.equal(ok[2], false)
    assert.match(ok[3], /^restricted: /)
    assert.deepEqual(await client.query({ ids: [event.id] }), [])
  })
})
