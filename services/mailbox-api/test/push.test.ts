// POST /internal/pubsub/push: push authentication (shared token, Cloud Run IAM, in-app OIDC verification)
// and hint consumption (applied at most once per event id) on a real PostgreSQL.
import assert from 'node:assert/strict'
import { createSign, generateKeyPairSync, randomBytes, type KeyObject } from 'node:crypto'
import { after, before, describe, it } from 'node:test'
import request from 'supertest'
import type { AddressInfo } from 'node:net'
import { createLocalTransport, encodeHint, encodePushEnvelope, hintAttributes, hintFromEvent, type Hint } from '@msr/hints'
import { migrate } from '../src/db/migrate.js'
import { buildTestApp, expectError, expectStatus, newSigner, now, qs, startPostgres, type Signer, type TestApp, type TestPostgres } from './harness.js'

const PATH = '/internal/pubsub/push'
const PUSH_TOKEN = 'push-token-of-good-length'
const SERVICE_ACCOUNT = 'hints-push@msr-test.iam.gserviceaccount.com'
const AUDIENCE = 'https://mailbox.test/internal/pubsub/push'
const KID = 'test-key-1'

let pg: TestPostgres
let tokenApp: TestApp

const googleKey = generateKeyPairSync('rsa', { modulusLength: 2048 })
const otherKey = generateKeyPairSync('rsa', { modulusLength: 2048 })
const certs = async () => ({ [KID]: googleKey.publicKey.export({ type: 'spki', format: 'pem' }).toString() })

before(async () => {
  pg = await startPostgres()
  tokenApp = await buildTestApp(pg.pool, { HINTS_PUSH_TOKEN: PUSH_TOKEN }, { logLevel: 'warn' })
})

after(async () => {
  await pg?.close()
})

// ---------------------------------------------------------------------------------------------
// Helpers

const hex32 = () => randomBytes(32).toString('hex')

const groupHint = (group: string, opts: { epoch?: number; created_at?: number; id?: string } = {}): Hint => ({
  v: 1,
  id: opts.id ?? hex32(),
  kind: 445,
  pubkey: hex32(),
  created_at: opts.created_at ?? now(),
  group,
  ...(opts.epoch !== undefined && { epoch: opts.epoch }),
})

const dmHint = (sender: Signer, recipients: Signer[], opts: { id?: string; created_at?: number } = {}): Hint => ({
  v: 1,
  id: opts.id ?? hex32(),
  kind: 446,
  pubkey: sender.pubkey,
  created_at: opts.created_at ?? now(),
  recipients: recipients.map(r => r.pubkey),
})

/** The wrapped envelope Pub/Sub would POST for `hint` (or for arbitrary message data). */
const envelope = (hint: Hint | Buffer, messageId = String(Math.floor(Math.random() * 1e15))) =>
  encodePushEnvelope({
    data: Buffer.isBuffer(hint) ? hint : encodeHint(hint),
    attributes: Buffer.isBuffer(hint) ? {} : hintAttributes(hint),
    messageId,
    subscription: 'projects/msr-test/subscriptions/mailbox-push',
  })

/** POSTs `body` (an object as JSON, a string verbatim) to the push route with `auth` (an Authorization value; null: none). */
const push = (app: TestApp, body: unknown, auth: string | null = `Bearer ${PUSH_TOKEN}`, query: Record<string, string> = {}) => {
  const req = request(app.app).post(`${PATH}${qs(query)}`).set('Content-Type', 'application/json')
  if (auth !== null) void req.set('Authorization', auth)
  return req.send(typeof body === 'string' ? body : JSON.stringify(body))
}

/** The group as GET /api/v1/groups/{id} answers it to any NIP-98 caller. */
const readGroup = async (app: TestApp, id: string) => {
  const res = await app.api.get(`/groups/${id}`, newSigner())
  expectStatus(res, 200)
  return res.body.group as { group_id: string; last_epoch: number | null; last_event_ts: number | null; message_count: number; display_name: string | null }
}

