// What is refused before the app reads a request: a body declared larger than a route takes, and what
// Node's HTTP parser gives up on. Each gets the API's `{ error: { code, message } }`, then a closed connection.
import { IncomingMessage, ServerResponse, STATUS_CODES, type ServerOptions } from 'node:http'
import type { Socket } from 'node:net'
import type { Duplex } from 'node:stream'
import type { Express, RequestHandler } from 'express'
import { ApiError, type ErrorCode } from './errors.js'

/**
 * Refuses a request whose Content-Length declares more than `limit` bytes: 413 from the header alone,
 * before authentication or any read, closing the connection (the body is never read, nor waited for).
 * A request within the limit that asks `Expect: 100-continue` is told to send its body here (the server
 * leaves that answer to the app: `checkContinue` in main.ts), so a refused one never hears 100 Continue.
 */
export const refuseDeclaredOver =
  (limit: number): RequestHandler =>
  (req, res, next) => {
    if (Number(req.headers['content-length'] ?? 0) <= limit) {
      if (/^100-continue$/i.test(req.headers.expect ?? '')) res.writeContinue()
      return next()
    }
    next(new ApiError(413, 'PAYLOAD_TOO_LARGE', `the request body is larger than this route accepts (${limit} bytes)`, { Connection: 'close' }))
  }

type Answer = readonly [status: number, code: ErrorCode, message: string]

/**
 * Node's parser errors (llhttp's HPE_* codes, and its request timeout) by code; any other is a 400.
 */
const ANSWERS: Readonly<Record<string, Answer>> = {
  HPE_HEADER_OVERFLOW: [431, 'HEADERS_TOO_LARGE', 'the request line and headers are larger than this server accepts (16 KiB)'],
  HPE_CHUNK_EXTENSIONS_OVERFLOW: [413, 'PAYLOAD_TOO_LARGE', 'the chunk extensions are larger than this server accepts'],
  ERR_HTTP_REQUEST_TIMEOUT: [408, 'REQUEST_TIMEOUT', 'the request was not received in time'],
}
const MALFORMED: Answer = [400, 'VALIDATION_FAILED', 'the request is not valid HTTP/1.1']

/** A complete HTTP/1.1 response carrying the API's error body; it closes the connection. */
export const errorResponse = ([status, code, message]: Answer): string => {
  const body = JSON.stringify({ error: { code, message } })
  const head = [
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}`,
    'Content-Type: application/json; charset=utf-8',
    `Content-Length: ${Buffer.byteLength(body)}`,
    'X-Content-Type-Options: nosniff',
    'Connection: close',
  ]
  return `${head.join('\r\n')}\r\n\r\n${body}`
}

/** Whether a response on this connection has begun, which another answer would corrupt (Node's own default checks the same). */
const answering = (socket: Duplex): boolean => (socket as Duplex & { _httpMessage?: { headersSent?: boolean } })._httpMessage?.headersSent === true

/**
 * The server's 'clientError' listener, replacing Node's bare answers: 431 for headers over Node's limit,
 * 408 for a request timeout, 400 for anything else malformed, as JSON; written only to a socket still
 * writable with no response begun, never echoing the input (nor logged: any client can cause one). The
 * socket is then destroyed, as Node's default does.
 */
export const answerClientError = (error: Error & { code?: string }, socket: Duplex): void => {
  if (error.code !== 'ECONNRESET' && socket.writable && !answering(socket)) socket.write(errorResponse(ANSWERS[error.code ?? ''] ?? MALFORMED))
  socket.destroy()
}

/**
 * The server's request and response classes for `app`: Node's, with Express's `app.request` and
 * `app.response` as their prototypes from the start.
 *
 * Express gives each request and response those prototypes with `Object.setPrototypeOf` (app.handle).
 * On an object that already has the prototype V8 does nothing; on one that has not, it changes the
 * object's map, and under load whatever the request reached survived young collections and was promoted:
 * 3.3 MB per young collection with 32 keep-alive clients on a bare Express app (none with these classes),
 * 2 MB and 5 ms pauses in the mailbox bench. `http.createServer(app)` alone keeps the default classes.
 */
export const appServerOptions = (app: Express): Pick<ServerOptions, 'IncomingMessage' | 'ServerResponse'> => {
  function AppRequest(this: IncomingMessage, socket: Socket): void {
    IncomingMessage.call(this, socket)
  }
  AppRequest.prototype = app.request
  // Node's constructor takes (req, options): whatever the server passes goes on.
  function AppResponse(this: ServerResponse, ...args: [IncomingMessage, ...unknown[]]): void {
    Reflect.apply(ServerResponse, this, args)
  }
  AppResponse.prototype = app.response
  return { IncomingMessage: AppRequest as unknown as typeof IncomingMessage, ServerResponse: AppResponse as unknown as typeof ServerResponse }
}
