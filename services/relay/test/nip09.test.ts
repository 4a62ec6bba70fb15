// NIP-09 deletion requests end to end: by `e` and by `a`, own events only, tombstones, deletions of deletions.
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { ids, newSigner, now, sign, startTestRelay, TestClient, type NostrEvent, type Signer, type TestRelay } from './harness.js'

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

const deletion = (signer: Signer, tags: string[][], created_at = now()): NostrEvent => sign(signer, { kind: 5, tags, created_at, content: 'deleted' })

const assertRefused = (ok: unknown[], prefix?: string) => {
  assert.equal(ok[2], false, `expected OK false, got ${JSON.stringify(ok)}`)
  assert.match(String(ok[3]), prefix ? new RegExp(`^${prefix}: `) : /^[a-z-]+: /)
}

describe('deletion by e tag', () => {
  it('deletes the author’s own event; the deletion itself is stored', async () => {
    const alice = newSigner()
    const note = sign(alice, { content: 'oops' })
    const keep = sign(alice, { content: 'keep' })
    await client.publishOk(note)
    await client.publishOk(keep)
    const del = deletion(alice, [['e', note.id]])
    await client.publishOk(del)
    assert.deepEqual(await client.query({ ids: [note.id] }), [])
    assert.deepEqual(ids(await client.query({ authors: [alice.pubkey] })), ids([del, keep].sort((a, b) => b.created_at - a.created_at || (a.id < b.id ? -1 : 1))))
    assert.deepEqual(await client.query({ kinds: [5], authors: [alice.pubkey] }), [del])
  })

  it('refuses the deleted event when it is published again, with OK false "blocked:"', async () => {
    const alice = newSigner()
    const note = sign(alice, { content: 'gone for good' })
    await client.publishOk(note)
    await client.publishOk(deletion(alice, [['e', note.id]]))
    assertRefused(await client.publish(note), 'blocked')
    assert.deepEqual(await client.query({ ids: [note.id] }), [])
  })

  it('a stranger’s deletion naming an event its author deleted does not let that event back in', async () => {
    const alice = newSigner()
    const mallory = newSigner()
    const keyPackage = sign(alice, { kind: 443, content: 'key package' })
    await client.publishOk(keyPackage)
    await client.publishOk(deletion(alice, [['e', keyPackage.id]]))
    // The key package is gone, so nothing shows it was Alice's: Mallory's request is accepted, and changes nothing.
    await client.publishOk(deletion(mallory, [['e', keyPackage.id]]))
    assertRefused(await client.publish(keyPackage), 'blocked')
    assert.deepEqual(await client.query({ ids: [keyPackage.id] }), [])
  })

  it('deleting the newest version before it arrives still keeps the older version out', async () => {
    const alice = newSigner()
    const t = now() - 100
    const v1 = sign(alice, { kind: 30023, created_at: t, tags: [['d', 'post']], content: 'v1' })
    const v2 = sign(alice, { kind: 30023, created_at: t + 10, tags: [['d', 'post']], content: 'v2' })
    await client.publishOk(deletion(alice, [['e', v2.id]]))
    await client.publishOk(v1)
    // Refused as deleted, v2 still replaces v1: as if it had arrived before the deletion.
    assertRefused(await client.publish(v2), 'blocked')
    assert.deepEqual(await client.query({ kinds: [30023], authors: [alice.pubkey] }), [])
    assertRefused(await client.publish(v1), 'invalid')
  })

  it('refuses a deletion aimed only at someone else’s events, which stay', async () => {
    const alice = newSigner()
    const mallory = newSigner()
    const note = sign(alice, { content: 'mine' })
    await client.publishOk(note)
    const del = deletion(mallory, [['e', note.id]])
    assertRefused(await client.publish(del))
    assert.deepEqual(await client.query({ ids: [note.id] }), [note])
    assert.deepEqual(await client.query({ ids: [del.id] }), [])
  })

  it('a mixed deletion deletes the author’s own events only', async () => {
    const alice = newSigner()
    const bob = newSigner()
    const own = sign(alice, { content: 'alice' })
    const foreign = sign(bob, { content: 'bob' })
    await client.publishOk(own)
    await client.publishOk(foreign)
    const ok = await client.publish(deletion(alice, [['e', foreign.id], ['e', own.id]]))
    assert.equal(ok[2], true)
    assert.deepEqual(await client.query({ ids: [own.id] }), [])
    assert.deepEqual(await client.query({ ids: [foreign.id] }), [foreign])
    // Bob's event may still be re-published (it is a duplicate, not refused).
    assert.equal((await client.publish(foreign))[2], true)
  })

  it('deleting a deletion has no effect', async () => {
    const alice = newSigner()
    const note = sign(alice, { content: 'stays deleted' })
    await client.publishOk(note)
    const del = deletion(alice, [['e', note.id]])
    await client.publishOk(del)
    const undo = deletion(alice, [['e', del.id]])
    await client.publishOk(undo)
    assert.deepEqual(await client.query({ ids: [del.id] }), [del])
    assert.deepEqual(await client.query({ ids: [note.id] }), [])
    assertRefused(await client.publish(note), 'blocked')
  })

  it('a deletion arriving before a deletion it targets does not block that deletion', async () => {
    const alice = newSigner()
    const note = sign(alice, { content: 'to be deleted' })
    await client.publishOk(note)
    const del = deletion(alice, [['e', note.id]])
    await client.publishOk(deletion(alice, [['e', del.id]]))
    await client.publishOk(del)
    assert.deepEqual(await client.query({ ids: [del.id] }), [del])
    assert.deepEqual(await client.query({ ids: [note.id] }), [])
  })

  it('a deletion arriving before its target makes the target refused when it arrives from the same author', async () => {
    const alice = newSigner()
    const bob = newSigner()
    const later = sign(alice, { content: 'not yet published' })
    await client.publishOk(deletion(alice, [['e', later.id]]))
    assertRefused(await client.publish(later), 'blocked')
    assert.deepEqual(await client.query({ ids: [later.id] }), [])
    // A deletion by Alice of an id that turns out to be Bob's does not affect Bob.
    const bobs = sign(bob, { content: 'bob was first' })
    await client.publishOk(deletion(alice, [['e', bobs.id]]))
    await client.publishOk(bobs)
    assert.deepEqual(await client.query({ ids: [bobs.id] }), [bobs])
  })

  it('a live subscriber receives the deletion event; a later REQ no longer returns the target', async () => {
    const alice = newSigner()
    const sub = await TestClient.connect(relay.url)
    try {
      const note = sign(alice, { content: 'watched' })
      await client.publishOk(note)
      assert.deepEqual(await sub.req('w', { authors: [alice.pubkey] }), [note])
      const del = deletion(alice, [['e', note.id]])
      await client.publishOk(del)
      assert.deepEqual(await sub.nextEvent('w'), del)
      assert.deepEqual(await sub.req('w2', { authors: [alice.pubkey] }), [del])
    } finally {
      await sub.close()
    }
  })
})

