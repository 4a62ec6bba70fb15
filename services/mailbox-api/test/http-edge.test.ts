// Answers given before the app reads a request, over raw TCP against the real listening server: what Node's
// HTTP parser refuses, and bodies declared larger than a route takes. Each is the API's JSON error, then a close.
import assert from 'node:assert/strict'
import { connect } from 'node:net'
import { after, before, describe, it } from 'node:test'
import { createLogger } from '@msr/telemetry'
import { startMailbox, type RunningMailbox } from '../src/main.js'
import { apiError, startPostgres, testConfig, type TestPostgres } from './harness.js'

const PUSH_TOKEN = 'push-token-of-good-length'
const ADMIN_TOKEN = 'admin-token-for-tests-0123456789'

let pg: TestPostgres
let mailbox: RunningMailbox
const logs: string[] = []

before(async () => {
  pg = await startPostgres()
  const logger = createLogger({ service: 'mailbox-test', level: 'warn', destination: { write: (line: string) => void logs.push(line) } })
  const config = testConfig({ PORT: '0', HINTS_PUSH_TOKEN: PUSH_TOKEN, ADMIN_TOKEN })
  mailbox = await startMailbox(config, { logger, defaultMetrics: false, database: { pool: pg.pool, gatePool: pg.pool, describe: 'test database', close: async () => undefined } })
})

after(async () => {
  await mailbox?.close()
  await pg?.close()
})

/** Everything the server wrote on one connection until it closed it (or `waitMs` passed: `closed` false). */
const exchange = (text: string, waitMs = 30_000): Promise<{ raw: string; closed: boolean }> =>
  new Promise(resolve => {
    const socket = connect(mailbox.port, '127.0.0.1')
    let raw = ''
    const timer = setTimeout(() => {
      socket.destroy()
      resolve({ raw, closed: false })
    }, waitMs)
    socket.setEncoding('utf8')
    socket.on('data', chunk => (raw += chunk))
    // A reset after the answer is the server closing; what it wrote before is kept.
    socket.on('error', () => undefined)
    socket.on('close', () => {
      clearTimeout(timer)
      resolve({ raw, closed: true })
    })
    socket.write(text)
  })

/** Status, headers (lowercase names) and body of a raw HTTP/1.1 response. */
const parseResponse = (raw: string) => {
  const end = raw.indexOf('\r\n\r\n')
  const [statusLine = '', ...lines] = (end < 0 ? raw : raw.slice(0, end)).split('\r\n')
  const headers = Object.fromEntries(lines.map(line => [line.slice(0, line.indexOf(':')).toLowerCase(), line.slice(line.indexOf(':') + 1).trim()]))
  return { status: Number(statusLine.split(' ')[1]), headers, body: end < 0 ? '' : raw.slice(end + 4) }
}

/** Asserts a complete JSON error answer `status` / `code` on a connection the server then closed. */
const expectRawError = (exchanged: { raw: string; closed: boolean }, status: number, code: string): { code: string; message: string } => {
  const res = parseResponse(exchanged.raw)
  assert.equal(res.status, status, `status line of ${JSON.stringify(exchanged.raw.slice(0, 300))}`)
  assert.match(res.headers['content-type'] ?? '', /^application\/json/, 'a JSON content type')
  assert.equal(Number(res.headers['content-length']), Buffer.byteLength(res.body), 'a complete body')
  assert.equal(res.headers.connection?.toLowerCase(), 'close')
  assert.ok(exchanged.closed, 'the server closed the connection')
  const error = apiError(JSON.parse(res.body))
  assert.equal(error.code, code, error.message)
  return error
}

const errorLogged = (): string[] => logs.filter(line => (JSON.parse(line) as { severity?: string }).severity === 'ERROR')

describe("requests Node's HTTP parser refuses", () => {
  it('a 20 KB Authorization header: 431 HEADERS_TOO_LARGE as JSON, never echoing it', async () => {
    const token = `Nostr ${'QUFB'.repeat(5000)}`
    const exchanged = await exchange(`GET /api/v1/groups/g1 HTTP/1.1\r\nHost: mailbox.test\r\nAuthorization: ${token}\r\n\r\n`)
    expectRawError(exchanged, 431, 'HEADERS_TOO_LARGE')
    assert.doesNotMatch(exchanged.raw, /QUFBQUFB/)
  })

  it('a garbage request line: 400 VALIDATION_FAILED as JSON, never echoing it', async () => {
    const exchanged = await exchange('<script>alert(1)</script> GARBAGE\r\n\r\n')
    expectRawError(exchanged, 400, 'VALIDATION_FAILED')
    assert.doesNotMatch(exchanged.raw, /script|GARBAGE/)
  })

  it('bad chunked framing (a chunk size that is not hex): 400 VALIDATION_FAILED as JSON', async () => {
    const head = 'POST /api/v1/keypackages HTTP/1.1\r\nHost: mailbox.test\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n'
    expectRawError(await exchange(`${head}zz\r\n{}\r\n`), 400, 'VALIDATION_FAILED')
  })

  it('a Transfer-Encoding that does not end in chunked, or beside a Content-Length: 400 VALIDATION_FAILED as JSON', async () => {
    const start = 'POST /api/v1/keypackages HTTP/1.1\r\nHost: mailbox.test\r\nContent-Type: application/json\r\n'
    expectRawError(await exchange(`${start}Transfer-Encoding: chunked, identity\r\n\r\n{}`), 400, 'VALIDATION_FAILED')
    expectRawError(await exchange(`${start}Content-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n{}`), 400, 'VALIDATION_FAILED')
  })

  it('no Host header: answered by the API as any request is (Node would answer a bare 400 itself)', async () => {
    const missing = await exchange('GET /api/v1/groups/g1 HTTP/1.1\r\nConnection: close\r\n\r\n')
    expectRawError(missing, 401, 'AUTH_REQUIRED')
    const { status, headers } = parseResponse((await exchange('GET /api/v1/openapi.json HTTP/1.1\r\nConnection: close\r\n\r\n')).raw)
    assert.equal(status, 200)
    assert.match(headers['content-type'] ?? '', /^application\/json/)
  })

  it("OPTIONS that is no CORS preflight: an empty 204 on every route, never express's text/plain list", async () => {
    for (const path of ['/api/v1/groups', '/api/v1/keypackages', '/internal/pubsub/push', '/healthz']) {
      const { status, headers, body } = parseResponse((await exchange(`OPTIONS ${path} HTTP/1.1\r\nHost: mailbox.test\r\nConnection: close\r\n\r\n`)).raw)
      assert.equal(status, 204, path)
      assert.equal(headers['content-type'], undefined, path)
      assert.equal(body, '', path)
    }
  })

  it('logs none of them as an error', () => {
    assert.deepEqual(errorLogged(), [])
  })
})

