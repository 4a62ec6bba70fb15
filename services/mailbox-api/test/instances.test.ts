// Several instances on one database: shared mailboxes, concurrent janitors, and migrations started together.
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import type { Pool } from 'pg'
import { createLogger } from '@msr/telemetry'
import { LATEST_VERSION, migrate, schemaVersion } from '../src/db/migrate.js'
import { MIGRATIONS } from '../src/db/migrations.js'
import { applyGroupHint, getGroup } from '../src/domain/groups.js'
import { purgeExpired, type Purged } from '../src/domain/janitor.js'
import { startMailbox, type RunningMailbox } from '../src/main.js'
import { b64, buildTestApp, expectError, expectStatus, newSigner, qs, sleep, startPostgres, testConfig, type TestPostgres } from './harness.js'

let pg: TestPostgres

before(async () => {
  pg = await startPostgres()
})

after(async () => {
  await pg?.close()
})

const count = async (pool: Pool, table: string, where = 'true'): Promise<number> =>
  Number((await pool.query(`SELECT count(*) AS n FROM ${table} WHERE ${where}`)).rows[0].n)

/** Expired and live rows in every table the janitor sweeps; answers how many expired rows each holds. */
const seedExpired = async (pool: Pool, n: number): Promise<Record<keyof Purged, number>> => {
  const past = "now() - interval '1 minute'"
  const future = "now() + interval '1 hour'"
  for (const [expires, tag] of [[past, 'old'], [future, 'live']] as const) {
    await pool.query(`INSERT INTO mail_keypackages (id, recipient_pubkey, sender_pubkey, content_b64, expires_at)
      SELECT '${tag}-kp-' || i || '-' || gen_random_uuid(), 'r', 's', 'AAAA', ${expires} FROM generate_series(1, $1) AS i`, [tag === 'old' ? n : 10])
    await pool.query(`INSERT INTO mail_welcomes (id, recipient_pubkey, sender_pubkey, group_id, welcome_b64, expires_at)
      SELECT '${tag}-w-' || i || '-' || gen_random_uuid(), 'r', 's', 'g', 'AAAA', ${expires} FROM generate_series(1, $1) AS i`, [tag === 'old' ? n : 10])
    await pool.query(`INSERT INTO dm_hints (event_id, recipient_pubkey, sender_pubkey, event_created_at, expires_at)
      SELECT '${tag}-dm-' || i || '-' || gen_random_uuid(), 'r', 's', 0, ${expires} FROM generate_series(1, $1) AS i`, [tag === 'old' ? n : 10])
    await pool.query(`INSERT INTO nip98_replay (sig, expires_at)
      SELECT '${tag}-sig-' || i || '-' || gen_random_uuid(), ${expires} FROM generate_series(1, $1) AS i`, [tag === 'old' ? n : 10])
    const expire = `(extract(epoch FROM ${expires}) * 1000)::bigint`
    await pool.query(`INSERT INTO rate_limits (key, points, expire)
      SELECT '${tag}-rl-' || i || '-' || gen_random_uuid(), 1, ${expire} FROM generate_series(1, $1) AS i`, [tag === 'old' ? n : 10])
    // Seen hint ids have no expiry of their own: they are purged 30 days after they were seen.
    const seen = tag === 'old' ? "now() - interval '31 days'" : 'now()'
    await pool.query(`INSERT INTO hints_seen (event_id, seen_at)
      SELECT '${tag}-hs-' || i || '-' || gen_random_uuid(), ${seen} FROM generate_series(1, $1) AS i`, [tag === 'old' ? n : 10])
  }
  return { keypackage: n, welcome: n, dm_hint: n, nip98: n, rate_limit: n, hint_seen: n }
}

/** Each table the janitor sweeps, and the column the seeded rows are named in. */
const TABLES: Record<keyof Purged, { table: string; key: string }> = {
  keypackage: { table: 'mail_keypackages', key: 'id' },
  welcome: { table: 'mail_welcomes', key: 'id' },
  dm_hint: { table: 'dm_hints', key: 'event_id' },
  nip98: { table: 'nip98_replay', key: 'sig' },
  rate_limit: { table: 'rate_limits', key: 'key' },
  hint_seen: { table: 'hints_seen', key: 'event_id' },
}

