// NIP-98 authentication over HTTP: every way a header can be wrong, replays (also across instances), and logs.
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { createHash } from 'node:crypto'
import { gzipSync } from 'node:zlib'
import request from 'supertest'
import {
  authEvent,
  authHeader,
  b64,
  buildTestApp,
  encodeAuth,
  expectError,
  expectStatus,
  newSigner,
  now,
  qs,
  rehash,
  sha256Hex,
  startPostgres,
  type Signer,
  type Tamper,
  type TestApp,
  type TestPostgres,
} from './harness.js'

let pg: TestPostgres
let main: TestApp
let other: TestApp

before(async () => {
  pg = await startPostgres()
  main = await buildTestApp(pg.pool, {}, { logLevel: 'trace' })
  other = await buildTestApp(pg.connect(), {}, { logLevel: 'trace' })
})

after(async () => {
  await pg?.close()
})

/** Every Authorization header sent in this file, to look for in the logs at the end. */
const sentHeaders: string[] = []

/** GET /keypackages for the signer's own mailbox (200 when authenticated), with a prepared header. */
const pickupPath = (signer: Signer) => `/keypackages${qs({ recipient: signer.pubkey })}`
const getWith = (app: TestApp, path: string, header: string | undefined) => {
  if (header !== undefined) sentHeaders.push(header)
  const req = request(app.app).get(`/api/v1${path}`)
  return header === undefined ? req : req.set('Authorization', header)
}
const getSigned = (signer: Signer, tamper: Tamper = {}, app: TestApp = main) =>
  getWith(app, pickupPath(signer), authHeader(signer.secretKey, 'GET', app.api.url(pickupPath(signer)), undefined, tamper))
const postWith = (path: string, header: string, body: string, app: TestApp = main) => {
  sentHeaders.push(header)
  return request(app.app).post(`/api/v1${path}`).set('Authorization', header).set('Content-Type', 'application/json').send(body)
}

describe('NIP-98: the header itself', () => {
  it('accepts an honest header (control)', async () => {
    expectStatus(await getSigned(newSigner()), 200)
  })

  it('accepts the scheme name in any case (RFC 7235)', async () => {
    const signer = newSigner()
    const header = authHeader(signer.secretKey, 'GET', main.api.url(pickupPath(signer)))
    expectStatus(await getWith(main, pickupPath(signer), header.replace(/^Nostr/, 'nostr')), 200)
  })

  it('refuses a missing header with 401 AUTH_REQUIRED', async () => {
    expectError(await getWith(main, pickupPath(newSigner()), undefined), 401, 'AUTH_REQUIRED')
  })

  it('refuses other schemes, non-base64, non-JSON and non-event content with 401 AUTH_INVALID', async () => {
    const signer = newSigner()
    const event = authEvent(signer.secretKey, 'GET', main.api.url(pickupPath(signer)))
    const base64 = (text: string) => Buffer.from(text).toString('base64')
    const { sig: _sig, ...unsigned } = event
    const headers = [
      'Nostr',
      'Nostr ',
      `Bearer ${base64(JSON.stringify(event))}`,
      `${base64(JSON.stringify(event))}`,
      'Nostr !!!not-base64!!!',
      `Nostr ${base64(JSON.stringify(event))} trailing`,
      `Nostr ${base64('hello, world')}`,
      `Nostr ${base64('[]')}`,
      `Nostr ${base64('null')}`,
      `Nostr ${base64(JSON.stringify(unsigned))}`,
      `Nostr ${base64(JSON.stringify({ ...event, extra: 1 }))}`,
      `Nostr ${base64(JSON.stringify({ ...event, created_at: String(event.created_at) }))}`,
      `Nostr ${base64(JSON.stringify({ ...event, sig: event.sig.toUpperCase() }))}`,
    ]
    for (const header of headers) expectError(await getWith(main, pickupPath(signer), header), 401, 'AUTH_INVALID')
  })

  it('refuses a kind other than 27235 with 401 AUTH_INVALID', async () => {
    for (const kind of [1, 27234, 27236, 22242]) expectError(await getSigned(newSigner(), { kind }), 401, 'AUTH_INVALID')
  })
})