describe('a body declared larger than the route takes', () => {
  const GIANT = 1_000_000_000_000_000

  type Counter = { get(): Promise<{ values: { value: number }[] }> }
  const total = async (counter: Counter) => (await counter.get()).values.reduce((s, v) => s + v.value, 0)

  for (const [method, path] of [
    ['POST', '/api/v1/keypackages'],
    ['POST', '/api/v1/welcome'],
    ['POST', '/api/v1/keypackages/1b7f0a0e-59c6-4d5a-9d7e-3a4c0c1e2f30/ack'],
    ['POST', '/api/v1/groups'],
    ['GET', '/api/v1/dm-hints'],
    ['POST', '/internal/pubsub/push'],
  ])
    it(`${method} ${path} with Content-Length ${GIANT} and 2 bytes: 413 PAYLOAD_TOO_LARGE from the header alone, before authentication, then closed`, async () => {
      const failures = [await total(mailbox.metrics.authFailures), await total(mailbox.metrics.pushAuthFailures)]
      const head = `${method} ${path} HTTP/1.1\r\nHost: mailbox.test\r\nContent-Type: application/json\r\nContent-Length: ${GIANT}\r\n\r\n`
      expectRawError(await exchange(`${head}{}`), 413, 'PAYLOAD_TOO_LARGE')
      assert.deepEqual([await total(mailbox.metrics.authFailures), await total(mailbox.metrics.pushAuthFailures)], failures, 'no authentication was attempted')
    })

  it('Expect: 100-continue with a body over the limit: 413 at once, never 100 Continue', async () => {
    for (const path of ['/api/v1/keypackages', '/internal/pubsub/push']) {
      const head = `POST ${path} HTTP/1.1\r\nHost: mailbox.test\r\nContent-Type: application/json\r\nContent-Length: 5000000\r\nExpect: 100-continue\r\n\r\n`
      const exchanged = await exchange(head)
      assert.doesNotMatch(exchanged.raw, /^HTTP\/1\.1 100/, path)
      expectRawError(exchanged, 413, 'PAYLOAD_TOO_LARGE')
    }
  })

  it('Expect: 100-continue within the limit: 100 Continue, then the body is read and authenticated', async () => {
    const socket = connect(mailbox.port, '127.0.0.1')
    try {
      socket.setEncoding('utf8')
      let raw = ''
      socket.on('data', chunk => (raw += chunk))
      /** Resolves once what was received matches; fails, showing it, after 10 s. */
      const received = async (pattern: RegExp, what: string) => {
        for (const started = Date.now(); !pattern.test(raw); await new Promise(resolve => setTimeout(resolve, 10)))
          if (Date.now() - started > 10_000) assert.fail(`no ${what} in ${JSON.stringify(raw)}`)
      }
      socket.write('POST /api/v1/keypackages HTTP/1.1\r\nHost: mailbox.test\r\nContent-Type: application/json\r\nContent-Length: 2\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n')
      await received(/^HTTP\/1\.1 100 Continue\r\n\r\n/, '100 Continue')
      socket.write('{}')
      await received(/^HTTP\/1\.1 100 Continue\r\n\r\nHTTP\/1\.1 .*\r\n\r\n\{.*\}$/s, 'final answer')
      const final = parseResponse(raw.slice(raw.indexOf('\r\n\r\n') + 4))
      assert.equal(final.status, 401)
      assert.equal(apiError(JSON.parse(final.body)).code, 'AUTH_REQUIRED')
    } finally {
      socket.destroy()
    }
  })

  it('a declared size within the limit is still read and authenticated as before', async () => {
    const exchanged = await exchange('POST /api/v1/keypackages HTTP/1.1\r\nHost: mailbox.test\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}')
    expectRawError(exchanged, 401, 'AUTH_REQUIRED')
  })
})
