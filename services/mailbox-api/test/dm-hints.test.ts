// DM hints: the ids of kind-446 events waiting on the relay, readable only by their recipient.
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { after, before, describe, it } from 'node:test'
import { recordDmHint } from '../src/domain/dm-hints.js'
import { purgeExpired } from '../src/domain/janitor.js'
import { buildTestApp, expectError, expectStatus, newSigner, now, qs, sleep, startPostgres, type Signer, type TestApp, type TestPostgres } from './harness.js'

let pg: TestPostgres
let app: TestApp

before(async () => {
  pg = await startPostgres()
  app = await buildTestApp(pg.pool)
})

after(async () => {
  await pg?.close()
})

type Hint = { event_id: string; sender: string; created_at: number; received_at: number }

const eventId = () => randomBytes(32).toString('hex')

const record = async (sender: Signer, recipients: Signer[], opts: { id?: string; createdAt?: number; ttlSeconds?: number } = {}) => {
  const id = opts.id ?? eventId()
  await recordDmHint(pg.pool, { eventId: id, sender: sender.pubkey, createdAt: opts.createdAt ?? now(), recipients: recipients.map(r => r.pubkey), ttlSeconds: opts.ttlSeconds ?? 3600 })
  return id
}

const hints = async (recipient: Signer, params: Record<string, string | number | undefined> = {}, as: string = recipient.pubkey): Promise<Hint[]> => {
  const res = await app.api.get(`/dm-hints${qs({ recipient: as, ...params })}`, recipient)
  expectStatus(res, 200)
  assert.equal(res.body.ok, true)
  return res.body.items as Hint[]
}

