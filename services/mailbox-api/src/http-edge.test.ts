import assert from 'node:assert/strict'
import { connect, createServer, type AddressInfo, type Socket } from 'node:net'
import { describe, it } from 'node:test'
import { answerClientError } from './http-edge.js'

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
