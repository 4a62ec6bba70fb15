// CORS_ORIGINS on the whole app: which routes browsers may call, what a preflight costs, what helmet adds.
// The same in a real browser: browser.test.ts.
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import type { Express } from 'express'
import request from 'supertest'
import { b64, buildTestApp, expectError, expectStatus, freshIp, newSigner, startPostgres, type TestPostgres } from './harness.js'

const APP = 'https://app.example.com'
const ADMIN_TOKEN = 'admin-token-for-cors-tests-0123'

let pg: TestPostgres

before(async () => {
  pg = await startPostgres()
})

after(async () => {
  await pg?.close()
})


const corsHeaders = (headers: Record<string, string>): string[] => Object.keys(headers).filter(name => name.startsWith('access-control-'))

const preflight = (app: Express, method: string, path: string, origin: string) =>
  request(app).options(path).set('Origin', origin).set('Access-Control-Request-Method', method).set('Access-Control-Request-Headers', 'authorization,content-type')

describe('CORS_ORIGINS naming one origin', () => {
  it('lets that origin deposit and read, with helmet’s headers kept (CORP same-origin does not apply to CORS reads)', async () => {
    const app = await buildTestApp(pg.pool, { CORS_ORIGINS: APP })
    const [sender, recipient] = [newSigner(), newSigner()]
    const res = await app.api.post('/keypackages', sender, { recipient: recipient.pubkey, content_b64: b64(64) }).set('Origin', APP)
    expectStatus(res, 201)
    assert.equal(res.headers['access-control-allow-origin'], APP)
    assert.equal(res.headers['access-control-expose-headers'], 'Retry-After')
    assert.equal(res.headers['access-control-allow-credentials'], undefined)
    assert.equal(res.headers.vary, 'Origin')
    assert.equal(res.headers['cross-origin-resource-policy'], 'same-origin')
    assert.equal(res.headers['x-content-type-options'], 'nosniff')
  })

  it('answers its preflights with 204 before authentication: none is counted against the IP budget', async () => {
    const app = await buildTestApp(pg.pool, { CORS_ORIGINS: APP, TRUSTED_PROXIES: '1', MAILBOX_RATE_LIMIT_PER_IP: '2', MAILBOX_RATE_LIMIT_PER_PUBKEY: '0' })
    const ip = freshIp()
    for (const path of ['/api/v1/keypackages', '/api/v1/welcome', '/api/v1/keypackages/123/ack', '/api/v1/dm-hints', '/api/v1/groups/some-group']) {
      const res = await preflight(app.app, 'POST', path, APP).set('X-Forwarded-For', ip).expect(204)
      assert.equal(res.headers['access-control-allow-origin'], APP, path)
      assert.equal(res.headers['access-control-allow-methods'], 'GET, POST')
      assert.equal(res.headers['access-control-allow-headers'], 'Authorization, Content-Type')
      assert.equal(res.headers['access-control-max-age'], '7200')
    }
    const deposit = () => app.api.post('/keypackages', newSigner(), { recipient: newSigner().pubkey, content_b64: b64(16) }).set('Origin', APP).set('X-Forwarded-For', ip)
    expectStatus(await deposit(), 201)
    expectStatus(await deposit(), 201)
    const limited = await deposit()
    expectError(limited, 429, 'RATE_LIMITED')
    // A page reads the wait: the 429 carries the CORS headers and exposes Retry-After.
    assert.equal(limited.headers['access-control-allow-origin'], APP)
    assert.equal(limited.headers['access-control-expose-headers'], 'Retry-After')
    assert.ok(Number(limited.headers['retry-after']) >= 1)
  })

  it('gives another origin no CORS header on any answer', async () => {
    const app = await buildTestApp(pg.pool, { CORS_ORIGINS: APP })
    const other = 'https://other.example'
    const pre = await preflight(app.app, 'POST', '/api/v1/keypackages', other).expect(204)
    assert.deepEqual(corsHeaders(pre.headers), [])
    const res = await app.api.post('/keypackages', newSigner(), { recipient: newSigner().pubkey, content_b64: b64(16) }).set('Origin', other)
    expectStatus(res, 201)
    assert.deepEqual(corsHeaders(res.headers), [])
  })

  it('covers the rest of /api/v1: errors, unknown paths and the OpenAPI document', async () => {
    const app = await buildTestApp(pg.pool, { CORS_ORIGINS: APP })
    const unauthenticated = await request(app.app).get('/api/v1/keypackages').set('Origin', APP)
    expectError(unauthenticated, 401, 'AUTH_REQUIRED')
    assert.equal(unauthenticated.headers['access-control-allow-origin'], APP)
    const unknown = await request(app.app).get('/api/v1/nothing-here').set('Origin', APP)
    expectError(unknown, 404, 'NOT_FOUND')
    assert.equal(unknown.headers['access-control-allow-origin'], APP)
    const document = await request(app.app).get('/api/v1/openapi.json').set('Origin', APP).expect(200)
    assert.equal(document.headers['access-control-allow-origin'], APP)
  })
})