describe('GET /dm-hints', () => {
  it('answers the recipient its hints, oldest first, with sender and times', async () => {
    const [alice, bob, carol] = [newSigner(), newSigner(), newSigner()]
    const first = await record(alice, [bob, carol], { createdAt: 1_700_000_000 })
    const second = await record(carol, [bob])
    const bobs = await hints(bob)
    assert.deepEqual(bobs.map(h => h.event_id), [first, second])
    assert.deepEqual(bobs.map(h => h.sender), [alice.pubkey, carol.pubkey])
    assert.equal(bobs[0]?.created_at, 1_700_000_000)
    for (const h of bobs) assert.ok(Math.abs(h.received_at - now()) < 30)
    assert.deepEqual((await hints(carol)).map(h => h.event_id), [first])
    assert.deepEqual(await hints(alice), [])
  })

  it('lets only the recipient read (403 FORBIDDEN), naming it as hex or npub', async () => {
    const [alice, bob] = [newSigner(), newSigner()]
    await record(alice, [bob])
    for (const recipient of [bob.pubkey, bob.npub]) expectError(await app.api.get(`/dm-hints${qs({ recipient })}`, alice), 403, 'FORBIDDEN')
    assert.equal((await hints(bob, {}, bob.npub)).length, 1)
    assert.equal((await hints(bob, {}, bob.pubkey.toUpperCase())).length, 1)
  })

  it('pages with next_cursor through hints received in the same second, each once', async () => {
    const [alice, bob] = [newSigner(), newSigner()]
    const ids: string[] = []
    for (let i = 0; i < 7; i++) ids.push(await record(alice, [bob]))
    const seen: string[] = []
    let cursor: string | undefined
    do {
      const res = await app.api.get(`/dm-hints${qs({ recipient: bob.pubkey, limit: 3, cursor })}`, bob)
      expectStatus(res, 200)
      seen.push(...(res.body.items as Hint[]).map(h => h.event_id))
      cursor = res.body.next_cursor as string | undefined
    } while (cursor)
    assert.deepEqual(seen, ids)
    expectError(await app.api.get(`/dm-hints${qs({ recipient: bob.pubkey, cursor: 'not-ours' })}`, bob), 400, 'VALIDATION_FAILED')
  })

  it('requires NIP-98 (401 AUTH_REQUIRED)', async () => {
    expectError(await app.api.get(`/dm-hints${qs({ recipient: newSigner().pubkey })}`, undefined), 401, 'AUTH_REQUIRED')
  })

  it('answers only hints received at or after since', async () => {
    const [alice, bob] = [newSigner(), newSigner()]
    const old = await record(alice, [bob])
    await pg.pool.query("UPDATE dm_hints SET received_at = now() - interval '1 hour' WHERE event_id = $1", [old])
    const fresh = await record(alice, [bob])
    assert.deepEqual((await hints(bob, { since: 0 })).map(h => h.event_id), [old, fresh])
    assert.deepEqual((await hints(bob, { since: now() - 600 })).map(h => h.event_id), [fresh])
    assert.deepEqual(await hints(bob, { since: now() + 600 }), [])
  })

  it('reports received_at so that since = received_at always includes the hint (late in a second too)', async () => {
    const [alice, bob] = [newSigner(), newSigner()]
    const second = now() - 100
    const ids = [await record(alice, [bob]), await record(alice, [bob])]
    await pg.pool.query('UPDATE dm_hints SET received_at = to_timestamp($2) WHERE event_id = $1', [ids[0], second + 0.2])
    await pg.pool.query('UPDATE dm_hints SET received_at = to_timestamp($2) WHERE event_id = $1', [ids[1], second + 0.9])
    const all = await hints(bob)
    assert.deepEqual(all.map(h => h.received_at), [second, second], 'whole seconds, never rounded up')
    for (const h of all) assert.ok((await hints(bob, { since: h.received_at })).some(x => x.event_id === h.event_id), 'since is inclusive')
  })

  it('answers at most limit hints, the oldest', async () => {
    const [alice, bob] = [newSigner(), newSigner()]
    const ids: string[] = []
    for (let i = 0; i < 5; i++) ids.push(await record(alice, [bob]))
    assert.deepEqual((await hints(bob, { limit: 2 })).map(h => h.event_id), ids.slice(0, 2))
    assert.deepEqual((await hints(bob, { limit: 500 })).map(h => h.event_id), ids)
  })

  it('hides expired hints at once, and the janitor purges them', async () => {
    const [alice, bob] = [newSigner(), newSigner()]
    const expiring = await record(alice, [bob], { ttlSeconds: 1 })
    const lasting = await record(alice, [bob])
    assert.deepEqual((await hints(bob)).map(h => h.event_id), [expiring, lasting])
    await sleep(1500)
    assert.deepEqual((await hints(bob)).map(h => h.event_id), [lasting])
    const count = async (id: string) => Number((await pg.pool.query('SELECT count(*) AS n FROM dm_hints WHERE event_id = $1', [id])).rows[0].n)
    assert.equal(await count(expiring), 1, 'stored until the janitor runs')
    const purged = await purgeExpired(pg.pool)
    assert.ok(purged.dm_hint >= 1)
    assert.equal(await count(expiring), 0)
    assert.equal(await count(lasting), 1)
  })

  it('validates its query', async () => {
    const bob = newSigner()
    for (const params of [
      {},
      { recipient: 'npub1bad' },
      { recipient: bob.pubkey, since: -1 },
      { recipient: bob.pubkey, since: 'yesterday' },
      { recipient: bob.pubkey, since: 1.5 },
      // Past the largest created_at (u32): a 400, never PostgreSQL's "timestamp out of range" as a 500.
      { recipient: bob.pubkey, since: 0xffffffff + 1 },
      { recipient: bob.pubkey, since: 10_000_000_000_000 },
      { recipient: bob.pubkey, since: Number.MAX_SAFE_INTEGER },
      { recipient: bob.pubkey, limit: 0 },
      { recipient: bob.pubkey, limit: 501 },
      { recipient: bob.pubkey, cursor: 'x' },
    ])
      expectError(await app.api.get(`/dm-hints${qs(params)}`, bob), 400, 'VALIDATION_FAILED')
    assert.deepEqual(await hints(bob, { since: 0xffffffff }), [], 'the largest since is answered')
  })
})

describe('recordDmHint', () => {
  it('is idempotent on (event id, recipient)', async () => {
    const [alice, bob, carol] = [newSigner(), newSigner(), newSigner()]
    const id = await record(alice, [bob])
    await record(alice, [bob], { id })
    await record(alice, [bob, carol], { id })
    await Promise.all(Array.from({ length: 10 }, () => record(alice, [bob, carol], { id })))
    assert.deepEqual((await hints(bob)).map(h => h.event_id), [id])
    assert.deepEqual((await hints(carol)).map(h => h.event_id), [id])
    const rows = await pg.pool.query('SELECT recipient_pubkey FROM dm_hints WHERE event_id = $1 ORDER BY recipient_pubkey', [id])
    assert.deepEqual(rows.rows.map(r => r.recipient_pubkey), [bob.pubkey, carol.pubkey].sort())
  })

  it('does nothing without recipients', async () => {
    const id = await record(newSigner(), [])
    assert.equal((await pg.pool.query('SELECT 1 FROM dm_hints WHERE event_id = $1', [id])).rowCount, 0)
  })
})
