// The load generator's HTTP client: node:http over keep-alive sockets, one request at a time per socket.
import { Agent, request, type OutgoingHttpHeaders } from 'node:http'

/** The API's answer to one request; status 0 when the request failed without one (the error is the body). */
export interface Answer {
  status: number
  body: Buffer
  /** From the call to the last byte of the response. */
  ms: number
}

/** Sends requests to one API instance. */
export interface HttpClient {
  send(method: string, path: string, headers: OutgoingHttpHeaders, body?: Uint8Array): Promise<Answer>
  /** Closes the idle keep-alive sockets. */
  close(): void
}

/** No request should take this long; one that does is reported as failed. */
const TIMEOUT_MS = 30_000

/** A client keeping up to `sockets` connections to 127.0.0.1:port open between requests. */
export const createClient = (port: number, sockets: number): HttpClient => {
  const agent = new Agent({ keepAlive: true, maxSockets: sockets, maxFreeSockets: sockets })
  const send = (method: string, path: string, headers: OutgoingHttpHeaders, body?: Uint8Array): Promise<Answer> =>
    new Promise(resolve => {
      const started = performance.now()
      const failed = (error: Error) => resolve({ status: 0, body: Buffer.from(error.message), ms: performance.now() - started })
      const req = request({ host: '127.0.0.1', port, method, path, agent, headers, timeout: TIMEOUT_MS }, res => {
        const chunks: Buffer[] = []
        res.on('data', (chunk: Buffer) => chunks.push(chunk))
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks), ms: performance.now() - started }))
        res.on('error', failed)
      })
      req.on('error', failed)
      req.on('timeout', () => req.destroy(new Error(`no answer within ${TIMEOUT_MS / 1000} s`)))
      req.end(body)
    })
  return { send, close: () => agent.destroy() }
}

/**
 * The client address a key's requests come from, sent as X-Forwarded-For (the API runs with
 * TRUSTED_PROXIES=1, as on Cloud Run), so that per-IP budgets are spread as they would be in production
 * instead of all landing on one 127.0.0.1 row.
 */
export const clientAddress = (key: number): string => `10.${(key >> 16) & 255}.${(key >> 8) & 255}.${key & 255}`