/** The ids of the recipient's dm hints, as GET /api/v1/dm-hints answers them. */
const dmHintIds = async (app: TestApp, recipient: Signer): Promise<string[]> => {
  const res = await app.api.get(`/dm-hints${qs({ recipient: recipient.pubkey })}`, recipient)
  expectStatus(res, 200)
  return (res.body.items as { event_id: string }[]).map(i => i.event_id)
}

type Counter = { get(): Promise<{ values: { labels: Record<string, string | number>; value: number }[] }> }

/** The sum of a counter's values whose labels include `labels`. */
const counted = async (counter: Counter, labels: Record<string, string>): Promise<number> =>
  (await counter.get()).values.filter(v => Object.entries(labels).every(([k, x]) => String(v.labels[k]) === x)).reduce((s, v) => s + v.value, 0)

const b64url = (text: string) => Buffer.from(text, 'utf8').toString('base64url')

/** An RS256 JWT with Google's push-token claims, edited by `claims`; signed by `key` under `kid`. */
const jwt = (claims: Record<string, unknown> = {}, opts: { key?: KeyObject; kid?: string } = {}): string => {
  const t = now()
  const payload = { iss: 'https://accounts.google.com', aud: AUDIENCE, azp: '1234567890', sub: '1234567890', email: SERVICE_ACCOUNT, email_verified: true, iat: t, exp: t + 3600, ...claims }
  const signed = `${b64url(JSON.stringify({ alg: 'RS256', typ: 'JWT', kid: opts.kid ?? KID }))}.${b64url(JSON.stringify(payload))}`
  return `${signed}.${createSign('RSA-SHA256').update(signed).sign(opts.key ?? googleKey.privateKey).toString('base64url')}`
}

const fresh = () => envelope(groupHint(hex32(), { epoch: 1 }))

// ---------------------------------------------------------------------------------------------
// Authentication

