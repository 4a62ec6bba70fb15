// The NIP-98 gate statement: batched replay guard and budget counters, against a real PostgreSQL.
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { after, before, describe, it } from 'node:test'
import type { Pool } from 'pg'
import { createGate, type GateLimits, type GateOutcome, type GateRequest } from '../src/auth/gate.js'
import { migrate } from '../src/db/migrate.js'
import { buildTestApp, expectStatus, freshIp as freshAddress, newSigner, now, qs, startPostgres, type TestPostgres } from './harness.js'

let pg: TestPostgres

before(async () => {
  pg = await startPostgres()
})

after(async () => {
  await pg?.close()
})

const hex = (bytes: number) => randomBytes(bytes).toString('hex')
const freshIp = () => freshAddress(19)
const ON: GateLimits = { perIp: 1_000_000, perPubkey: 1_000_000 }

const gateRequest = (over: Partial<GateRequest> = {}): GateRequest => ({ sig: hex(64), ip: freshIp(), pubkey: hex(32), validUntil: now() + 65, ...over })

/** A gate on `pool` that records the size of every statement it sends. */
const recordingGate = (pool: Pool, limits: GateLimits = ON, concurrency = 1) => {
  const batches: number[] = []
  const gate = createGate(pool, limits, { concurrency, onBatch: size => batches.push(size) })
  return { gate, batches }
}

const points = async (pool: Pool, key: string): Promise<number | undefined> =>
  (await pool.query<{ points: number }>('SELECT points FROM rate_limits WHERE key = $1', [key])).rows[0]?.points

const sorted = (values: Array<number | undefined>) => [...values].sort((a, b) => (a ?? 0) - (b ?? 0))
const range = (n: number) => Array.from({ length: n }, (_, i) => i + 1)

