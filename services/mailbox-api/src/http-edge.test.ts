import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { createServer as createHttpServer, IncomingMessage, ServerResponse } from 'node:http'
import { connect, createServer, type AddressInfo, type Socket } from 'node:net'
import { describe, it } from 'node:test'
import express from 'express'
import { answerClientError, appServerOptions } from './http-edge.js'

/** What a client reads, until the server closes, from a connection the server handles with `act`. */
const served = (act: (socket: Socket) => void): Promise<string> =>
  new Promise((resolve, reject) => {
    const server = createServer(act)
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      let raw = ''
      const client = connect((server.address() as AddressInfo).port, '127.0.0.1')
      client.setEncoding('utf8')
      client.on('data', chunk => (raw += chunk))
      client.on('error', () => undefined)
      client.on('close', () => server.close(() => resolve(raw)))
    })
  })

const failure = (code: string): Error => Object.assign(new Error('parser failure'), { code })

/** Status line, the JSON error, and whether Content-Length is the body's. */
const answer = (raw: string) => {
  const [head = '', body = ''] = raw.split('\r\n\r\n')
  const length = Number(/^Content-Length: (\d+)$/m.exec(head)?.[1])
  return { status: head.split('\r\n')[0], error: (JSON.parse(body) as { error: unknown }).error, complete: length === Buffer.byteLength(body), head }
}

describe('answerClientError', () => {
  for (const [code, status, apiCode] of [
    ['ERR_HTTP_REQUEST_TIMEOUT', 'HTTP/1.1 408 Request Timeout', 'REQUEST_TIMEOUT'],
    ['HPE_HEADER_OVERFLOW', 'HTTP/1.1 431 Request Header Fields Too Large', 'HEADERS_TOO_LARGE'],
    ['HPE_CHUNK_EXTENSIONS_OVERFLOW', 'HTTP/1.1 413 Payload Too Large', 'PAYLOAD_TOO_LARGE'],
    ['HPE_INVALID_METHOD', 'HTTP/1.1 400 Bad Request', 'VALIDATION_FAILED'],
  ] as const)
    it(`answers ${code} with ${status} and the API's JSON error, then closes`, async () => {
      const res = answer(await served(socket => answerClientError(failure(code), socket)))
      assert.equal(res.status, status)
      assert.match(res.head, /^Content-Type: application\/json/m)
      assert.match(res.head, /^Connection: close$/m)
      assert.ok(res.complete, 'Content-Length is the body length')
      assert.equal((res.error as { code: string }).code, apiCode)
    })

  it('writes nothing on a reset connection, one no longer writable, or one whose response has begun; each is closed', async () => {
    assert.equal(await served(socket => answerClientError(failure('ECONNRESET'), socket)), '')
    assert.equal(await served(socket => void socket.end(() => answerClientError(failure('HPE_INVALID_METHOD'), socket))), '')
    const begun = (socket: Socket) => answerClientError(failure('ERR_HTTP_REQUEST_TIMEOUT'), Object.assign(socket, { _httpMessage: { headersSent: true } }))
    assert.equal(await served(begun), '')
  })
})

describe('appServerOptions', () => {
  it("makes each request and response with the app's prototypes already, and Express serves them as usual", async () => {
    const app = express()
    app.set('trust proxy', false)
    const seen: Array<{ request: boolean; response: boolean; node: boolean }> = []
    const server = createHttpServer(appServerOptions(app), (req, res) => {
      seen.push({ request: Object.getPrototypeOf(req) === app.request, response: Object.getPrototypeOf(res) === app.response, node: req instanceof IncomingMessage && res instanceof ServerResponse })
      app(req, res)
    })
    app.post('/echo', express.json(), (req, res) => void res.status(201).json({ got: req.body as unknown, ip: req.ip, json: req.is('application/json') }))
    await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
    try {
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/echo`
      const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"a":1}' })
      assert.equal(res.status, 201)
      assert.deepEqual(await res.json(), { got: { a: 1 }, ip: '127.0.0.1', json: 'application/json' })
      assert.deepEqual(seen, [{ request: true, response: true, node: true }], 'the prototypes are there before Express runs')
    } finally {
      await new Promise(resolve => server.close(resolve))
    }
  })

  /** Bytes V8 promoted in a child serving 3,000 keep-alive requests through Express, with or without the options. */
  const promoted = (withOptions: boolean): number => {
    const script = `
      import express from 'express'
      import { Agent, createServer, request } from 'node:http'
      import { appServerOptions } from ${JSON.stringify(new URL('./http-edge.js', import.meta.url).href)}
      const app = express()
      app.post('/x', express.json(), (req, res) => void res.json({ ok: req.body.n }))
      const server = ${withOptions ? 'createServer(appServerOptions(app), app)' : 'createServer(app)'}
      await new Promise(resolve => server.listen(0, '127.0.0.1', resolve))
      const agent = new Agent({ keepAlive: true, maxSockets: 16 })
      const one = n => new Promise((resolve, reject) => {
        const body = JSON.stringify({ n, pad: 'x'.repeat(1000) })
        const req = request({ port: server.address().port, host: '127.0.0.1', path: '/x', method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': body.length } }, res => { res.resume(); res.on('end', resolve) })
        req.on('error', reject)
        req.end(body)
      })
      let next = 0
      await Promise.all(Array.from({ length: 16 }, async () => { while (next < 3000) await one(next++) }))
      agent.destroy()
      server.close()
      process.stdout.write('done\\n')`
    const child = spawnSync(process.execPath, ['--trace-gc-nvp', '--max-semi-space-size=1', '--input-type=module', '-e', script], { encoding: 'utf8', cwd: new URL('.', import.meta.url).pathname })
    assert.equal(child.status, 0, child.stderr)
    assert.match(child.stdout, /^done$/m)
    return [...child.stdout.matchAll(/gc=s .*? promoted=(\d+)/g)].reduce((sum, m) => sum + Number(m[1]), 0)
  }

  it("keeps Express's per-request objects young: far less is promoted than with Node's own classes", () => {
    const without = promoted(false)
    const withOptions = promoted(true)
    assert.ok(without > 1_000_000, `Express alone promoted ${without} bytes (else this test proves nothing)`)
    assert.ok(withOptions * 5 < without, `promoted ${withOptions} bytes with the options against ${without} without`)
  })
})