describe('push authentication: shared token (HINTS_PUSH_TOKEN)', () => {
  it('accepts the token as Bearer or as ?token=', async () => {
    expectStatus(await push(tokenApp, fresh()), 204)
    expectStatus(await push(tokenApp, fresh(), null, { token: PUSH_TOKEN }), 204)
    expectStatus(await push(tokenApp, fresh(), 'Bearer not-the-token-at-all', { token: PUSH_TOKEN }), 204)
  })

  it('refuses a missing token (PUSH_AUTH_REQUIRED) and a wrong one (PUSH_AUTH_INVALID), counted by reason', async () => {
    const app = await buildTestApp(pg.pool, { HINTS_PUSH_TOKEN: PUSH_TOKEN })
    expectError(await push(app, fresh(), null), 401, 'PUSH_AUTH_REQUIRED')
    expectError(await push(app, fresh(), 'Basic dXNlcjpwYXNz'), 401, 'PUSH_AUTH_REQUIRED')
    expectError(await push(app, fresh(), `Bearer ${PUSH_TOKEN}x`), 401, 'PUSH_AUTH_INVALID')
    expectError(await push(app, fresh(), null, { token: 'wrong-token-of-good-length' }), 401, 'PUSH_AUTH_INVALID')
    expectError(await push(app, fresh(), `Bearer ${jwt()}`), 401, 'PUSH_AUTH_INVALID')
    assert.equal(await counted(app.metrics.pushAuthFailures, { reason: 'missing' }), 2)
    assert.equal(await counted(app.metrics.pushAuthFailures, { reason: 'token' }), 3)
    assert.equal(await counted(app.metrics.hints, {}), 0, 'nothing was consumed')
  })

  it('authenticates before reading the body: an unauthenticated push of garbage or of 512 KiB is a 401; one declaring 2 MiB a 413 before either', async () => {
    const app = await buildTestApp(pg.pool, { HINTS_PUSH_TOKEN: PUSH_TOKEN })
    expectError(await push(app, 'not json', 'Bearer wrong'), 401, 'PUSH_AUTH_INVALID')
    expectError(await push(app, 'x'.repeat(512 * 1024), null), 401, 'PUSH_AUTH_REQUIRED')
    expectError(await push(app, 'x'.repeat(2 * 1024 * 1024), null), 413, 'PAYLOAD_TOO_LARGE')
    assert.equal(await counted(app.metrics.pushAuthFailures, {}), 2, 'the 413 came before authentication')
    assert.equal(await counted(app.metrics.hints, { outcome: 'malformed' }), 0)
  })

  it('counts refused pushes against the address budget (429 RATE_LIMITED with Retry-After once spent), never a valid one', async () => {
    const app = await buildTestApp(pg.pool, { HINTS_PUSH_TOKEN: PUSH_TOKEN, TRUSTED_PROXIES: '1', MAILBOX_RATE_LIMIT_PER_IP: '2' })
    const from = (ip: string, auth: string | null) => push(app, fresh(), auth).set('X-Forwarded-For', ip)
    const [flooder, other] = ['198.18.9.1', '198.18.9.2']
    for (let i = 0; i < 3; i++) expectStatus(await from(flooder, `Bearer ${PUSH_TOKEN}`), 204)
    expectError(await from(flooder, 'Bearer wrong-token'), 401, 'PUSH_AUTH_INVALID')
    expectError(await from(flooder, null), 401, 'PUSH_AUTH_REQUIRED')
    const limited = await from(flooder, 'Bearer wrong-token')
    expectError(limited, 429, 'RATE_LIMITED')
    assert.ok(Number(limited.headers['retry-after']) >= 1, `Retry-After: ${limited.headers['retry-after']}`)
    expectStatus(await from(flooder, `Bearer ${PUSH_TOKEN}`), 204)
    expectError(await from(other, 'Bearer wrong-token'), 401, 'PUSH_AUTH_INVALID')
    assert.equal(await counted(app.metrics.rateLimited, { scope: 'ip' }), 1)
  })

  it('refuses every push when no push authentication is configured (deny by default)', async () => {
    const app = await buildTestApp(pg.pool)
    for (const auth of [null, `Bearer ${PUSH_TOKEN}`, `Bearer ${jwt()}`]) expectError(await push(app, fresh(), auth), 401, 'PUSH_AUTH_REQUIRED')
    expectError(await push(app, fresh(), null, { token: PUSH_TOKEN }), 401, 'PUSH_AUTH_REQUIRED')
    assert.equal(await counted(app.metrics.pushAuthFailures, { reason: 'not_configured' }), 4)
  })
})

describe('push authentication: behind Cloud Run IAM (HINTS_PUSH_SERVICE_ACCOUNT with HINTS_PUSH_IAM_VERIFIED=true)', () => {
  let app: TestApp
  before(async () => {
    app = await buildTestApp(pg.pool, { HINTS_PUSH_SERVICE_ACCOUNT: SERVICE_ACCOUNT, HINTS_PUSH_IAM_VERIFIED: 'true' })
  })

  it('accepts a token naming the service account with a verified email (the signature was Cloud Run IAM\'s to check)', async () => {
    expectStatus(await push(app, fresh(), `Bearer ${jwt()}`), 204)
    expectStatus(await push(app, fresh(), `Bearer ${jwt({}, { key: otherKey.privateKey, kid: 'whatever' })}`), 204)
  })

  it('refuses another email, an unverified email, a token that is no JWT, and no token', async () => {
    expectError(await push(app, fresh(), `Bearer ${jwt({ email: 'someone@example.com' })}`), 401, 'PUSH_AUTH_INVALID')
    expectError(await push(app, fresh(), `Bearer ${jwt({ email_verified: false })}`), 401, 'PUSH_AUTH_INVALID')
    expectError(await push(app, fresh(), `Bearer ${jwt({ email_verified: 'true' })}`), 401, 'PUSH_AUTH_INVALID')
    expectError(await push(app, fresh(), `Bearer ${jwt({ email: undefined })}`), 401, 'PUSH_AUTH_INVALID')
    expectError(await push(app, fresh(), 'Bearer a.b.c'), 401, 'PUSH_AUTH_INVALID')
    expectError(await push(app, fresh(), `Bearer ${PUSH_TOKEN}`), 401, 'PUSH_AUTH_INVALID')
    expectError(await push(app, fresh(), null), 401, 'PUSH_AUTH_REQUIRED')
    expectError(await push(app, fresh(), null, { token: jwt() }), 401, 'PUSH_AUTH_REQUIRED')
    assert.equal(await counted(app.metrics.pushAuthFailures, { reason: 'email' }), 2)
    assert.equal(await counted(app.metrics.pushAuthFailures, { reason: 'email_unverified' }), 2)
    assert.equal(await counted(app.metrics.pushAuthFailures, { reason: 'malformed' }), 2)
    assert.equal(await counted(app.metrics.pushAuthFailures, { reason: 'missing' }), 2)
  })
})