describe('NIP-98: created_at', () => {
  it('refuses an event more than 60 s old or ahead with 401 AUTH_EXPIRED', async () => {
    for (const offset of [-61, 61, -3600, 3600]) expectError(await getSigned(newSigner(), { created_at: now() + offset }), 401, 'AUTH_EXPIRED')
  })

  it('accepts an event 59 s old or ahead', async () => {
    for (const offset of [-59, 59]) expectStatus(await getSigned(newSigner(), { created_at: now() + offset }), 200)
  })
})

describe('NIP-98: the u tag', () => {
  const path = (signer: Signer) => `/api/v1${pickupPath(signer)}`
  const variants: [string, (s: Signer) => string][] = [
    ['another host', s => `https://evil.test${path(s)}`],
    ['another scheme', s => `http://mailbox.test${path(s)}`],
    ['an explicit default port', s => `https://mailbox.test:443${path(s)}`],
    ['another path', s => `https://mailbox.test/api/v1/welcome${qs({ recipient: s.pubkey })}`],
    ['the path without /api/v1', s => `https://mailbox.test${pickupPath(s)}`],
    ['a trailing slash', s => `https://mailbox.test/api/v1/keypackages/${qs({ recipient: s.pubkey })}`],
    ['another query', s => `https://mailbox.test/api/v1/keypackages${qs({ recipient: s.pubkey, limit: 5 })}`],
    ['no query', () => 'https://mailbox.test/api/v1/keypackages'],
    ['a relative URL', s => path(s)],
    ['an upper-case host', s => `https://MAILBOX.TEST${path(s)}`],
  ]
  for (const [what, u] of variants)
    it(`refuses a u with ${what} (401 AUTH_URL_MISMATCH)`, async () => {
      const signer = newSigner()
      const error = expectError(await getSigned(signer, { u: u(signer) }), 401, 'AUTH_URL_MISMATCH')
      // The refusal says what would have been accepted: the absolute URL built from PUBLIC_URL.
      assert.ok(error.message.endsWith(`: https://mailbox.test${path(signer)}`), error.message)
    })

  it('refuses a u built from the Host header (and forwarded headers) instead of PUBLIC_URL', async () => {
    const signer = newSigner()
    const proxied = await buildTestApp(pg.pool, { TRUSTED_PROXIES: '1' })
    for (const app of [main, proxied]) {
      const header = authHeader(signer.secretKey, 'GET', `http://attacker.test${path(signer)}`)
      expectError(await getWith(app, pickupPath(signer), header).set('Host', 'attacker.test'), 401, 'AUTH_URL_MISMATCH')
      const forwarded = authHeader(signer.secretKey, 'GET', `https://attacker.test${path(signer)}`)
      const res = await getWith(app, pickupPath(signer), forwarded).set('Host', 'attacker.test').set('X-Forwarded-Host', 'attacker.test').set('X-Forwarded-Proto', 'https')
      expectError(res, 401, 'AUTH_URL_MISMATCH')
    }
    const honest = authHeader(signer.secretKey, 'GET', main.api.url(pickupPath(signer)))
    expectStatus(await getWith(main, pickupPath(signer), honest).set('Host', 'attacker.test'), 200)
  })

  it('matches a PUBLIC_URL with a path prefix and a trailing slash', async () => {
    const app = await buildTestApp(pg.pool, { PUBLIC_URL: 'https://example.com/mailbox/' })
    const signer = newSigner()
    expectStatus(await getWith(app, pickupPath(signer), authHeader(signer.secretKey, 'GET', `https://example.com/mailbox/api/v1${pickupPath(signer)}`)), 200)
    expectError(await getWith(app, pickupPath(signer), authHeader(signer.secretKey, 'GET', `https://example.com/api/v1${pickupPath(signer)}`)), 401, 'AUTH_URL_MISMATCH')
  })
})