describe('two instances on one database', () => {
  it('a deposit through one is picked up and acknowledged through the other', async () => {
    const a = await buildTestApp(pg.pool)
    const b = await buildTestApp(pg.connect())
    const [alice, bob] = [newSigner(), newSigner()]
    const body = { recipient: bob.pubkey, content_b64: b64(100) }
    const deposited = await a.api.post('/keypackages', alice, body)
    expectStatus(deposited, 201)
    const picked = await b.api.get(`/keypackages${qs({ recipient: bob.pubkey })}`, bob)
    expectStatus(picked, 200)
    assert.deepEqual(picked.body.items.map((i: { id: string }) => i.id), [deposited.body.id])
    assert.equal(picked.body.items[0].content_b64, body.content_b64)
    expectStatus(await a.api.post(`/keypackages/${deposited.body.id}/ack`, bob), 200)
    expectError(await b.api.post(`/keypackages/${deposited.body.id}/ack`, bob), 404, 'MAILBOX_NOT_FOUND')
  })

  it('janitors sweeping at the same time purge each expired row once, keep live rows, and none fails', async () => {
    const seeded = await seedExpired(pg.pool, 12_000)
    const other = pg.connect()
    const sweeps = await Promise.all([purgeExpired(pg.pool), purgeExpired(other), purgeExpired(pg.pool), purgeExpired(other)])
    for (const [kind, n] of Object.entries(seeded) as [keyof Purged, number][]) {
      const total = sweeps.reduce((sum, s) => sum + s[kind], 0)
      assert.equal(total, n, `${kind}: purged ${sweeps.map(s => s[kind]).join(' + ')}`)
      const { table, key } = TABLES[kind]
      assert.equal(await count(pg.pool, table, `${key} LIKE 'old-%'`), 0, `${table}: expired rows left`)
      assert.equal(await count(pg.pool, table, `${key} LIKE 'live-%'`), 10, `${table}: live rows purged`)
    }
    const idle = await purgeExpired(other)
    assert.deepEqual(Object.values(idle), [0, 0, 0, 0, 0, 0], 'nothing left to purge')
  })

  it('running services sweep on their interval and count each expiry once between them', async () => {
    const logger = createLogger({ service: 'mailbox-test', level: 'fatal' })
    const config = testConfig({ PORT: '0', MAILBOX_JANITOR_INTERVAL: '100ms' })
    const running: RunningMailbox[] = []
    try {
      for (const pool of [pg.connect(), pg.connect()])
        running.push(await startMailbox(config, { logger, defaultMetrics: false, database: { pool, gatePool: pool, describe: 'test database', close: async () => undefined } }))
      const seeded = await seedExpired(pg.pool, 500)
      const deadline = Date.now() + 15_000
      while ((await count(pg.pool, 'mail_keypackages', "id LIKE 'old-%'")) + (await count(pg.pool, 'mail_welcomes', "id LIKE 'old-%'")) > 0) {
        assert.ok(Date.now() < deadline, 'the janitors purged the expired rows within 15 s')
        await sleep(100)
      }
      await sleep(300)
      const counted = async (kind: string) => {
        let total = 0
        for (const r of running) total += (await r.metrics.expiries.get()).values.filter(v => v.labels.kind === kind).reduce((s, v) => s + v.value, 0)
        return total
      }
      assert.equal(await counted('keypackage'), seeded.keypackage)
      assert.equal(await counted('welcome'), seeded.welcome)
    } finally {
      await Promise.all(running.map(r => r.close()))
    }
  })
})