describe('push authentication: in-app OIDC verification (HINTS_PUSH_AUDIENCE)', () => {
  let app: TestApp
  before(async () => {
    app = await buildTestApp(pg.pool, { HINTS_PUSH_SERVICE_ACCOUNT: SERVICE_ACCOUNT, HINTS_PUSH_AUDIENCE: AUDIENCE }, { pushCerts: certs })
  })

  it('accepts a Google-signed token for the audience from either issuer spelling', async () => {
    expectStatus(await push(app, fresh(), `Bearer ${jwt()}`), 204)
    expectStatus(await push(app, fresh(), `Bearer ${jwt({ iss: 'accounts.google.com' })}`), 204)
  })

  const refusals: [string, () => string, string][] = [
    ['an expired token', () => jwt({ iat: now() - 7200, exp: now() - 3600 }), 'expired'],
    ['another audience', () => jwt({ aud: 'https://elsewhere.example/push' }), 'audience'],
    ['another issuer', () => jwt({ iss: 'https://evil.example' }), 'issuer'],
    ['a bad signature (another key under the same kid)', () => jwt({}, { key: otherKey.privateKey }), 'signature'],
    ['a tampered payload', () => jwt().replace(/\.([^.]+)\./, (_m, p: string) => `.${b64url(Buffer.from(p, 'base64url').toString('utf8').replace(SERVICE_ACCOUNT, 'evil@example.com'))}.`), 'signature'],
    ['an unknown key id', () => jwt({}, { kid: 'not-a-google-key' }), 'unknown_key'],
    ['another email', () => jwt({ email: 'someone@example.com' }), 'email'],
    ['an unverified email', () => jwt({ email_verified: false }), 'email_unverified'],
    ['a lifetime over a day', () => jwt({ exp: now() + 3 * 86400 }), 'lifetime'],
  ]
  for (const [name, token, reason] of refusals)
    it(`refuses ${name} (401 PUSH_AUTH_INVALID, reason ${reason})`, async () => {
      const before = await counted(app.metrics.pushAuthFailures, { reason })
      expectError(await push(app, fresh(), `Bearer ${token()}`), 401, 'PUSH_AUTH_INVALID')
      assert.equal(await counted(app.metrics.pushAuthFailures, { reason }), before + 1)
    })

  it('refuses no token (PUSH_AUTH_REQUIRED) and answers 503 UNAVAILABLE while Google\'s keys cannot be fetched', async () => {
    expectError(await push(app, fresh(), null), 401, 'PUSH_AUTH_REQUIRED')
    const offline = await buildTestApp(pg.pool, { HINTS_PUSH_SERVICE_ACCOUNT: SERVICE_ACCOUNT, HINTS_PUSH_AUDIENCE: AUDIENCE }, { pushCerts: async () => Promise.reject(new Error('network down')) })
    expectError(await push(offline, fresh(), `Bearer ${jwt()}`), 503, 'UNAVAILABLE')
  })

  it('with the shared token configured too, either credential is enough', async () => {
    const both = await buildTestApp(pg.pool, { HINTS_PUSH_TOKEN: PUSH_TOKEN, HINTS_PUSH_SERVICE_ACCOUNT: SERVICE_ACCOUNT, HINTS_PUSH_AUDIENCE: AUDIENCE }, { pushCerts: certs })
    expectStatus(await push(both, fresh(), `Bearer ${jwt()}`), 204)
    expectStatus(await push(both, fresh(), `Bearer ${PUSH_TOKEN}`), 204)
    expectStatus(await push(both, fresh(), `Bearer ${jwt({ aud: 'elsewhere' })}`, { token: PUSH_TOKEN }), 204)
    expectError(await push(both, fresh(), `Bearer ${jwt({ aud: 'elsewhere' })}`), 401, 'PUSH_AUTH_INVALID')
    expectError(await push(both, fresh(), 'Bearer wrong-token-of-good-length'), 401, 'PUSH_AUTH_INVALID')
  })
})

