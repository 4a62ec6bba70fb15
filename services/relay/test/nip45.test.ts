// NIP-45 COUNT end to end: one number over all filters, distinct events; refused when disabled.
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { newSigner, now, sign, startTestRelay, TestClient, type NostrEvent, type TestRelay } from './harness.js'

describe('COUNT', () => {
  let relay: TestRelay
  let client: TestClient
  const alice = newSigner()
  const bob = newSigner()
  const topic = `count-${Date.now()}`
  let aliceNotes: NostrEvent[]
  let bobNotes: NostrEvent[]

  before(async () => {
    relay = await startTestRelay()
    client = await TestClient.connect(relay.url)
    aliceNotes = Array.from({ length: 5 }, (_, i) => sign(alice, { content: `a${i}`, tags: i < 2 ? [['t', topic]] : [] }))
    bobNotes = Array.from({ length: 3 }, (_, i) => sign(bob, { content: `b${i}`, tags: [['t', topic]] }))
    for (const e of [...aliceNotes, ...bobNotes]) await client.publishOk(e)
  })

  after(async () => {
    await client?.close()
    await relay?.close()
  })

  it('answers ["COUNT", sub, {"count": n}] for one filter', async () => {
    assert.deepEqual(await client.count('one', { authors: [alice.pubkey] }), ['COUNT', 'one', { count: 5 }])
    assert.deepEqual(await client.count('tag', { '#t': [topic] }), ['COUNT', 'tag', { count: 5 }])
    assert.deepEqual(await client.count('none', { authors: [newSigner().pubkey] }), ['COUNT', 'none', { count: 0 }])
  })

  it('counts distinct events over several filters (the union)', async () => {
    // Alice's 5 notes ∪ the 5 topic notes (2 of them Alice's) = 8 distinct events.
    assert.deepEqual(await client.count('union', { authors: [alice.pubkey] }, { '#t': [topic] }), ['COUNT', 'union', { count: 8 }])
    assert.deepEqual(
      await client.count('same', { authors: [bob.pubkey] }, { authors: [bob.pubkey] }, { ids: [bobNotes[0]?.id] }),
      ['COUNT', 'same', { count: 3 }],
    )
    assert.deepEqual(
      await client.count('disjoint', { authors: [alice.pubkey] }, { authors: [bob.pubkey] }),
      ['COUNT', 'disjoint', { count: 8 }],
    )
  })

  it('counts only current versions and no deleted events', async () => {
    const carol = newSigner()
    const t = now() - 100
    await client.publishOk(sign(carol, { kind: 0, created_at: t, content: 'v1' }))
    await client.publishOk(sign(carol, { kind: 0, created_at: t + 1, content: 'v2' }))
    const note = sign(carol, { content: 'to delete' })
    await client.publishOk(note)
    await client.publishOk(sign(carol, { kind: 5, tags: [['e', note.id]] }))
    assert.deepEqual(await client.count('carol', { authors: [carol.pubkey], kinds: [0, 1] }), ['COUNT', 'carol', { count: 1 }])
  })

  it('opens no subscription: nothing more arrives for that id', async () => {
    const dave = newSigner()
    assert.deepEqual(await client.count('no-sub', { authors: [dave.pubkey] }), ['COUNT', 'no-sub', { count: 0 }])
    await client.publishOk(sign(dave))
    await client.sync()
    assert.deepEqual(client.takeAll(m => m[1] === 'no-sub'), [])
  })

  it('refuses invalid filters with CLOSED "invalid:"', async () => {
    const answer = await client.count('bad', { kinds: 'x' })
    assert.equal(answer[0], 'CLOSED')
    assert.match(String(answer[2]), /^invalid: /)
  })
})

describe('COUNT disabled', () => {
  let relay: TestRelay
  let client: TestClient

  before(async () => {
    relay = await startTestRelay({ 'count.enabled': false })
    client = await TestClient.connect(relay.url)
  })

  after(async () => {
    await client?.close()
    await relay?.close()
  })

  it('answers CLOSED "blocked:" and keeps the connection working', async () => {
    const answer = await client.count('c', { kinds: [1] })
    assert.equal(answer[0], 'CLOSED')
    assert.equal(answer[1], 'c')
    assert.match(String(answer[2]), /^blocked: /)
    await client.publishOk(sign(newSigner()))
  })
})
