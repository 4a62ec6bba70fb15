// Health, readiness, the OpenAPI document, /metrics behind its key, and security headers.
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { documentedMetrics } from '@msr/telemetry'
import { after, before, describe, it } from 'node:test'
import postgres from 'pg'
import request from 'supertest'
import { migrate } from '../src/db/migrate.js'
import { b64, buildTestApp, expectError, expectStatus, freePort, newSigner, qs, startPostgres, type TestApp, type TestPostgres } from './harness.js'


const README = new URL('../../../../README.md', import.meta.url)
const METRICS_AUTH = 'metrics-key-for-tests-0123456789'


let pg: TestPostgres
let app: TestApp

before(async () => {
  pg = await startPostgres()
  app = await buildTestApp(pg.pool, { METRICS_AUTH })
})

after(async () => {
  await pg?.close()
})

describe('/healthz and /readyz', () => {
  it('/healthz answers 200', async () => {
    const res = await request(app.app).get('/healthz')
    expectStatus(res, 200)
    assert.match(res.text, /ok/)
  })

  it('/readyz answers 200 on a migrated database', async () => {
    expectStatus(await request(app.app).get('/readyz'), 200)
  })

  it('/readyz answers 503 on an unmigrated database, and 200 once it is migrated', async () => {
    const fresh = await pg.freshDatabase()
    const unmigrated = await buildTestApp(fresh.pool)
    expectStatus(await request(unmigrated.app).get('/readyz'), 503)
    expectStatus(await request(unmigrated.app).get('/healthz'), 200)
    await migrate(fresh.pool)
    expectStatus(await request(unmigrated.app).get('/readyz'), 200)
  })

  it('/api/v1 answers 503 UNAVAILABLE with Retry-After while the database cannot be reached, logged as a warning', async () => {
    const closed = new postgres.Pool({ connectionString: `postgres://postgres:x@127.0.0.1:${await freePort()}/mailbox` })
    closed.on('error', () => undefined)
    const orphan = await buildTestApp(closed, {}, { logLevel: 'warn' })
    try {
      const signer = newSigner()
      for (const res of [
        await orphan.api.get(`/keypackages${qs({ recipient: signer.pubkey })}`, signer),
        await orphan.api.post('/keypackages', newSigner(), { recipient: signer.pubkey, content_b64: b64(32) }),
      ]) {
        expectError(res, 503, 'UNAVAILABLE')
        assert.equal(res.headers['retry-after'], '2')
      }
      const records = orphan.logs.map(line => JSON.parse(line) as { message?: string; code?: string; severity?: string })
      assert.ok(records.some(r => r.message === 'database unreachable' && r.code === 'ECONNREFUSED'), orphan.logs.join('\n'))
      assert.ok(!records.some(r => r.severity === 'ERROR'), 'no error line per request during an outage')
    } finally {
      await closed.end()
    }
  })

  it('/readyz answers 503 when the database is unreachable', async () => {
    const gone = pg.connect()
    await gone.end()
    const orphan = await buildTestApp(gone)
    expectStatus(await request(orphan.app).get('/readyz'), 503)
    expectStatus(await request(orphan.app).get('/healthz'), 200)
  })
})