// ---------------------------------------------------------------------------------------------
// Consumption

describe('push consumption: kind 445 (group registry)', () => {
  it('creates the group, visible through GET /api/v1/groups/{id}, and counts it', async () => {
    const app = await buildTestApp(pg.pool, { HINTS_PUSH_TOKEN: PUSH_TOKEN })
    const group = hex32()
    expectStatus(await push(app, envelope(groupHint(group, { epoch: 2, created_at: 1_700_000_000 }))), 204)
    const stored = await readGroup(app, group)
    assert.equal(stored.last_epoch, 2)
    assert.equal(stored.last_event_ts, 1_700_000_000)
    assert.equal(await counted(app.metrics.hints, { kind: '445', outcome: 'applied' }), 1)
    assert.equal(await counted(app.metrics.groupUpserts, { source: 'hint' }), 1)
  })

  it('observes the delivery delay (created_at to registry update) of an applied hint, not of a duplicate', async () => {
    const app = await buildTestApp(pg.pool, { HINTS_PUSH_TOKEN: PUSH_TOKEN })
    const hint = groupHint(hex32(), { epoch: 1, created_at: now() - 3 })
    expectStatus(await push(app, envelope(hint)), 204)
    expectStatus(await push(app, envelope(hint)), 204)
    const text = await app.metrics.metrics.render()
    const bucket = (le: string) => Number(new RegExp(`^msr_mailbox_hint_delivery_seconds_bucket\\{le="${le}",kind="445"\\} (\\d+)$`, 'm').exec(text)?.[1])
    assert.equal(bucket('2.5'), 0, 'three seconds old when applied')
    assert.equal(bucket('10'), 1, 'observed once: the duplicate is not a delivery')
  })

  it('keeps the highest epoch and the latest event time whatever order the hints arrive in', async () => {
    const group = hex32()
    expectStatus(await push(tokenApp, envelope(groupHint(group, { epoch: 5, created_at: 2000 }))), 204)
    expectStatus(await push(tokenApp, envelope(groupHint(group, { epoch: 3, created_at: 1000 }))), 204)
    let stored = await readGroup(tokenApp, group)
    assert.deepEqual([stored.last_epoch, stored.last_event_ts], [5, 2000], 'epoch 3 after 5 stays 5; an older event does not move the time back')
    expectStatus(await push(tokenApp, envelope(groupHint(group, { epoch: 4, created_at: 3000 }))), 204)
    stored = await readGroup(tokenApp, group)
    assert.deepEqual([stored.last_epoch, stored.last_event_ts], [5, 3000], 'a later event moves the time, not the epoch down')
    expectStatus(await push(tokenApp, envelope(groupHint(group, { created_at: 2500 }))), 204)
    expectStatus(await push(tokenApp, envelope(groupHint(group, { epoch: 9, created_at: 2600 }))), 204)
    stored = await readGroup(tokenApp, group)
    assert.deepEqual([stored.last_epoch, stored.last_event_ts], [9, 3000])
  })

  it('applies a redelivery (same envelope, or the same event id in another message) at most once: nothing changes, counted duplicate', async () => {
    const app = await buildTestApp(pg.pool, { HINTS_PUSH_TOKEN: PUSH_TOKEN })
    const group = hex32()
    const hint = groupHint(group, { epoch: 1, created_at: 1000 })
    const first = envelope(hint, 'message-1')
    expectStatus(await push(app, first), 204)
    const row = async () => (await pg.pool.query('SELECT last_epoch, last_event_ts, message_count, updated_at FROM groups WHERE group_id = $1', [group])).rows[0]
    const stored = await row()
    assert.equal(stored.message_count, 1)
    expectStatus(await push(app, first), 204)
    // The same Nostr event id in a new message (a second relay instance, a republished outbox entry):
    // even with other values it changes nothing, not even updated_at.
    expectStatus(await push(app, envelope({ ...hint, epoch: 7, created_at: 5000 }, 'message-2')), 204)
    assert.deepEqual(await row(), stored)
    assert.equal(await counted(app.metrics.hints, { kind: '445', outcome: 'applied' }), 1)
    assert.equal(await counted(app.metrics.hints, { kind: '445', outcome: 'duplicate' }), 2)
    assert.equal(await counted(app.metrics.groupUpserts, { source: 'hint' }), 1)
  })

  it('applies one of many concurrent deliveries of one event', async () => {
    const app = await buildTestApp(pg.pool, { HINTS_PUSH_TOKEN: PUSH_TOKEN })
    const hint = groupHint(hex32(), { epoch: 3 })
    const answers = await Promise.all(Array.from({ length: 8 }, (_, i) => push(app, envelope(hint, `concurrent-${i}`))))
    for (const res of answers) expectStatus(res, 204)
    assert.equal(await counted(app.metrics.hints, { outcome: 'applied' }), 1)
    assert.equal(await counted(app.metrics.hints, { outcome: 'duplicate' }), 7)
  })
})