describe('routes no browser may call, even with CORS_ORIGINS=*', () => {
  const anyone = 'https://anyone.example'

  it('the admin routes (GET and POST /api/v1/groups, however express matches them)', async () => {
    const app = await buildTestApp(pg.pool, { CORS_ORIGINS: '*', ADMIN_TOKEN })
    for (const path of ['/api/v1/groups', '/api/v1/groups/', '/api/v1/GROUPS', '/api/v1/groups//', '/api/v1/groups///', '/api/v1//groups', '/api/v1//Groups//']) {
      const pre = await preflight(app.app, 'POST', path, anyone).expect(204)
      assert.deepEqual(corsHeaders(pre.headers), [], path)
      const list = await request(app.app).get(path).set('Origin', anyone).set('Authorization', `Bearer ${ADMIN_TOKEN}`)
      // Where express does not route the path to the admin list (404), it must still send no CORS header.
      if (list.status !== 404) expectStatus(list, 200)
      assert.deepEqual(corsHeaders(list.headers), [], path)
      const create = await request(app.app).post(path).set('Origin', anyone).set('Authorization', `Bearer ${ADMIN_TOKEN}`).send({ group_id: 'cors-probe' })
      assert.deepEqual(corsHeaders(create.headers), [], `POST ${path}`)
    }
    // A group's own entry is a user route: allowed.
    const entry = await preflight(app.app, 'GET', '/api/v1/groups/some-group', anyone).expect(204)
    assert.equal(entry.headers['access-control-allow-origin'], '*')
  })

  it('the hint push route, /healthz, /readyz and /metrics', async () => {
    const app = await buildTestApp(pg.pool, { CORS_ORIGINS: '*', HINTS_PUSH_TOKEN: 'push-token-of-good-length' })
    const push = await request(app.app).post('/internal/pubsub/push').set('Origin', anyone).set('Content-Type', 'application/json').send('{}')
    expectError(push, 401, 'PUSH_AUTH_REQUIRED')
    assert.deepEqual(corsHeaders(push.headers), [])
    for (const path of ['/healthz', '/readyz', '/metrics']) {
      const res = await request(app.app).get(path).set('Origin', anyone)
      assert.deepEqual(corsHeaders(res.headers), [], path)
    }
  })
})

describe('CORS_ORIGINS unset (the default)', () => {
  it('sends no CORS header, and a preflight reaches neither authentication nor a route', async () => {
    const app = await buildTestApp(pg.pool, {})
    const pre = await preflight(app.app, 'POST', '/api/v1/keypackages', APP).expect(204)
    assert.deepEqual(corsHeaders(pre.headers), [])
    const res = await app.api.post('/keypackages', newSigner(), { recipient: newSigner().pubkey, content_b64: b64(16) }).set('Origin', APP)
    expectStatus(res, 201)
    assert.deepEqual(corsHeaders(res.headers), [])
    assert.equal(res.headers.vary, undefined)
  })
})