describe('NIP-98: method and payload', () => {
  const deposit = (recipient: string) => JSON.stringify({ recipient, content_b64: b64(64) })

  it('refuses a method tag that is not the request’s (401 AUTH_METHOD_MISMATCH)', async () => {
    expectError(await getSigned(newSigner(), { method: 'POST' }), 401, 'AUTH_METHOD_MISMATCH')
    const signer = newSigner()
    const body = deposit(newSigner().pubkey)
    expectError(await postWith('/keypackages', authHeader(signer.secretKey, 'GET', main.api.url('/keypackages'), body), body), 401, 'AUTH_METHOD_MISMATCH')
  })

  it('requires a payload tag when there is a body (401 AUTH_PAYLOAD_MISMATCH)', async () => {
    const signer = newSigner()
    const body = deposit(newSigner().pubkey)
    expectError(await postWith('/keypackages', authHeader(signer.secretKey, 'POST', main.api.url('/keypackages'), body, { payload: null }), body), 401, 'AUTH_PAYLOAD_MISMATCH')
  })

  it('refuses a payload tag that is not the sha256 of the exact body bytes', async () => {
    const signer = newSigner()
    const recipient = newSigner().pubkey
    const body = deposit(recipient)
    const spaced = JSON.stringify(JSON.parse(body), null, 2)
    const url = main.api.url('/keypackages')
    for (const payload of [sha256Hex(deposit(recipient)), sha256Hex(spaced), sha256Hex(''), sha256Hex(body).toUpperCase(), 'nope'])
      expectError(await postWith('/keypackages', authHeader(signer.secretKey, 'POST', url, body, { payload }), body), 401, 'AUTH_PAYLOAD_MISMATCH')
    // The same JSON re-spaced is other bytes: the hash of exactly what was sent is what counts.
    expectStatus(await postWith('/keypackages', authHeader(signer.secretKey, 'POST', url, spaced), spaced), 201)
  })

  it('refuses a payload tag on a request without a body', async () => {
    expectError(await getSigned(newSigner(), { payload: sha256Hex('{}') }), 401, 'AUTH_PAYLOAD_MISMATCH')
  })

  it('refuses a compressed body with 415, whichever bytes its payload tag hashes, and stores nothing', async () => {
    const [signer, recipient] = [newSigner(), newSigner()]
    const body = deposit(recipient.pubkey)
    const gzipped = gzipSync(body)
    const url = main.api.url('/keypackages')
    // The bytes sent (NIP-98's "request body"), then the JSON they inflate to (what body-parser used to hash).
    for (const payload of [createHash('sha256').update(gzipped).digest('hex'), sha256Hex(body)]) {
      const header = authHeader(signer.secretKey, 'POST', url, body, { payload })
      sentHeaders.push(header)
      const res = await request(main.app).post('/api/v1/keypackages').set('Authorization', header).set('Content-Type', 'application/json').set('Content-Encoding', 'gzip').send(gzipped)
      expectError(res, 415, 'UNSUPPORTED_MEDIA_TYPE')
      assert.match(String((res.body as { error: { message: string } }).error.message), /Content-Encoding/)
    }
    const stored = await request(main.app).get(`/api/v1${pickupPath(recipient)}`).set('Authorization', authHeader(recipient.secretKey, 'GET', main.api.url(pickupPath(recipient))))
    expectStatus(stored, 200)
    assert.deepEqual((stored.body as { items: unknown[] }).items, [])
  })
})