describe('NIP-98 gate', () => {
  it('batches concurrent requests, and counts each as the n-th of its key exactly as one-by-one increments would', async () => {
    const { gate, batches } = recordingGate(pg.pool)
    const ip = freshIp()
    const keys = [hex(32), hex(32), hex(32)]
    const outcomes = await Promise.all(range(60).map(i => gate(gateRequest({ ip, pubkey: keys[i % 3] as string }))))
    assert.ok(outcomes.every(o => o.fresh))
    assert.equal(batches.reduce((a, b) => a + b, 0), 60)
    assert.ok(batches.length < 60 && batches.length >= 2, `statements: ${batches.join(', ')}`)
    assert.deepEqual(sorted(outcomes.map(o => o.ip?.points)), range(60))
    for (const [k, key] of keys.entries()) {
      assert.deepEqual(sorted(outcomes.filter((_, i) => (i + 1) % 3 === k).map(o => o.pubkey?.points)), range(20))
      assert.equal(await points(pg.pool, `pk:${key}`), 20)
    }
    assert.equal(await points(pg.pool, `ip:${ip}`), 60)
    const expire = outcomes[0]?.ip?.expire ?? 0
    assert.ok(expire > Date.now() && expire <= Date.now() + 60_000, `window ends at ${expire}`)
  })

  it('sends one statement at a time unless told otherwise: requests arriving meanwhile share the next', async () => {
    const batches: number[] = []
    const gate = createGate(pg.pool, ON, { onBatch: size => batches.push(size) })
    const outcomes = await Promise.all(range(40).map(() => gate(gateRequest())))
    assert.ok(outcomes.every(o => o.fresh))
    assert.deepEqual(batches, [1, 39])
  })

  it('keeps counting from the stored total, and restarts a window that has passed', async () => {
    const { gate } = recordingGate(pg.pool)
    const [counting, expired] = [freshIp(), freshIp()]
    await pg.pool.query('INSERT INTO rate_limits (key, points, expire) VALUES ($1, 40, $3), ($2, 999, $4)', [
      `ip:${counting}`, `ip:${expired}`, Date.now() + 30_000, Date.now() - 1,
    ])
    const a = await Promise.all(range(3).map(() => gate(gateRequest({ ip: counting }))))
    const b = await Promise.all(range(3).map(() => gate(gateRequest({ ip: expired }))))
    assert.deepEqual(sorted(a.map(o => o.ip?.points)), [41, 42, 43])
    assert.deepEqual(sorted(b.map(o => o.ip?.points)), [1, 2, 3])
    assert.ok((b[0]?.ip?.expire ?? 0) > Date.now() + 50_000)
  })

  it('a signature used twice is fresh once, in one batch, across batches and across instances', async () => {
    const { gate } = recordingGate(pg.pool)
    const other = createGate(pg.connect(), ON)
    const sigs = range(20).map(() => hex(64))
    const all = await Promise.all(sigs.flatMap(sig => [gate(gateRequest({ sig })), gate(gateRequest({ sig })), other(gateRequest({ sig }))]))
    for (const [i, sig] of sigs.entries()) {
      const fresh = all.slice(i * 3, i * 3 + 3).filter(o => o.fresh).length
      assert.equal(fresh, 1, `signature ${sig.slice(0, 8)} fresh ${fresh} times`)
    }
    assert.equal((await gate(gateRequest({ sig: sigs[0] as string }))).fresh, false)
  })

  it('two instances counting the same keys in opposite orders at once neither deadlock nor lose a count', async () => {
    const a = createGate(pg.connect(4), ON, { concurrency: 3, maxBatch: 8 })
    const b = createGate(pg.connect(4), ON, { concurrency: 3, maxBatch: 8 })
    const ips = range(6).map(() => freshIp())
    const keys = range(6).map(() => hex(32))
    const requests: Array<{ ip: string; outcome: Promise<GateOutcome> }> = []
    for (let round = 0; round < 40; round++) {
      for (let i = 0; i < 6; i++) {
        const [ipA, ipB] = [ips[i] as string, ips[5 - i] as string]
        requests.push({ ip: ipA, outcome: a(gateRequest({ ip: ipA, pubkey: keys[5 - i] as string })) })
        requests.push({ ip: ipB, outcome: b(gateRequest({ ip: ipB, pubkey: keys[i] as string })) })
      }
    }
    const outcomes = await Promise.all(requests.map(r => r.outcome))
    assert.ok(outcomes.every(o => o.fresh))
    for (const ip of ips) {
      assert.equal(await points(pg.pool, `ip:${ip}`), 80)
      // Each of the 80 requests of an address, whichever instance took it, saw a different count.
      assert.deepEqual(sorted(outcomes.filter((_, n) => requests[n]?.ip === ip).map(o => o.ip?.points)), range(80))
    }
    for (const key of keys) assert.equal(await points(pg.pool, `pk:${key}`), 80)
  })

  it('with both budgets off records only the signature', async () => {
    const { gate } = recordingGate(pg.pool, { perIp: 0, perPubkey: 0 })
    const request = gateRequest()
    const outcome = await gate(request)
    assert.deepEqual(outcome, { fresh: true })
    assert.equal(await points(pg.pool, `ip:${request.ip}`), undefined)
    assert.equal(await points(pg.pool, `pk:${request.pubkey}`), undefined)
    assert.equal((await pg.pool.query('SELECT 1 FROM nip98_replay WHERE sig = $1', [request.sig])).rowCount, 1)
  })

  it('a value PostgreSQL refuses fails only its own request, not the batch it was sent in', async () => {
    const { gate, batches } = recordingGate(pg.pool)
    const good = range(10).map(() => gateRequest())
    const bad = gateRequest({ validUntil: 1e15 }) // to_timestamp: out of range
    const results = await Promise.allSettled([...good.slice(0, 5), bad, ...good.slice(5)].map(r => gate(r)))
    assert.ok(batches.some(size => size > 1), `statements: ${batches.join(', ')}`)
    assert.equal(results[5]?.status, 'rejected')
    assert.match(String((results[5] as PromiseRejectedResult).reason), /out of range/)
    const fulfilled = results.filter((r, i) => i !== 5 && r.status === 'fulfilled' && r.value.fresh)
    assert.equal(fulfilled.length, 10)
    assert.equal((await gate(gateRequest())).fresh, true)
  })

  it('a statement that fails for another reason fails its whole batch, and the gate carries on once it can', async () => {
    const empty = await pg.freshDatabase() // no tables yet
    const { gate, batches } = recordingGate(empty.pool)
    const results = await Promise.allSettled(range(6).map(() => gate(gateRequest())))
    assert.ok(batches.length < 6, `statements: ${batches.join(', ')}`)
    for (const result of results) {
      assert.equal(result.status, 'rejected')
      assert.match(String(result.reason), /nip98_replay/)
    }
    await migrate(empty.pool)
    assert.deepEqual((await Promise.all(range(3).map(() => gate(gateRequest())))).map(o => o.fresh), [true, true, true])
  })
})

describe('NIP-98 gate behind the API', () => {
  it('counts a client address too long for the budget table by its hash, instead of failing the request', async () => {
    const app = await buildTestApp(pg.pool, { TRUSTED_PROXIES: '1', MAILBOX_RATE_LIMIT_PER_IP: '5', MAILBOX_RATE_LIMIT_PER_PUBKEY: '0' })
    const signer = newSigner()
    const ip = `x${'0'.repeat(300)}`
    const res = await app.api.get(`/keypackages${qs({ recipient: signer.pubkey })}`, signer).set('X-Forwarded-For', ip)
    expectStatus(res, 200)
    const { rows } = await pg.pool.query<{ key: string; points: number }>("SELECT key, points FROM rate_limits WHERE key LIKE 'ip:sha256:%'")
    assert.equal(rows.length, 1)
    assert.equal(rows[0]?.points, 1)
  })
})
