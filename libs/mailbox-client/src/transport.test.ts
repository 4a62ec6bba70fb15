// Retries, timeouts and error mapping, against a scripted local HTTP server: every attempt is signed
// afresh, only what cannot do harm is retried, and errors carry status, code and Retry-After.
import assert from 'node:assert/strict'
import { createServer, type AddressInfo } from 'node:net'
import { afterEach, describe, it } from 'node:test'
import { generateSecretKey, getPublicKey } from 'nostr-tools/pure'
import { createMailboxAdminClient, createMailboxClient, MailboxApiError, MailboxNetworkError, type MailboxClientOptions } from './index.js'
import { acceptedAuth, apiError, json, startServer, type Reply, type TestServer } from './testing/server.js'

const ID = '0f8fad5b-d9cb-469f-a165-70867728950e'
const RECIPIENT = getPublicKey(generateSecretKey())
const EMPTY_PAGE: Reply = (_req, _n, res) => json(res, 200, { ok: true, items: [] })
const DEPOSITED: Reply = (_req, _n, res) => json(res, 201, { ok: true, id: ID })

const servers: TestServer[] = []
afterEach(async () => {
  await Promise.all(servers.splice(0).map(s => s.close()))
})

/** A server answering request n with replies[n] (the last one for the rest). */
const scripted = async (...replies: Reply[]): Promise<TestServer> => {
  const server = await startServer((req, n, res) => (replies[Math.min(n, replies.length - 1)] as Reply)(req, n, res))
  servers.push(server)
  return server
}

const clientOf = (server: TestServer, options: Partial<MailboxClientOptions> = {}) =>
  createMailboxClient({ baseUrl: server.baseUrl, signer: generateSecretKey(), retryDelayMs: 1, ...options })

const deposit = { recipient: RECIPIENT, content: 'AAEC' }

/** Asserts a MailboxApiError with `status` and `code`; answers it. */
const apiFailure = async (promise: Promise<unknown>, status: number, code: string): Promise<MailboxApiError> => {
  const error = await promise.then(
    () => assert.fail(`expected ${status} ${code}, got a result`),
    (e: unknown) => e,
  )
  assert.ok(error instanceof MailboxApiError, `expected a MailboxApiError, got ${String(error)}`)
  assert.equal(error.status, status)
  assert.equal(error.code, code)
  return error
}

const networkFailure = async (promise: Promise<unknown>, reason: MailboxNetworkError['reason']): Promise<MailboxNetworkError> => {
  const error = await promise.then(
    () => assert.fail('expected a network failure, got a result'),
    (e: unknown) => e,
  )
  assert.ok(error instanceof MailboxNetworkError, `expected a MailboxNetworkError, got ${String(error)}`)
  assert.equal(error.reason, reason)
  return error
}

/** A loopback port nothing listens on. */
const closedPort = (): Promise<number> =>
  new Promise(resolve => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as AddressInfo
      s.close(() => resolve(port))
    })
  })