describe('push consumption: Marmot 445s (only an h tag, no epoch)', () => {
  /** The hint the relay makes of a 445 as White Noise / marmot-ts send it: `h` and `encoding`, no `k` or decimal `e` tag. */
  const marmotHint = (group: string, created_at: number, id = hex32()): Hint =>
    hintFromEvent({ id, kind: 445, pubkey: hex32(), created_at, tags: [['h', group], ['encoding', 'base64']] }) ?? assert.fail('no hint for a Marmot 445')

  it('creates the group with no epoch, one message and the event time', async () => {
    const group = hex32()
    const hint = marmotHint(group, 1_700_000_000)
    assert.equal(hint.epoch, undefined, 'a Marmot 445 carries no epoch')
    expectStatus(await push(tokenApp, envelope(hint)), 204)
    const stored = await readGroup(tokenApp, group)
    assert.deepEqual([stored.last_epoch, stored.message_count, stored.last_event_ts], [null, 1, 1_700_000_000])
  })

  it('counts every new event, and moves last_event_ts forward only', async () => {
    const group = hex32()
    expectStatus(await push(tokenApp, envelope(marmotHint(group, 2000))), 204)
    expectStatus(await push(tokenApp, envelope(marmotHint(group, 3000))), 204)
    let stored = await readGroup(tokenApp, group)
    assert.deepEqual([stored.last_epoch, stored.message_count, stored.last_event_ts], [null, 2, 3000])
    expectStatus(await push(tokenApp, envelope(marmotHint(group, 1000))), 204)
    stored = await readGroup(tokenApp, group)
    assert.deepEqual([stored.last_epoch, stored.message_count, stored.last_event_ts], [null, 3, 3000], 'an older event counts but does not move the time back')
  })

  it('counts an event id delivered twice (same message, or another one) once', async () => {
    const group = hex32()
    const hint = marmotHint(group, 1000)
    expectStatus(await push(tokenApp, envelope(hint, 'marmot-1')), 204)
    expectStatus(await push(tokenApp, envelope(hint, 'marmot-1')), 204)
    expectStatus(await push(tokenApp, envelope({ ...hint, created_at: 5000 }, 'marmot-2')), 204)
    const stored = await readGroup(tokenApp, group)
    assert.deepEqual([stored.message_count, stored.last_event_ts], [1, 1000])
  })

  it('an admin upsert names the group and keeps its count', async () => {
    const adminToken = 'admin-token-for-tests-0123456789'
    const app = await buildTestApp(pg.pool, { HINTS_PUSH_TOKEN: PUSH_TOKEN, ADMIN_TOKEN: adminToken })
    const group = hex32()
    for (const at of [1000, 2000]) expectStatus(await push(app, envelope(marmotHint(group, at))), 204)
    const res = await request(app.app).post('/api/v1/groups').set('Authorization', `Bearer ${adminToken}`).send({ group_id: group, display_name: 'Book club' })
    expectStatus(res, 200)
    assert.equal(res.body.group.message_count, 2)
    const stored = await readGroup(app, group)
    assert.deepEqual([stored.display_name, stored.message_count, stored.last_event_ts], ['Book club', 2, 2000])
    expectStatus(await push(app, envelope(marmotHint(group, 3000))), 204)
    assert.equal((await readGroup(app, group)).message_count, 3)
  })
})