describe('NIP-98: signature', () => {
  const cases: [string, (e: Parameters<NonNullable<Tamper['afterSigning']>>[0], other: Signer) => void, string][] = [
    ['content edited after signing', e => void (e.content = 'edited'), 'AUTH_INVALID'],
    ['content edited and the id recomputed', e => ((e.content = 'edited'), rehash(e)), 'AUTH_BAD_SIGNATURE'],
    ['one signature character changed', e => void (e.sig = (e.sig[0] === '0' ? '1' : '0') + e.sig.slice(1)), 'AUTH_BAD_SIGNATURE'],
    ['a zero signature', e => void (e.sig = '0'.repeat(128)), 'AUTH_BAD_SIGNATURE'],
    ['another pubkey with the id recomputed', (e, o) => ((e.pubkey = o.pubkey), rehash(e)), 'AUTH_BAD_SIGNATURE'],
    ['created_at moved and the id recomputed', e => ((e.created_at -= 1), rehash(e)), 'AUTH_BAD_SIGNATURE'],
  ]
  for (const [what, edit, code] of cases)
    it(`refuses ${what} (401 ${code})`, async () => {
      const [signer, victim] = [newSigner(), newSigner()]
      // A claimed pubkey gets the victim's mailbox path, so only the signature stands in the way.
      const target = what.includes('pubkey') ? victim : signer
      const path = pickupPath(target)
      const header = authHeader(signer.secretKey, 'GET', main.api.url(path), undefined, { afterSigning: e => edit(e, victim) })
      expectError(await getWith(main, path, header), 401, code)
    })

  it('refuses a u tag rewritten after signing even with the id recomputed', async () => {
    const signer = newSigner()
    const header = authHeader(signer.secretKey, 'GET', main.api.url('/keypackages'), undefined, {
      afterSigning: e => {
        e.tags = [['u', main.api.url(pickupPath(signer))], ['method', 'GET']]
        rehash(e)
      },
    })
    expectError(await getWith(main, pickupPath(signer), header), 401, 'AUTH_BAD_SIGNATURE')
  })
})

describe('NIP-98: one use per token', () => {
  it('refuses the same header twice with 401 AUTH_REPLAYED, also after the first use failed validation', async () => {
    const signer = newSigner()
    const header = authHeader(signer.secretKey, 'GET', main.api.url(pickupPath(signer)))
    expectStatus(await getWith(main, pickupPath(signer), header), 200)
    expectError(await getWith(main, pickupPath(signer), header), 401, 'AUTH_REPLAYED')
    const bad = `/keypackages${qs({ recipient: signer.pubkey, limit: 0 })}`
    const once = authHeader(signer.secretKey, 'GET', main.api.url(bad))
    expectError(await getWith(main, bad, once), 400, 'VALIDATION_FAILED')
    expectError(await getWith(main, bad, once), 401, 'AUTH_REPLAYED')
  })

  it('refuses the same event re-encoded (base64url, no padding, other key order)', async () => {
    const signer = newSigner()
    const event = authEvent(signer.secretKey, 'GET', main.api.url(pickupPath(signer)))
    expectStatus(await getWith(main, pickupPath(signer), encodeAuth(event)), 200)
    const reordered = { sig: event.sig, content: event.content, tags: event.tags, kind: event.kind, created_at: event.created_at, pubkey: event.pubkey, id: event.id }
    for (const header of [
      encodeAuth(event, json => Buffer.from(json).toString('base64url')),
      encodeAuth(event, json => Buffer.from(json).toString('base64').replace(/=+$/, '')),
      `Nostr ${Buffer.from(JSON.stringify(reordered)).toString('base64')}`,
      `Nostr ${Buffer.from(JSON.stringify(event, null, 1)).toString('base64')}`,
    ])
      expectError(await getWith(main, pickupPath(signer), header), 401, 'AUTH_REPLAYED')
  })

  it('refuses a replay on another instance sharing the database', async () => {
    const signer = newSigner()
    const header = authHeader(signer.secretKey, 'GET', main.api.url(pickupPath(signer)))
    expectStatus(await getWith(main, pickupPath(signer), header), 200)
    expectError(await getWith(other, pickupPath(signer), header), 401, 'AUTH_REPLAYED')
    const body = JSON.stringify({ recipient: newSigner().pubkey, content_b64: b64(32) })
    const post = authHeader(signer.secretKey, 'POST', other.api.url('/keypackages'), body)
    expectStatus(await postWith('/keypackages', post, body, other), 201)
    expectError(await postWith('/keypackages', post, body, main), 401, 'AUTH_REPLAYED')
  })

  it('lets exactly one of the same header sent to two instances at once through', async () => {
    for (let round = 0; round < 5; round++) {
      const signer = newSigner()
      const header = authHeader(signer.secretKey, 'GET', main.api.url(pickupPath(signer)))
      const answers = await Promise.all([main, other, main, other].map(app => getWith(app, pickupPath(signer), header)))
      assert.deepEqual(answers.map(r => r.status).sort(), [200, 401, 401, 401])
      for (const r of answers.filter(r => r.status === 401)) expectError(r, 401, 'AUTH_REPLAYED')
    }
  })

  it('accepts two different events of the same second, and two signatures of the same event', async () => {
    const signer = newSigner()
    const at = now()
    const url = main.api.url(pickupPath(signer))
    expectStatus(await getWith(main, pickupPath(signer), authHeader(signer.secretKey, 'GET', url, undefined, { created_at: at })), 200)
    expectStatus(await getWith(main, pickupPath(signer), authHeader(signer.secretKey, 'GET', url, undefined, { created_at: at, content: 'second' })), 200)
    const first = authEvent(signer.secretKey, 'GET', url, undefined, { created_at: at })
    const second = authEvent(signer.secretKey, 'GET', url, undefined, { created_at: at })
    assert.equal(first.id, second.id, 'two identical requests in one second make the same event id')
    assert.notEqual(first.sig, second.sig)
    expectStatus(await getWith(main, pickupPath(signer), encodeAuth(first)), 200)
    expectStatus(await getWith(other, pickupPath(signer), encodeAuth(second)), 200)
  })
})