describe('retries', () => {
  it('retries a 429 after Retry-After with a newly signed event, each accepted by the server’s check', async () => {
    const server = await scripted((_q, _n, res) => apiError(res, 429, 'RATE_LIMITED', { 'Retry-After': '0' }), DEPOSITED)
    assert.deepEqual(await clientOf(server).keyPackages.deposit(deposit), { id: ID })
    assert.equal(server.requests.length, 2)
    const [first, second] = server.requests.map(r => acceptedAuth(r, server.baseUrl))
    // The server's replay guard keys on the signature (the id repeats when both fall in one second).
    assert.notEqual(first?.sig, second?.sig, 'a replayed event would be refused AUTH_REPLAYED')
    assert.equal(server.requests[0]?.body.toString(), server.requests[1]?.body.toString())
  })

  it('gives up after `retries` retries with RATE_LIMITED and retryAfterSeconds', async () => {
    const server = await scripted((_q, _n, res) => apiError(res, 429, 'RATE_LIMITED', { 'Retry-After': '0' }))
    const error = await apiFailure(clientOf(server, { retries: 3 }).keyPackages.list(), 429, 'RATE_LIMITED')
    assert.equal(error.retryAfterSeconds, 0)
    assert.equal(server.requests.length, 4)
    assert.equal(new Set(server.requests.map(r => r.headers.authorization)).size, 4)
    assert.match(error.request, /^GET http:\/\/127\.0\.0\.1:\d+\/api\/v1\/keypackages\?recipient=[0-9a-f]{64}$/)
  })

  it('does not wait for a Retry-After beyond maxRetryWaitMs: the error comes at once', async () => {
    const server = await scripted((_q, _n, res) => apiError(res, 429, 'RATE_LIMITED', { 'Retry-After': '120' }))
    const error = await apiFailure(clientOf(server, { maxRetryWaitMs: 5_000 }).welcomes.list(), 429, 'RATE_LIMITED')
    assert.equal(error.retryAfterSeconds, 120)
    assert.equal(server.requests.length, 1)
  })

  it('reads Retry-After given as an HTTP date', async () => {
    const server = await scripted((_q, _n, res) => apiError(res, 429, 'RATE_LIMITED', { 'Retry-After': new Date(Date.now() + 90_000).toUTCString() }))
    const error = await apiFailure(clientOf(server).keyPackages.list(), 429, 'RATE_LIMITED')
    assert.ok(error.retryAfterSeconds !== undefined && error.retryAfterSeconds >= 88 && error.retryAfterSeconds <= 90, String(error.retryAfterSeconds))
  })

  it('retries a 503 (a deposit only when it is the API’s own UNAVAILABLE, answered before anything is stored)', async () => {
    const unavailable: Reply = (_q, _n, res) => apiError(res, 503, 'UNAVAILABLE')
    const proxy503: Reply = (_q, _n, res) => void res.writeHead(503, { 'content-type': 'text/html' }).end('<h1>Service Unavailable</h1>')
    const a = await scripted(unavailable, DEPOSITED)
    assert.deepEqual(await clientOf(a).keyPackages.deposit(deposit), { id: ID })
    assert.equal(a.requests.length, 2)
    const b = await scripted(proxy503, DEPOSITED)
    const error = await apiFailure(clientOf(b).keyPackages.deposit(deposit), 503, 'UNEXPECTED_RESPONSE')
    assert.equal(b.requests.length, 1)
    assert.doesNotMatch(error.message, /Service Unavailable/, 'no body text in messages')
    const c = await scripted(proxy503, EMPTY_PAGE)
    assert.deepEqual(await clientOf(c).keyPackages.list(), { items: [] })
    assert.equal(c.requests.length, 2)
  })

  it('never retries another 4xx, or a 500', async () => {
    for (const [status, code] of [[400, 'VALIDATION_FAILED'], [401, 'AUTH_REPLAYED'], [403, 'FORBIDDEN'], [413, 'PAYLOAD_TOO_LARGE'], [500, 'INTERNAL']] as const) {
      const server = await scripted((_q, _n, res) => apiError(res, status, code), EMPTY_PAGE)
      const error = await apiFailure(clientOf(server).keyPackages.list(), status, code)
      assert.equal(error.message, `${code} for the test`)
      assert.equal(error.retryAfterSeconds, undefined)
      assert.equal(server.requests.length, 1, `${status} was retried`)
    }
  })

  it('retries a read whose connection broke, but not a deposit, which may have been stored', async () => {
    const drop: Reply = (_q, _n, res) => void res.socket?.destroy()
    const a = await scripted(drop, EMPTY_PAGE)
    assert.deepEqual(await clientOf(a).dmHints.list(), { items: [] })
    assert.equal(a.requests.length, 2)
    const b = await scripted(drop, DEPOSITED)
    const error = await networkFailure(clientOf(b).keyPackages.deposit({ recipient: RECIPIENT, content: 'c2VjcmV0LWNvbnRlbnQ=' }), 'network')
    assert.equal(b.requests.length, 1)
    assert.ok(error.message.startsWith(`POST ${b.baseUrl}/api/v1/keypackages: `), error.message)
    assert.doesNotMatch(error.message, /c2VjcmV0|Nostr /, 'neither body nor token in the message')
  })

  it('retries a deposit that could not connect (nothing was sent), then reports the URL', async () => {
    const baseUrl = `http://127.0.0.1:${await closedPort()}`
    let calls = 0
    const counting: typeof fetch = (input, init) => (calls++, fetch(input, init))
    const client = createMailboxClient({ baseUrl, signer: generateSecretKey(), fetch: counting, retries: 2, retryDelayMs: 1 })
    const error = await networkFailure(client.keyPackages.deposit(deposit), 'connect')
    assert.equal(calls, 3)
    assert.match(error.message, new RegExp(`^POST ${baseUrl}/api/v1/keypackages: could not connect \\(ECONNREFUSED\\)$`))
  })

  it('times out an attempt without an answer: a read is retried, a deposit is not', async () => {
    const silent: Reply = () => undefined
    const a = await scripted(silent)
    const error = await networkFailure(clientOf(a, { timeoutMs: 100, retries: 1 }).keyPackages.list(), 'timeout')
    assert.match(error.message, /no answer within 100 ms$/)
    assert.equal(a.requests.length, 2)
    const b = await scripted(silent)
    await networkFailure(clientOf(b, { timeoutMs: 100, retries: 1 }).welcomes.deposit({ recipient: RECIPIENT, groupId: 'g', welcome: 'AAAA' }), 'timeout')
    assert.equal(b.requests.length, 1)
  })
})