describe('push consumption: kind 446 (dm hints)', () => {
  it('records a dm hint for each recipient, visible in their GET /api/v1/dm-hints, with the default mailbox TTL', async () => {
    const app = await buildTestApp(pg.pool, { HINTS_PUSH_TOKEN: PUSH_TOKEN, MAILBOX_DEFAULT_TTL: '2d' })
    const [alice, bob, carol, dave] = [newSigner(), newSigner(), newSigner(), newSigner()]
    const hint = dmHint(alice, [bob, carol], { created_at: 1_700_000_123 })
    expectStatus(await push(app, envelope(hint)), 204)
    assert.deepEqual(await dmHintIds(app, bob), [hint.id])
    assert.deepEqual(await dmHintIds(app, carol), [hint.id])
    assert.deepEqual(await dmHintIds(app, dave), [])
    const res = await app.api.get(`/dm-hints${qs({ recipient: bob.pubkey })}`, bob)
    assert.equal(res.body.items[0].sender, alice.pubkey)
    assert.equal(res.body.items[0].created_at, 1_700_000_123)
    const { rows } = await pg.pool.query('SELECT extract(epoch FROM expires_at - received_at)::int AS ttl FROM dm_hints WHERE event_id = $1', [hint.id])
    assert.deepEqual(rows.map(r => r.ttl), [2 * 86400, 2 * 86400])
    assert.equal(await counted(app.metrics.hints, { kind: '446', outcome: 'applied' }), 1)
  })

  it('a redelivery records nothing more', async () => {
    const app = await buildTestApp(pg.pool, { HINTS_PUSH_TOKEN: PUSH_TOKEN })
    const [alice, bob, carol] = [newSigner(), newSigner(), newSigner()]
    const hint = dmHint(alice, [bob])
    expectStatus(await push(app, envelope(hint, 'a')), 204)
    expectStatus(await push(app, envelope({ ...hint, recipients: [bob.pubkey, carol.pubkey] }, 'b')), 204)
    assert.deepEqual(await dmHintIds(app, bob), [hint.id])
    assert.deepEqual(await dmHintIds(app, carol), [], 'the second message had the same event id')
    assert.equal(await counted(app.metrics.hints, { kind: '446', outcome: 'duplicate' }), 1)
  })
})