describe('deletion by a tag', () => {
  it('deletes every version of an addressable event up to the deletion’s created_at', async () => {
    const alice = newSigner()
    const t = now() - 100
    const v1 = sign(alice, { kind: 30023, created_at: t, tags: [['d', 'post']], content: 'v1' })
    const other = sign(alice, { kind: 30023, created_at: t, tags: [['d', 'other']], content: 'other' })
    await client.publishOk(v1)
    await client.publishOk(other)
    await client.publishOk(deletion(alice, [['a', `30023:${alice.pubkey}:post`]], t + 10))
    assert.deepEqual(await client.query({ kinds: [30023], authors: [alice.pubkey] }), [other])
    // An older or equal version is refused; a newer one is accepted.
    const older = sign(alice, { kind: 30023, created_at: t + 5, tags: [['d', 'post']], content: 'v older' })
    const same = sign(alice, { kind: 30023, created_at: t + 10, tags: [['d', 'post']], content: 'v same second' })
    assertRefused(await client.publish(older), 'blocked')
    assertRefused(await client.publish(same), 'blocked')
    const newer = sign(alice, { kind: 30023, created_at: t + 20, tags: [['d', 'post']], content: 'v newer' })
    await client.publishOk(newer)
    assert.deepEqual(ids(await client.query({ kinds: [30023], authors: [alice.pubkey], '#d': ['post'] })), ids([newer]))
  })

  it('leaves a version newer than the deletion in place', async () => {
    const alice = newSigner()
    const t = now() - 100
    const current = sign(alice, { kind: 30023, created_at: t + 20, tags: [['d', 'kept']], content: 'newer than the deletion' })
    await client.publishOk(current)
    await client.publishOk(deletion(alice, [['a', `30023:${alice.pubkey}:kept`]], t + 10))
    assert.deepEqual(await client.query({ ids: [current.id] }), [current])
  })

  it('works for replaceable kinds (empty d)', async () => {
    const alice = newSigner()
    const t = now() - 100
    const profile = sign(alice, { kind: 0, created_at: t, content: '{"name":"alice"}' })
    await client.publishOk(profile)
    await client.publishOk(deletion(alice, [['a', `0:${alice.pubkey}:`]], t + 1))
    assert.deepEqual(await client.query({ kinds: [0], authors: [alice.pubkey] }), [])
    await client.publishOk(sign(alice, { kind: 0, created_at: t + 2, content: '{"name":"alice2"}' }))
  })

  it('refuses a deletion by address of someone else’s event', async () => {
    const alice = newSigner()
    const mallory = newSigner()
    const post = sign(alice, { kind: 30023, tags: [['d', 'x']], content: 'alice post' })
    await client.publishOk(post)
    assertRefused(await client.publish(deletion(mallory, [['a', `30023:${alice.pubkey}:x`]])))
    assert.deepEqual(await client.query({ ids: [post.id] }), [post])
  })

  it('an address deletion before any version exists refuses older versions that arrive later', async () => {
    const alice = newSigner()
    const t = now() - 100
    await client.publishOk(deletion(alice, [['a', `30023:${alice.pubkey}:future`]], t + 10))
    assertRefused(await client.publish(sign(alice, { kind: 30023, created_at: t, tags: [['d', 'future']] })), 'blocked')
    await client.publishOk(sign(alice, { kind: 30023, created_at: t + 11, tags: [['d', 'future']] }))
  })
})