describe('answers', () => {
  it('maps an answer that is not the API’s (HTML, not JSON, wrong shape) to UNEXPECTED_RESPONSE', async () => {
    const html = await scripted((_q, _n, res) => void res.writeHead(502, { 'content-type': 'text/html' }).end('<h1>Bad Gateway</h1>'))
    await apiFailure(clientOf(html).keyPackages.list(), 502, 'UNEXPECTED_RESPONSE')
    assert.equal(html.requests.length, 1)
    const text = await scripted((_q, _n, res) => void res.writeHead(200, { 'content-type': 'text/plain' }).end('ok'))
    await apiFailure(clientOf(text).keyPackages.list(), 200, 'UNEXPECTED_RESPONSE')
    const shape = await scripted((_q, _n, res) => json(res, 200, { ok: true, items: [{ id: 1 }] }))
    const error = await apiFailure(clientOf(shape).keyPackages.list(), 200, 'UNEXPECTED_RESPONSE')
    assert.match(error.message, /id is not a string/)
  })

  it('follows no redirect: the token and the signed URL stay with the configured API', async () => {
    const target = await scripted(EMPTY_PAGE)
    const server = await scripted((_q, _n, res) => void res.writeHead(307, { location: `${target.baseUrl}/api/v1/groups` }).end())
    const admin = createMailboxAdminClient({ baseUrl: server.baseUrl, token: 'admin-token-0123456789abcdef' })
    const error = await apiFailure(admin.groups.list(), 307, 'UNEXPECTED_RESPONSE')
    assert.match(error.message, /redirected/)
    assert.equal(target.requests.length, 0)
  })

  it('decodes items: artifacts as bytes and as sent, tags [] when none, camelCase fields, next cursor', async () => {
    const item = { id: ID, recipient: RECIPIENT, sender: RECIPIENT, created_at: 10, expires_at: 20, picked_up_at: 11 }
    const server = await scripted(
      (_q, _n, res) => json(res, 200, { ok: true, items: [{ ...item, content_b64: 'AAEC', tags: [['a', 'b']] }, { ...item, content_b64: '/w==' }], next_cursor: 'czo1' }),
      (_q, _n, res) => json(res, 200, { ok: true, items: [{ ...item, group_id: 'g', welcome_b64: 'AQ==', ratchet_tree_b64: 'Ag==' }, { ...item, group_id: 'g', welcome_b64: 'AQ==' }] }),
    )
    const client = clientOf(server)
    const page = await client.keyPackages.list()
    assert.deepEqual(page, {
      items: [
        { id: ID, recipient: RECIPIENT, sender: RECIPIENT, createdAt: 10, expiresAt: 20, pickedUpAt: 11, content: new Uint8Array([0, 1, 2]), contentB64: 'AAEC', tags: [['a', 'b']] },
        { id: ID, recipient: RECIPIENT, sender: RECIPIENT, createdAt: 10, expiresAt: 20, pickedUpAt: 11, content: new Uint8Array([255]), contentB64: '/w==', tags: [] },
      ],
      nextCursor: 'czo1',
    })
    const welcomes = await client.welcomes.list()
    assert.deepEqual(welcomes.items[0]?.ratchetTree, new Uint8Array([2]))
    assert.equal(welcomes.items[0]?.ratchetTreeB64, 'Ag==')
    assert.equal('ratchetTree' in (welcomes.items[1] ?? {}), false)
  })
})

describe('the admin client', () => {
  it('sends the token as a Bearer header, and never puts it in an error', async () => {
    const token = 'admin-token-0123456789abcdef'
    const server = await scripted((_q, _n, res) => apiError(res, 401, 'ADMIN_AUTH_REQUIRED'))
    const admin = createMailboxAdminClient({ baseUrl: server.baseUrl, token })
    const error = await apiFailure(admin.groups.upsert({ groupId: 'g', displayName: null }), 401, 'ADMIN_AUTH_REQUIRED')
    assert.equal(server.requests[0]?.headers.authorization, `Bearer ${token}`)
    assert.deepEqual(JSON.parse(server.requests[0]?.body.toString() ?? ''), { group_id: 'g', display_name: null })
    assert.doesNotMatch(`${error.message} ${error.request} ${error.stack}`, new RegExp(token))
    const offline = createMailboxAdminClient({ baseUrl: `http://127.0.0.1:${await closedPort()}`, token, retries: 0 })
    const down = await networkFailure(offline.groups.list(), 'connect')
    assert.doesNotMatch(`${down.message} ${down.stack}`, new RegExp(token))
  })
})