describe('/api/v1/openapi.json', () => {
  const ROUTES: Record<string, string[]> = {
    '/keypackages': ['get', 'post'],
    '/keypackages/{id}/ack': ['post'],
    '/welcome': ['get', 'post'],
    '/welcome/{id}/ack': ['post'],
    '/groups': ['get', 'post'],
    '/groups/{id}': ['get'],
    '/dm-hints': ['get'],
    '/openapi.json': ['get'],
  }
  /** Routes outside /api/v1, documented with a server URL of their own. */
  const OUTSIDE: Record<string, string[]> = { '/internal/pubsub/push': ['post'], '/healthz': ['get'], '/readyz': ['get'], '/metrics': ['get'] }
  /** Routes that need no credentials (/metrics hides itself as a 404 without its key). */
  const OPEN = new Set(['/openapi.json', '/healthz', '/readyz', '/metrics'])
  const ALL = { ...ROUTES, ...OUTSIDE }
  const methodsOf = (item: object | undefined) => Object.keys(item ?? {}).filter(k => k !== 'servers').sort()

  it('is valid JSON describing every route with its methods', async () => {
    const res = await request(app.app).get('/api/v1/openapi.json')
    expectStatus(res, 200)
    assert.match(res.headers['content-type'] ?? '', /^application\/json/)
    const doc = JSON.parse(res.text) as { openapi: string; info: { title: string }; servers: { url: string }[]; paths: Record<string, Record<string, { responses: object }>> }
    assert.match(doc.openapi, /^3\./)
    assert.ok(doc.info.title)
    assert.equal(doc.servers[0]?.url, 'https://mailbox.test/api/v1')
    assert.deepEqual(Object.keys(doc.paths).sort(), Object.keys(ALL).sort())
    for (const path of Object.keys(OUTSIDE)) assert.deepEqual((doc.paths[path] as unknown as { servers: { url: string }[] }).servers, [{ url: 'https://mailbox.test' }], path)
    for (const [path, methods] of Object.entries(ALL)) {
      assert.deepEqual(methodsOf(doc.paths[path]), methods, path)
      for (const method of methods) assert.ok(Object.keys(doc.paths[path]?.[method]?.responses ?? {}).length > 0, `${method} ${path} has responses`)
    }
  })

  it('describes routes that exist: each answers something other than 404 NOT_FOUND', async () => {
    for (const [path, methods] of Object.entries(ALL).filter(([path]) => !OPEN.has(path)))
      for (const method of methods) {
        const concrete = (path in OUTSIDE ? path : `/api/v1${path}`).replace('{id}', '00000000-0000-4000-8000-000000000000')
        const res = await (method === 'get' ? request(app.app).get(concrete) : request(app.app).post(concrete))
        assert.notEqual(res.status, 404, `${method} ${path}`)
        assert.ok([401].includes(res.status), `${method} ${path} without credentials: ${res.status}`)
      }
    expectError(await request(app.app).get('/api/v1/nothing-here'), 404, 'NOT_FOUND')
  })

  it('documents the request schemas generated from the validators', async () => {
    const doc = (await request(app.app).get('/api/v1/openapi.json')).body
    const schema = doc.paths['/keypackages'].post.requestBody.content['application/json'].schema
    assert.deepEqual([...schema.required].sort(), ['content_b64', 'recipient'])
    assert.equal(schema.additionalProperties, false, 'unknown fields are refused, and documented so')
    const params = doc.paths['/keypackages'].get.parameters.map((p: { name: string }) => p.name).sort()
    assert.deepEqual(params, ['cursor', 'limit', 'recipient'])
  })
})

describe('/metrics', () => {
  it('is a 404 without the key, with a wrong key, and when no key is configured', async () => {
    expectError(await request(app.app).get('/metrics'), 404, 'NOT_FOUND')
    expectError(await request(app.app).get('/metrics').set('Authorization', 'Bearer wrong-key-of-good-length'), 404, 'NOT_FOUND')
    expectError(await request(app.app).get(`/metrics${qs({ auth: 'wrong' })}`), 404, 'NOT_FOUND')
    const closed = await buildTestApp(pg.pool)
    expectError(await request(closed.app).get('/metrics'), 404, 'NOT_FOUND')
    expectError(await request(closed.app).get('/metrics').set('Authorization', 'Bearer undefined'), 404, 'NOT_FOUND')
  })

  it('lists deposits, pickups, acks, expiries, auth failures by reason, rate-limit hits and request latency', async () => {
    const app = await buildTestApp(pg.pool, { METRICS_AUTH, MAILBOX_RATE_LIMIT_PER_PUBKEY: '4', MAILBOX_RATE_LIMIT_PER_IP: '0' })
    const [alice, bob, carol] = [newSigner(), newSigner(), newSigner()]
    const deposited = await app.api.post('/keypackages', alice, { recipient: bob.pubkey, content_b64: b64(32) })
    expectStatus(deposited, 201)
    expectStatus(await app.api.post('/welcome', alice, { recipient: bob.pubkey, group_id: 'g', welcome_b64: b64(32) }), 201)
    expectStatus(await app.api.get(`/keypackages${qs({ recipient: bob.pubkey })}`, bob), 200)
    expectStatus(await app.api.post(`/keypackages/${deposited.body.id}/ack`, bob), 200)
    expectError(await app.api.get(`/keypackages${qs({ recipient: bob.pubkey })}`, undefined), 401, 'AUTH_REQUIRED')
    expectError(await app.api.get(`/keypackages${qs({ recipient: bob.pubkey })}`, bob, { method: 'POST' }), 401, 'AUTH_METHOD_MISMATCH')
    for (let i = 0; i < 4; i++) expectStatus(await app.api.get(`/keypackages${qs({ recipient: carol.pubkey })}`, carol), 200)
    expectError(await app.api.get(`/keypackages${qs({ recipient: carol.pubkey })}`, carol), 429, 'RATE_LIMITED')
    for (const res of [await request(app.app).get('/metrics').set('Authorization', `Bearer ${METRICS_AUTH}`), await request(app.app).get(`/metrics${qs({ auth: METRICS_AUTH })}`)]) {
      expectStatus(res, 200)
      assert.match(res.headers['content-type'] ?? '', /^text\/plain/)
      const text = res.text
      for (const line of [
        /^msr_mailbox_deposits_total\{kind="keypackage"\} 1$/m,
        /^msr_mailbox_deposits_total\{kind="welcome"\} 1$/m,
        /^msr_mailbox_pickups_total\{kind="keypackage"\} 1$/m,
        /^msr_mailbox_acks_total\{kind="keypackage"\} 1$/m,
        /^# TYPE msr_mailbox_expiries_total counter$/m,
        /^msr_mailbox_auth_failures_total\{reason="missing"\} 1$/m,
        /^msr_mailbox_auth_failures_total\{reason="method"\} 1$/m,
        /^msr_mailbox_rate_limited_total\{scope="pubkey"\} 1$/m,
        /^# TYPE msr_mailbox_request_seconds histogram$/m,
        // The +Inf bucket: which finite bucket a request falls in depends on the machine's load.
        /^msr_mailbox_request_seconds_bucket\{le="\+Inf",method="POST",route="\/api\/v1\/keypackages\/",status="201"\} 1$/m,
        /^msr_mailbox_request_seconds_count\{method="GET",route="\/api\/v1\/keypackages\/",status="200"\} \d+$/m,
      ])
        assert.match(text, line)
      assert.doesNotMatch(text, new RegExp(bob.pubkey), 'no pubkeys in labels')
    }
  })
})

