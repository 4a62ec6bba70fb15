// Rate limits per client IP and per NIP-98 pubkey, kept in PostgreSQL so every instance counts against one budget.
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import request from 'supertest'
import { buildTestApp, expectError, expectStatus, freshIp, newSigner, qs, startPostgres, type Signer, type TestApp, type TestPostgres } from './harness.js'

let pg: TestPostgres

before(async () => {
  pg = await startPostgres()
})

after(async () => {
  await pg?.close()
})


/** GET the signer's own KeyPackages from `ip` (through one trusted proxy). */
const pickup = (app: TestApp, signer: Signer | undefined, ip: string) => {
  const path = `/keypackages${qs({ recipient: (signer ?? newSigner()).pubkey })}`
  return app.api.get(path, signer).set('X-Forwarded-For', ip)
}

const expectLimited = (res: request.Response) => {
  expectError(res, 429, 'RATE_LIMITED')
  const retry = Number(res.headers['retry-after'])
  assert.ok(Number.isInteger(retry) && retry >= 1 && retry <= 60, `Retry-After: ${res.headers['retry-after']}`)
}

describe('MAILBOX_RATE_LIMIT_PER_IP', () => {
  it('answers 429 RATE_LIMITED with Retry-After past the budget, counting unauthenticated requests too', async () => {
    const app = await buildTestApp(pg.pool, { TRUSTED_PROXIES: '1', MAILBOX_RATE_LIMIT_PER_IP: '3', MAILBOX_RATE_LIMIT_PER_PUBKEY: '0' })
    const ip = freshIp()
    expectError(await pickup(app, undefined, ip), 401, 'AUTH_REQUIRED')
    expectStatus(await pickup(app, newSigner(), ip), 200)
    expectStatus(await pickup(app, newSigner(), ip), 200)
    expectLimited(await pickup(app, newSigner(), ip))
    expectLimited(await pickup(app, undefined, ip))
    expectStatus(await pickup(app, newSigner(), freshIp()), 200)
    expectStatus(await request(app.app).get('/healthz').set('X-Forwarded-For', ip), 200)
    const text = await app.metrics.metrics.render()
    assert.match(text, /msr_mailbox_rate_limited_total\{scope="ip"\} 2/)
  })

  it('is one budget for every instance on the database', async () => {
    const env = { TRUSTED_PROXIES: '1', MAILBOX_RATE_LIMIT_PER_IP: '4', MAILBOX_RATE_LIMIT_PER_PUBKEY: '0' }
    const a = await buildTestApp(pg.pool, env)
    const b = await buildTestApp(pg.connect(), env)
    const ip = freshIp()
    for (const app of [a, b, a, b]) expectStatus(await pickup(app, newSigner(), ip), 200)
    expectLimited(await pickup(a, newSigner(), ip))
    expectLimited(await pickup(b, newSigner(), ip))
  })

  it('holds under concurrent requests from two instances', async () => {
    const env = { TRUSTED_PROXIES: '1', MAILBOX_RATE_LIMIT_PER_IP: '10', MAILBOX_RATE_LIMIT_PER_PUBKEY: '0' }
    const a = await buildTestApp(pg.pool, env)
    const b = await buildTestApp(pg.connect(), env)
    const ip = freshIp()
    const answers = await Promise.all(Array.from({ length: 24 }, (_, i) => pickup(i % 2 ? a : b, newSigner(), ip)))
    assert.equal(answers.filter(r => r.status === 200).length, 10)
    for (const r of answers.filter(r => r.status !== 200)) expectLimited(r)
  })
})

describe('MAILBOX_RATE_LIMIT_PER_PUBKEY', () => {
  it('answers 429 RATE_LIMITED with Retry-After past the pubkey’s budget, whatever its address', async () => {
    const app = await buildTestApp(pg.pool, { TRUSTED_PROXIES: '1', MAILBOX_RATE_LIMIT_PER_IP: '0', MAILBOX_RATE_LIMIT_PER_PUBKEY: '3' })
    const [alice, bob] = [newSigner(), newSigner()]
    for (let i = 0; i < 3; i++) expectStatus(await pickup(app, alice, freshIp()), 200)
    expectLimited(await pickup(app, alice, freshIp()))
    expectLimited(await app.api.post('/keypackages', alice, { recipient: bob.pubkey, content_b64: 'AAAA' }).set('X-Forwarded-For', freshIp()))
    expectStatus(await pickup(app, bob, freshIp()), 200)
    assert.match(await app.metrics.metrics.render(), /msr_mailbox_rate_limited_total\{scope="pubkey"\} 2/)
  })

  it('is one budget for every instance on the database', async () => {
    const env = { TRUSTED_PROXIES: '1', MAILBOX_RATE_LIMIT_PER_IP: '0', MAILBOX_RATE_LIMIT_PER_PUBKEY: '2' }
    const a = await buildTestApp(pg.pool, env)
    const b = await buildTestApp(pg.connect(), env)
    const alice = newSigner()
    expectStatus(await pickup(a, alice, freshIp()), 200)
    expectStatus(await pickup(b, alice, freshIp()), 200)
    expectLimited(await pickup(a, alice, freshIp()))
    expectLimited(await pickup(b, alice, freshIp()))
  })

  it('does not count requests that failed authentication against the claimed pubkey', async () => {
    const app = await buildTestApp(pg.pool, { TRUSTED_PROXIES: '1', MAILBOX_RATE_LIMIT_PER_IP: '0', MAILBOX_RATE_LIMIT_PER_PUBKEY: '2' })
    const alice = newSigner()
    for (let i = 0; i < 5; i++) expectError(await pickup(app, alice, freshIp()).set('Authorization', 'Nostr e30='), 401, 'AUTH_INVALID')
    for (let i = 0; i < 5; i++) expectError(await app.api.get(`/keypackages${qs({ recipient: alice.pubkey })}`, alice, { created_at: 1 }), 401, 'AUTH_EXPIRED')
    expectStatus(await pickup(app, alice, freshIp()), 200)
    expectStatus(await pickup(app, alice, freshIp()), 200)
    expectLimited(await pickup(app, alice, freshIp()))
  })
})

describe('limits off', () => {
  it('0 disables both budgets', async () => {
    const app = await buildTestApp(pg.pool, { TRUSTED_PROXIES: '1', MAILBOX_RATE_LIMIT_PER_IP: '0', MAILBOX_RATE_LIMIT_PER_PUBKEY: '0' })
    const [alice, ip] = [newSigner(), freshIp()]
    for (let i = 0; i < 15; i++) expectStatus(await pickup(app, alice, ip), 200)
  })
})
