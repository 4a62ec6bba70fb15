// A tiny HTTP server for the client's unit tests: it records every request (raw body included) and
// answers through the test's `reply` (compiled beside the tests, never imported by the library).
import { createServer, type IncomingHttpHeaders, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { checkHttpAuth } from '@msr/nostr'
import { verifyEvent } from 'nostr-tools/pure'

/** One request as the server received it. */
export interface Recorded {
  method: string
  /** The request target (path and query) exactly as sent. */
  target: string
  headers: IncomingHttpHeaders
  body: Buffer
}

/** Answers the `n`-th request (0-based); may also leave it unanswered or destroy the socket. */
export type Reply = (request: Recorded, n: number, res: ServerResponse) => void

/** A listening test server. */
export interface TestServer {
  baseUrl: string
  requests: Recorded[]
  close(): Promise<void>
}

/** Starts a server on a loopback port answering with `reply`. */
export const startServer = async (reply: Reply): Promise<TestServer> => {
  const requests: Recorded[] = []
  const server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (chunk: Buffer) => chunks.push(chunk))
    req.on('end', () => {
      const recorded = { method: req.method ?? '', target: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks) }
      requests.push(recorded)
      reply(recorded, requests.length - 1, res)
    })
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  return {
    baseUrl: `http://127.0.0.1:${port}`,
    requests,
    close: () =>
      new Promise<void>(resolve => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
}

/** Answers `status` with a JSON body and `headers`. */
export const json = (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void => {
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', ...headers })
  res.end(JSON.stringify(body))
}

/** The API's error body. */
export const apiError = (res: ServerResponse, status: number, code: string, headers: Record<string, string> = {}): void =>
  json(res, status, { error: { code, message: `${code} for the test` } }, headers)

/**
 * Asserts a recorded request carries a NIP-98 header the mailbox API accepts for `baseUrl` (the server's
 * own `checkHttpAuth`, then the signature); answers the signed event.
 */
export const acceptedAuth = (request: Recorded, baseUrl: string) => {
  const checked = checkHttpAuth(request.headers.authorization, { url: baseUrl + request.target, method: request.method, body: request.body, now: Math.floor(Date.now() / 1000) })
  if (!checked.ok) throw new Error(`NIP-98 header refused: ${checked.reason}`)
  if (!verifyEvent({ ...checked.value.event })) throw new Error('NIP-98 header has a bad signature')
  return checked.value.event
}
