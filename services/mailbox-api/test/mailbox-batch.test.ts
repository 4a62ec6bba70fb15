// The batched mailbox statements (one statement for the deposits or acks that arrive together), on a real PostgreSQL.
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { ackMany, depositMany, pickup, KEYPACKAGES, WELCOMES } from '../src/domain/mailbox.js'
import { b64, newSigner, startPostgres, type TestPostgres } from './harness.js'

let pg: TestPostgres

before(async () => {
  pg = await startPostgres()
})

after(async () => {
  await pg?.close()
})

const item = (recipient: string, sender: string, fields: Record<string, unknown>) => ({ recipient, sender, ttlSeconds: 3600, fields })

describe('depositMany and ackMany', () => {
  it('stores every item of one statement with its own fields, in the order given', async () => {
    const [alice, bob] = [newSigner().pubkey, newSigner().pubkey]
    const tags = [['ciphersuite', '0x0001'], ['quote"and\\\\backslash', '{"json":"text"}']]
    const kps = [item(bob, alice, { content_b64: b64(10), tags }), item(bob, alice, { content_b64: b64(11) }), item(bob, alice, { content_b64: b64(12), tags: [] })]
    const ids = await depositMany(pg.pool, KEYPACKAGES, kps)
    const page = await pickup(pg.pool, KEYPACKAGES, bob, 10, 0)
    assert.deepEqual(page.items.map(i => i.id), ids, 'pickup order is the order of the batch')
    assert.deepEqual(page.items.map(i => [i.content_b64, i.tags]), kps.map(k => [k.fields.content_b64, k.fields.tags]))
    const welcomes = [item(bob, alice, { group_id: 'g1', welcome_b64: b64(5), ratchet_tree_b64: b64(6) }), item(bob, alice, { group_id: 'g2', welcome_b64: b64(7) })]
    await depositMany(pg.pool, WELCOMES, welcomes)
    const stored = await pickup(pg.pool, WELCOMES, bob, 10, 0)
    assert.deepEqual(stored.items.map(i => [i.group_id, i.welcome_b64, i.ratchet_tree_b64]), welcomes.map(w => [w.fields.group_id, w.fields.welcome_b64, w.fields.ratchet_tree_b64]))
  })

  it('acks each item once: named twice in one statement, only the first ack deletes it; someone else’s item is left', async () => {
    const [alice, bob, carol] = [newSigner().pubkey, newSigner().pubkey, newSigner().pubkey]
    const [a, b] = await depositMany(pg.pool, KEYPACKAGES, [item(bob, alice, { content_b64: b64(4) }), item(bob, alice, { content_b64: b64(4) })])
    const acks = [
      { recipient: bob, id: a as string },
      { recipient: carol, id: b as string },
      { recipient: bob, id: a as string },
      { recipient: bob, id: '00000000-0000-4000-8000-000000000000' },
    ]
    assert.deepEqual(await ackMany(pg.pool, KEYPACKAGES, acks), [true, false, false, false])
    assert.deepEqual((await pickup(pg.pool, KEYPACKAGES, bob, 10, 0)).items.map(i => i.id), [b])
    assert.deepEqual(await ackMany(pg.pool, KEYPACKAGES, [{ recipient: bob, id: b as string }]), [true])
  })
})