describe('migrations', () => {
  it('from an empty database: creates schema_migrations at LATEST_VERSION; a second run applies nothing', async () => {
    const fresh = await pg.freshDatabase()
    assert.equal(await schemaVersion(fresh.pool), 0)
    const first = await migrate(fresh.pool)
    assert.deepEqual(first, { applied: MIGRATIONS.map(m => m.version), version: LATEST_VERSION })
    const rows = await fresh.pool.query('SELECT version, name FROM schema_migrations ORDER BY version')
    assert.deepEqual(rows.rows, MIGRATIONS.map(m => ({ version: m.version, name: m.name })))
    for (const table of Object.values(TABLES).map(t => t.table).concat('groups')) assert.equal(await count(fresh.pool, table), 0, table)
    assert.equal(await schemaVersion(fresh.pool), LATEST_VERSION)
    assert.deepEqual(await migrate(fresh.pool), { applied: [], version: LATEST_VERSION })
    assert.equal(await count(fresh.pool, 'schema_migrations'), MIGRATIONS.length)
  })

  it('several instances migrating one database at once all succeed, each migration applied exactly once', async () => {
    const fresh = await pg.freshDatabase()
    const pools = Array.from({ length: 6 }, () => fresh.connect(2))
    const outcomes = await Promise.all(pools.map(pool => migrate(pool)))
    for (const outcome of outcomes) assert.equal(outcome.version, LATEST_VERSION)
    assert.deepEqual(outcomes.flatMap(o => o.applied).sort((x, y) => x - y), MIGRATIONS.map(m => m.version))
    assert.equal(await count(fresh.pool, 'schema_migrations'), MIGRATIONS.length)
  })

  it('3 (group message count) upgrades a database at schema 2: existing groups keep their values and count from 0', async () => {
    const fresh = await pg.freshDatabase()
    assert.deepEqual(await migrate(fresh.pool, MIGRATIONS.filter(m => m.version <= 2)), { applied: [1, 2], version: 2 })
    await fresh.pool.query(`INSERT INTO groups (group_id, display_name, last_epoch, last_event_ts) VALUES ('g-old', 'Old', 5, 1700000000), ('g-bare', NULL, NULL, NULL)`)
    assert.deepEqual(await migrate(fresh.pool), { applied: MIGRATIONS.map(m => m.version).filter(v => v > 2), version: LATEST_VERSION })
    const { rows } = await fresh.pool.query('SELECT group_id, display_name, last_epoch, last_event_ts, message_count FROM groups ORDER BY group_id')
    assert.deepEqual(rows, [
      { group_id: 'g-bare', display_name: null, last_epoch: null, last_event_ts: null, message_count: 0 },
      { group_id: 'g-old', display_name: 'Old', last_epoch: 5, last_event_ts: 1_700_000_000, message_count: 0 },
    ])
    await applyGroupHint(fresh.pool, { groupId: 'g-old', eventTs: 1_700_000_100 })
    assert.deepEqual(await getGroup(fresh.pool, 'g-old').then(g => [g?.last_epoch, g?.last_event_ts, g?.message_count]), [5, 1_700_000_100, 1])
    await assert.rejects(fresh.pool.query("INSERT INTO groups (group_id, message_count) VALUES ('g-null', NULL)"), /null value/)
  })

  it('applies only a migration added later, and a failing one leaves nothing behind and blocks nobody', async () => {
    const fresh = await pg.freshDatabase()
    await migrate(fresh.pool)
    const next = { version: LATEST_VERSION + 1, name: 'test: extra table', sql: 'CREATE TABLE test_extra (x INTEGER)' }
    assert.deepEqual(await migrate(fresh.pool, [...MIGRATIONS, next]), { applied: [next.version], version: next.version })
    const broken = { version: LATEST_VERSION + 2, name: 'test: broken', sql: 'CREATE TABLE test_half (x INTEGER); SELECT 1 / 0' }
    await assert.rejects(migrate(fresh.pool, [...MIGRATIONS, next, broken]), /division by zero/)
    assert.equal((await fresh.pool.query("SELECT to_regclass('test_half') AS t")).rows[0].t, null, 'rolled back')
    assert.equal(await schemaVersion(fresh.pool), next.version)
    const other = fresh.connect(1)
    let timer: NodeJS.Timeout | undefined
    const blocked = new Promise<'blocked'>(resolve => (timer = setTimeout(() => resolve('blocked'), 5000)))
    const done = await Promise.race([migrate(other, [...MIGRATIONS, next]), blocked]).finally(() => clearTimeout(timer))
    assert.deepEqual(done, { applied: [], version: next.version }, 'the advisory lock was released')
  })
})
