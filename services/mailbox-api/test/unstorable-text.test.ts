// Strings PostgreSQL cannot store as sent (a NUL; a lone UTF-16 surrogate, which UTF-8 cannot encode) in
// every input that reaches SQL: a 400 VALIDATION_FAILED (a malformed hint: acknowledged), never a 500 or an error log.
import assert from 'node:assert/strict'
import { randomBytes, randomUUID } from 'node:crypto'
import { after, before, describe, it } from 'node:test'
import request from 'supertest'
import { encodePushEnvelope } from '@msr/hints'
import { b64, buildTestApp, expectError, expectStatus, newSigner, now, qs, startPostgres, type Signer, type TestApp, type TestPostgres } from './harness.js'

const ADMIN_TOKEN = 'admin-token-for-tests-0123456789'
const PUSH_TOKEN = 'push-token-of-good-length'

let pg: TestPostgres
let app: TestApp
const [alice, bob] = [newSigner(), newSigner()]

before(async () => {
  pg = await startPostgres()
  app = await buildTestApp(pg.pool, { ADMIN_TOKEN, HINTS_PUSH_TOKEN: PUSH_TOKEN }, { logLevel: 'warn' })
})

after(async () => {
  await pg?.close()
})

/** The log lines at ERROR (or worse) written since `from`. */
const errorLines = (from: number): string[] =>
  app.logs.slice(from).filter(line => ['ERROR', 'CRITICAL', 'ALERT', 'EMERGENCY'].includes(String((JSON.parse(line) as { severity?: unknown }).severity)))

/** `valid` with `bad` put at its start, middle and end. */
const spoiled = (valid: string, bad: string): string[] => {
  const middle = Math.floor(valid.length / 2)
  return [bad + valid, valid.slice(0, middle) + bad + valid.slice(middle), valid + bad]
}

const NUL = '\u0000'
const LONE_SURROGATES = ['\ud800', '\udbff', '\udc00', '\udfff']

const adminGet = (path: string) => request(app.app).get(`/api/v1${path}`).set('Authorization', `Bearer ${ADMIN_TOKEN}`)
const adminPost = (path: string, body: unknown) =>
  request(app.app).post(`/api/v1${path}`).set('Authorization', `Bearer ${ADMIN_TOKEN}`).set('Content-Type', 'application/json').send(JSON.stringify(body))

/** One string input that reaches SQL: its valid value, and the request carrying a value in its place. */
interface Field {
  name: string
  valid: string
  send(value: string): request.Test
}

const keyPackage = (extra: Record<string, unknown> = {}) => ({ recipient: bob.pubkey, content_b64: b64(32), ...extra })
const welcome = (extra: Record<string, unknown> = {}) => ({ recipient: bob.pubkey, group_id: 'g-welcome', welcome_b64: b64(32), ...extra })
const mine = (signer: Signer) => ({ recipient: signer.pubkey })

/** JSON body strings: JSON.stringify writes NUL and lone surrogates as \u escapes, which JSON.parse turns back into them. */
const BODY_FIELDS: Field[] = [
  { name: 'POST /keypackages recipient', valid: bob.pubkey, send: v => app.api.post('/keypackages', alice, keyPackage({ recipient: v })) },
  { name: 'POST /keypackages sender', valid: alice.pubkey, send: v => app.api.post('/keypackages', alice, keyPackage({ sender: v })) },
  { name: 'POST /keypackages content_b64', valid: 'AAAA', send: v => app.api.post('/keypackages', alice, keyPackage({ content_b64: v })) },
  { name: 'POST /keypackages tags', valid: 'mls_protocol_version', send: v => app.api.post('/keypackages', alice, keyPackage({ tags: [['ok', '1.0'], [v, '1.0']] })) },
  { name: 'POST /welcome recipient', valid: bob.pubkey, send: v => app.api.post('/welcome', alice, welcome({ recipient: v })) },
  { name: 'POST /welcome sender', valid: alice.pubkey, send: v => app.api.post('/welcome', alice, welcome({ sender: v })) },
  { name: 'POST /welcome group_id', valid: 'g-book-club', send: v => app.api.post('/welcome', alice, welcome({ group_id: v })) },
  { name: 'POST /welcome welcome_b64', valid: 'AAAA', send: v => app.api.post('/welcome', alice, welcome({ welcome_b64: v })) },
  { name: 'POST /welcome ratchet_tree_b64', valid: 'AAAA', send: v => app.api.post('/welcome', alice, welcome({ ratchet_tree_b64: v })) },
  { name: 'POST /groups group_id', valid: 'g-admin', send: v => adminPost('/groups', { group_id: v }) },
  { name: 'POST /groups display_name', valid: 'Book club', send: v => adminPost('/groups', { group_id: 'g-admin', display_name: v }) },
  { name: 'POST /groups avatar_url', valid: 'https://img.example/a.png', send: v => adminPost('/groups', { group_id: 'g-admin', avatar_url: v }) },
  { name: 'POST /groups owner_pubkey', valid: alice.npub, send: v => adminPost('/groups', { group_id: 'g-admin', owner_pubkey: v }) },
  { name: 'POST /groups relays', valid: 'wss://relay.example', send: v => adminPost('/groups', { group_id: 'g-admin', relays: ['wss://ok.example', v] }) },
]

