// The batched mailbox statements (one statement for the deposits or acks that arrive together), on a real PostgreSQL.
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import type { Pool } from 'pg'
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

describe('the mailbox tables', () => {
  /** This backend's updates of `table` so far, and how many were HOT (same page, no new index entries). */
  const updates = async (client: Pool, table: string): Promise<{ all: number; hot: number }> => {
    await client.query('SELECT pg_stat_force_next_flush()')
    await client.query('SELECT pg_stat_clear_snapshot()')
    const { rows } = await client.query<{ all: string; hot: string }>(
      'SELECT n_tup_upd AS all, n_tup_hot_upd AS hot FROM pg_stat_user_tables WHERE relname = $1',
      [table],
    )
    return { all: Number(rows[0]?.all), hot: Number(rows[0]?.hot) }
  }

  it('leave room on every page, so a pickup updates full-size items in place (HOT), where full pages allow none', async () => {
    const { rows } = await pg.pool.query<{ relname: string; reloptions: string[] }>(
      `SELECT relname, reloptions FROM pg_class WHERE relname IN ('mail_keypackages', 'mail_welcomes') ORDER BY relname`,
    )
    assert.deepEqual(rows.map(r => [r.relname, r.reloptions]), [['mail_keypackages', ['fillfactor=80']], ['mail_welcomes', ['fillfactor=80']]])
    // One connection, so that the statistics read are the ones this backend wrote.
    const client = pg.connect(1)
    try {
      const [alice, bob] = [newSigner().pubkey, newSigner().pubkey]
      // 1 KiB KeyPackages (1.4 KB rows): four to a page with room for one more version (11 of 40 HOT here;
      // with fillfactor 100, five to a page and none).
      await depositMany(client, KEYPACKAGES, Array.from({ length: 40 }, () => item(bob, alice, { content_b64: b64(1024) })))
      const before = await updates(client, 'mail_keypackages')
      assert.equal((await pickup(client, KEYPACKAGES, bob, 40, 0)).items.length, 40)
      const after = await updates(client, 'mail_keypackages')
      assert.equal(after.all - before.all, 40)
      assert.ok(after.hot - before.hot >= 8, `HOT updates: ${after.hot - before.hot} of 40`)
    } finally {
      await client.end()
    }
  })
})