describe('push consumption: poison messages', () => {
  it('acknowledges each (204), counts it malformed, logs reason and message id but never the data; the next good one is applied', async () => {
    const app = await buildTestApp(pg.pool, { HINTS_PUSH_TOKEN: PUSH_TOKEN }, { logLevel: 'warn' })
    const secret = 'do-not-log-this-content'
    const good = groupHint(hex32(), { epoch: 1 })
    const poison: [string, unknown, RegExp][] = [
      ['body not JSON', `{"message": ${secret}`, /the body is not JSON/],
      ['not an envelope', { hello: secret }, /not a Pub\/Sub push envelope/],
      ['data not base64', { message: { data: `@@${secret}@@`, messageId: 'poison-b64' }, subscription: 's' }, /not base64/],
      ['data not JSON', envelope(Buffer.from(`not json ${secret}`), 'poison-json'), /data is not JSON/],
      ['data not a hint', envelope(Buffer.from(JSON.stringify({ hello: secret })), 'poison-shape'), /./],
      ['hint version 2', envelope(Buffer.from(JSON.stringify({ ...good, v: 2, group: secret })), 'poison-v2'), /^v: /],
      ['445 without group', envelope(Buffer.from(JSON.stringify({ ...good, group: undefined })), 'poison-nogroup'), /group/],
    ]
    for (const [, body] of poison) expectStatus(await push(app, body), 204)
    assert.equal(await counted(app.metrics.hints, { outcome: 'malformed' }), poison.length)
    const logged = app.logs.map(l => JSON.parse(l) as Record<string, unknown>).filter(l => l.message === 'malformed hint acknowledged')
    assert.equal(logged.length, poison.length)
    poison.forEach(([name, , reason], i) => assert.match(String(logged[i]?.reason), reason, name))
    assert.deepEqual(logged.map(l => l.messageId).filter(Boolean), ['poison-b64', 'poison-json', 'poison-shape', 'poison-v2', 'poison-nogroup'])
    for (const line of app.logs) assert.doesNotMatch(line, new RegExp(secret), 'message data is never logged')
    expectStatus(await push(app, envelope(good)), 204)
    assert.equal((await readGroup(app, good.group as string)).last_epoch, 1)
  })

  it('refuses a body over 1 MiB (413 PAYLOAD_TOO_LARGE)', async () => {
    expectError(await push(tokenApp, { message: { data: 'A'.repeat(1100 * 1024) } }), 413, 'PAYLOAD_TOO_LARGE')
  })
})

describe('push consumption: database failure', () => {
  it('answers 500 with nothing committed, so the redelivery after recovery applies the hint', async () => {
    const db = await pg.freshDatabase()
    await migrate(db.pool)
    const app = await buildTestApp(db.pool, { HINTS_PUSH_TOKEN: PUSH_TOKEN })
    const group = hex32()
    await db.pool.query(`ALTER TABLE groups ADD CONSTRAINT test_refuse CHECK (group_id <> '${group}')`)
    const message = envelope(groupHint(group, { epoch: 4 }))
    expectError(await push(app, message), 500, 'INTERNAL')
    assert.equal((await db.pool.query('SELECT count(*)::int AS n FROM hints_seen')).rows[0].n, 0, 'the seen id was rolled back with the failed upsert')
    await db.pool.query('ALTER TABLE groups DROP CONSTRAINT test_refuse')
    expectStatus(await push(app, message), 204)
    assert.equal((await readGroup(app, group)).last_epoch, 4)
    assert.equal(await counted(app.metrics.hints, { outcome: 'applied' }), 1)
  })

  it('answers 500 when the database is missing its tables', async () => {
    const db = await pg.freshDatabase()
    const app = await buildTestApp(db.pool, { HINTS_PUSH_TOKEN: PUSH_TOKEN })
    expectError(await push(app, fresh()), 500, 'INTERNAL')
  })
})

describe("the relay's local transport", () => {
  it('delivers to the push route with the shared token (both ways of carrying it); a wrong token is an HTTP 401 error', async () => {
    const server = tokenApp.app.listen(0, '127.0.0.1')
    await new Promise(resolve => server.once('listening', resolve))
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}${PATH}`
    try {
      const [alice, bob] = [newSigner(), newSigner()]
      const group = hex32()
      const viaHeader = createLocalTransport({ pushUrl: url, token: PUSH_TOKEN })
      const viaQuery = createLocalTransport({ pushUrl: `${url}${qs({ token: PUSH_TOKEN })}` })
      const wrong = createLocalTransport({ pushUrl: url, token: 'wrong-token-of-good-length' })
      const dm = dmHint(alice, [bob])
      await viaHeader.publish(groupHint(group, { epoch: 6 }))
      await viaQuery.publish(dm)
      await assert.rejects(wrong.publish(groupHint(group, { epoch: 9 })), /HTTP 401/)
      await Promise.all([viaHeader.close(), viaQuery.close(), wrong.close()])
      assert.equal((await readGroup(tokenApp, group)).last_epoch, 6)
      assert.deepEqual(await dmHintIds(tokenApp, bob), [dm.id])
    } finally {
      await new Promise(resolve => server.close(resolve))
    }
  })
})