/** Path and query strings, percent-encoded as UTF-8 (a lone surrogate has no UTF-8 form: see the tests below). */
const URL_FIELDS: Field[] = [
  { name: 'GET /groups/{id}', valid: 'g-path', send: v => app.api.get(`/groups/${encodeURIComponent(v)}`, alice) },
  { name: 'POST /keypackages/{id}/ack', valid: randomUUID(), send: v => app.api.post(`/keypackages/${encodeURIComponent(v)}/ack`, bob) },
  { name: 'POST /welcome/{id}/ack', valid: randomUUID(), send: v => app.api.post(`/welcome/${encodeURIComponent(v)}/ack`, bob) },
  { name: 'GET /groups cursor', valid: 'g-cursor', send: v => adminGet(`/groups${qs({ cursor: v })}`) },
  { name: 'GET /groups limit', valid: '10', send: v => adminGet(`/groups${qs({ limit: v })}`) },
  ...(['/keypackages', '/welcome', '/dm-hints'] as const).flatMap((path): Field[] => [
    { name: `GET ${path} recipient`, valid: bob.pubkey, send: v => app.api.get(`${path}${qs({ recipient: v })}`, bob) },
    { name: `GET ${path} cursor`, valid: 'czox', send: v => app.api.get(`${path}${qs({ ...mine(bob), cursor: v })}`, bob) },
    { name: `GET ${path} limit`, valid: '10', send: v => app.api.get(`${path}${qs({ ...mine(bob), limit: v })}`, bob) },
  ]),
  { name: 'GET /dm-hints since', valid: '1700000000', send: v => app.api.get(`/dm-hints${qs({ ...mine(bob), since: v })}`, bob) },
]

/** Sends each spoiled value of `field` and expects 400 VALIDATION_FAILED as JSON, with no error logged. */
const expectRefused = async (field: Field, bads: string[]): Promise<void> => {
  for (const value of bads.flatMap(bad => spoiled(field.valid, bad))) {
    const from = app.logs.length
    const res = await field.send(value)
    try {
      expectError(res, 400, 'VALIDATION_FAILED')
    } catch (error) {
      throw new Error(`${field.name} = ${JSON.stringify(value)}: ${(error as Error).message}`)
    }
    assert.deepEqual(errorLines(from), [], `${field.name}: nothing logged at ERROR`)
  }
}