describe('/metrics and README', () => {
  it('serves every metric README lists for the mailbox, with the labels it names, and no other', async () => {
    const [alice, bob] = [newSigner(), newSigner()]
    const deposited = await app.api.post('/keypackages', alice, { recipient: bob.pubkey, content_b64: b64(32) })
    expectStatus(deposited, 201)
    expectStatus(await app.api.get(`/keypackages${qs({ recipient: bob.pubkey })}`, bob), 200)
    expectStatus(await app.api.post(`/keypackages/${deposited.body.id}/ack`, bob), 200)
    expectError(await app.api.get(`/keypackages${qs({ recipient: bob.pubkey })}`, undefined), 401, 'AUTH_REQUIRED')
    const res = await request(app.app).get('/metrics').set('Authorization', `Bearer ${METRICS_AUTH}`)
    expectStatus(res, 200)
    const listed = documentedMetrics(readFileSync(README, 'utf8'), 'mailbox-metrics')
    assert.ok(listed.size >= 10, 'README lists the mailbox metrics between its markers')
    for (const [name, { type }] of listed) assert.match(res.text, new RegExp(`^# TYPE ${name} ${type}$`, 'm'), `README lists ${name} (${type})`)
    const served = [...res.text.matchAll(/^# TYPE (msr_mailbox_\w+) /gm)].map(([, name]) => name as string)
    assert.deepEqual(served.filter(name => !listed.has(name)), [], 'metrics served but missing from README')
    const lines = res.text.split('\n').filter(l => l.startsWith('msr_mailbox_'))
    assert.ok(lines.some(l => l.startsWith('msr_mailbox_request_seconds_bucket{')), 'labelled samples are checked too')
    for (const line of lines) {
      const [, series = '', labels = ''] = /^(\w+?)(?:\{(.*)\})? /.exec(line) ?? []
      const named = [...labels.matchAll(/(\w+)="/g)].map(([, label]) => label).filter(label => label !== 'le')
      const base = listed.has(series) ? series : series.replace(/_(bucket|sum|count)$/, '')
      assert.deepEqual(named.sort(), listed.get(base)?.labels, `labels of ${line}`)
    }
  })
})

describe('security headers', () => {
  it('are set on every answer (helmet), without X-Powered-By', async () => {
    for (const res of [
      await request(app.app).get('/healthz'),
      await request(app.app).get('/api/v1/openapi.json'),
      await app.api.get(`/keypackages${qs({ recipient: newSigner().pubkey })}`, undefined),
      await request(app.app).get('/nowhere'),
    ]) {
      assert.equal(res.headers['x-content-type-options'], 'nosniff')
      assert.match(res.headers['content-security-policy'] ?? '', /default-src 'self'/)
      assert.match(res.headers['strict-transport-security'] ?? '', /max-age=\d+/)
      assert.equal(res.headers['x-frame-options'], 'SAMEORIGIN')
      assert.equal(res.headers['referrer-policy'], 'no-referrer')
      assert.equal(res.headers['x-powered-by'], undefined)
    }
  })
})