describe('NIP-98: metrics and logs', () => {
  it('counts each refusal by reason', async () => {
    const app = await buildTestApp(pg.pool)
    const signer = newSigner()
    expectError(await getWith(app, pickupPath(signer), undefined), 401, 'AUTH_REQUIRED')
    expectError(await getSigned(signer, { created_at: now() - 600 }, app), 401, 'AUTH_EXPIRED')
    expectError(await getSigned(signer, { u: 'https://evil.test/' }, app), 401, 'AUTH_URL_MISMATCH')
    expectError(await getSigned(signer, { afterSigning: e => void (e.sig = '0'.repeat(128)) }, app), 401, 'AUTH_BAD_SIGNATURE')
    const text = await app.metrics.metrics.render()
    for (const reason of ['missing', 'expired', 'url', 'signature'])
      assert.match(text, new RegExp(`msr_mailbox_auth_failures_total\\{reason="${reason}"\\} 1`), reason)
  })

  it('never writes a token to the logs, not even when a request fails with a 500', async () => {
    const broken = pg.connect()
    await broken.end()
    const app = await buildTestApp(broken, { MAILBOX_RATE_LIMIT_PER_IP: '0' }, { logLevel: 'trace' })
    const signer = newSigner()
    expectError(await getSigned(signer, {}, app), 500, 'INTERNAL')
    assert.ok(app.logs.length > 0, 'the 500 was logged')
    const logs = [...main.logs, ...other.logs, ...app.logs].join('\n')
    assert.ok(sentHeaders.length > 20)
    for (const header of sentHeaders) {
      const token = header.replace(/^\S+\s+/, '')
      if (token.length > 16) assert.ok(!logs.includes(token), 'a token is in the logs')
      const sig = /"sig":"([0-9a-f]{128})"/.exec(Buffer.from(token, 'base64').toString('utf8'))?.[1]
      if (sig) assert.ok(!logs.includes(sig), 'a signature is in the logs')
    }
    assert.ok(!/authorization/i.test(logs), 'no Authorization header is logged')
  })
})