describe('a NUL (U+0000) in any string input', () => {
  it('GET /groups/%00 and /groups/a%00b answer 400 VALIDATION_FAILED, not 500, and log no error', async () => {
    for (const path of ['/groups/%00', '/groups/a%00b']) {
      const from = app.logs.length
      expectError(await app.api.get(path, alice), 400, 'VALIDATION_FAILED')
      assert.deepEqual(errorLines(from), [], path)
    }
  })

  it('GET /groups?cursor=%00 (admin) answers 400 VALIDATION_FAILED, not 500, and logs no error', async () => {
    const from = app.logs.length
    expectError(await adminGet('/groups?cursor=%00'), 400, 'VALIDATION_FAILED')
    assert.deepEqual(errorLines(from), [])
  })

  for (const field of [...BODY_FIELDS, ...URL_FIELDS])
    it(`${field.name}: refused with 400 wherever the NUL is`, async () => {
      await expectRefused(field, [NUL])
    })

  it('leaves nothing stored', async () => {
    const { rows } = await pg.pool.query(
      `SELECT (SELECT count(*) FROM mail_keypackages)::int + (SELECT count(*) FROM mail_welcomes)::int + (SELECT count(*) FROM groups)::int AS n`,
    )
    assert.equal(rows[0].n, 0)
  })
})

describe('a lone UTF-16 surrogate', () => {
  for (const field of BODY_FIELDS)
    it(`${field.name}: refused with 400 in a JSON body ("\\ud800"), which PostgreSQL would store as U+FFFD or refuse`, async () => {
      await expectRefused(field, LONE_SURROGATES)
    })

  it('a surrogate pair (a character outside the BMP) is stored and answered exactly', async () => {
    const name = 'Book club \u{1F4DA}'
    const res = await adminPost('/groups', { group_id: 'g-\u{1F4DA}', display_name: name })
    expectStatus(res, 200)
    assert.equal(res.body.group.display_name, name)
    const read = await app.api.get(`/groups/${encodeURIComponent('g-\u{1F4DA}')}`, alice)
    expectStatus(read, 200)
    assert.equal(read.body.group.group_id, 'g-\u{1F4DA}')
  })

  it('in a path, its bytes (%ED%A0%80) are not UTF-8: 400 VALIDATION_FAILED', async () => {
    const from = app.logs.length
    expectError(await app.api.get('/groups/%ED%A0%80', alice), 400, 'VALIDATION_FAILED')
    expectError(await app.api.post('/keypackages/%ED%A0%80/ack', bob), 400, 'VALIDATION_FAILED')
    assert.deepEqual(errorLines(from), [])
  })

  it('in a query, its bytes (%ED%A0%80) are read as U+FFFD, a well-formed string: no error', async () => {
    const res = await adminGet('/groups?cursor=%ED%A0%80')
    expectStatus(res, 200)
    expectError(await app.api.get(`/keypackages?recipient=${bob.pubkey}&cursor=%ED%A0%80`, bob), 400, 'VALIDATION_FAILED')
  })
})

describe('hint push: a hint whose group PostgreSQL cannot store', () => {
  const pushHint = (group: string) => {
    const hint = { v: 1, id: randomBytes(32).toString('hex'), kind: 445, pubkey: randomBytes(32).toString('hex'), created_at: now(), group }
    const body = encodePushEnvelope({ data: Buffer.from(JSON.stringify(hint)), attributes: {}, messageId: String(Date.now()), subscription: 'projects/p/subscriptions/s' })
    return request(app.app).post('/internal/pubsub/push').set('Authorization', `Bearer ${PUSH_TOKEN}`).set('Content-Type', 'application/json').send(JSON.stringify(body))
  }

  it('is acknowledged as malformed (204, counted, a warning), not a 500 Pub/Sub would redeliver forever', async () => {
    const groups = async () => (await pg.pool.query('SELECT count(*)::int AS n FROM groups')).rows[0].n as number
    const stored = await groups()
    for (const group of [...spoiled('g-hint', NUL), ...LONE_SURROGATES.flatMap(s => spoiled('g-hint', s))]) {
      const from = app.logs.length
      expectStatus(await pushHint(group), 204)
      assert.deepEqual(errorLines(from), [], JSON.stringify(group))
      const warned = app.logs.slice(from).map(line => JSON.parse(line) as { message?: string; reason?: string })
      assert.ok(warned.some(r => r.message === 'malformed hint acknowledged' && /group/.test(r.reason ?? '')), app.logs.slice(from).join('\n'))
    }
    const malformed = (await app.metrics.hints.get()).values.filter(v => v.labels.outcome === 'malformed').reduce((s, v) => s + v.value, 0)
    assert.equal(malformed, 15)
    assert.equal(await groups(), stored, 'no group stored')
  })
})
