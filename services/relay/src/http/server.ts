import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { WebSocketServer, type ServerOptions, type WebSocket } from 'ws'
import { relayInformation, wantsRelayInformation, type RelayInformation } from '@msr/nostr'
import { safeEqual } from '@msr/telemetry'

/** What the HTTP side needs from the rest of the relay. */
export interface HttpDeps {
  /** The NIP-11 document (rebuilt by the caller when configuration changes). */
  information: () => RelayInformation
  /** True when the relay can serve traffic (store open, not shutting down). */
  ready: () => boolean
  /** The metrics key when /metrics is enabled, else undefined (then /metrics is a 404). */
  metricsKey: () => string | undefined
  /** The Prometheus text and its content type. */
  renderMetrics: () => Promise<{ body: string; contentType: string }>
  /** The admin key when set, else undefined (then /admin/* is a 404). */
  adminKey: () => string | undefined
  /** The store's fingerprint (GET /admin/fingerprint). */
  fingerprint: () => Promise<unknown>
  /** The client's address (TCP peer or trusted X-Forwarded-For entry). */
  clientIp: (request: IncomingMessage) => string
  /** Whether another connection from this address is allowed. */
  admits: (ip: string) => boolean
  /** Called when an upgrade is refused, with why (for metrics). */
  onRefused: (reason: string) => void
  /** Hands an upgraded socket to the relay. */
  onConnection: (socket: WebSocket, ip: string) => void
  maxPayload: number
  perMessageDeflate: boolean
  pingIntervalMs: number
}

const CORS = {
  'Access-Control-Allow-Origin': '*',
  'Access-Control-Allow-Headers': 'Accept, Content-Type',
  'Access-Control-Allow-Methods': 'GET, OPTIONS',
}

/** One port for WebSocket, the NIP-11 document, /healthz and /readyz. */
export const createHttpServer = (deps: HttpDeps): { server: Server; wss: WebSocketServer } => {
  // Every ping is answered (ws's default ends a connection with more than 60 pongs not yet written,
  // silently: a burst of pings is no offence); the relay stops reading a client that does not read its
  // pongs instead (Client.checkBackpressure).
  const options: ServerOptions & { maxPendingAutoPongs: number } = {
    noServer: true,
    maxPayload: deps.maxPayload,
    perMessageDeflate: deps.perMessageDeflate,
    maxPendingAutoPongs: 0, // 0: no limit (@types/ws does not know the option yet)
  }
  const wss = new WebSocketServer(options)
  const server = createServer((req, res) => route(deps, req, res))
  server.on('upgrade', (req, socket, head) => {
    socket.on('error', ignoreError)
    const ip = deps.clientIp(req)
    if (!deps.admits(ip)) {
      deps.onRefused('connections_per_ip')
      const body = 'rate-limited: too many connections from your address\n'
      socket.end(`HTTP/1.1 429 Too Many Requests\r\nContent-Type: text/plain\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`)
      return
    }
    // Nothing here may keep `req`: a closure made in this scope would hold it (and its headers) for the
    // whole life of the connection (about 1 KB each).
    wss.handleUpgrade(req, socket, head, ws => {
      wss.emit('connection', ws)
      deps.onConnection(ws, ip)
    })
  })
  startHeartbeat(wss, deps.pingIntervalMs)
  return { server, wss }
}

/** A socket error before or during the upgrade: the socket is closed by then; defined once, so it holds nothing. */
const ignoreError = (): void => undefined

/**
 * The path a request names: from the usual origin form (`/path?query`), or from the absolute form
 * (`http://host/path`, which RFC 9112 §3.2.2 has servers accept, as a proxy may send it). Nothing else
 * is read as a URL: `//metrics` stays that path, not a host.
 */
const pathOf = (target = '/'): string => {
  if (/^https?:\/\//i.test(target))
    try {
      return new URL(target).pathname
    } catch {
      return target
    }
  return target.split('?')[0] ?? target
}

const route = (deps: HttpDeps, req: IncomingMessage, res: ServerResponse): void => {
  const path = pathOf(req.url)
  if (req.method === 'OPTIONS') return void res.writeHead(204, CORS).end()
  if (req.method !== 'GET' && req.method !== 'HEAD') return send(res, 405, 'text/plain', 'method not allowed\n', { Allow: 'GET, HEAD, OPTIONS' })
  if (path === '/healthz') return send(res, 200, 'text/plain', 'ok\n')
  if (path === '/readyz') return deps.ready() ? send(res, 200, 'text/plain', 'ready\n') : send(res, 503, 'text/plain', 'not ready\n')
  if (path === '/metrics') return void serveMetrics(deps, req, res)
  if (path === '/admin/fingerprint') return void serveAdmin(deps, req, res, deps.fingerprint)
  if (path === '/' && wantsRelayInformation(req.headers.accept))
    return send(res, 200, 'application/nostr+json', JSON.stringify(relayInformation(deps.information())), CORS)
  if (path === '/') return send(res, 200, 'text/plain', 'This is a Nostr relay: connect with a WebSocket client (NIP-01).\n')
  send(res, 404, 'text/plain', 'not found\n')
}

/** The key a request presents: `Authorization: Bearer <key>`, or `?auth=<key>` for rnostr compatibility. */
const presentedKey = (req: IncomingMessage): string | undefined => {
  const bearer = /^Bearer\s+(.+)$/i.exec(req.headers.authorization ?? '')?.[1]
  if (bearer) return bearer.trim()
  return new URL(req.url ?? '/', 'http://relay').searchParams.get('auth') ?? undefined
}

/** /metrics with the right key; a 404 for anything else, so the endpoint does not reveal itself. */
const serveMetrics = async (deps: HttpDeps, req: IncomingMessage, res: ServerResponse): Promise<void> => {
  const key = deps.metricsKey()
  const presented = presentedKey(req)
  if (key === undefined || presented === undefined || !safeEqual(presented, key)) return send(res, 404, 'text/plain', 'not found\n')
  try {
    const { body, contentType } = await deps.renderMetrics()
    send(res, 200, contentType, body)
  } catch {
    send(res, 500, 'text/plain', 'error: metrics could not be rendered\n')
  }
}

/**
 * An admin endpoint: only with `Authorization: Bearer <admin key>` (never a query parameter, which request
 * logs keep), compared in constant time; a 404 otherwise, as for /metrics.
 */
const serveAdmin = async (deps: HttpDeps, req: IncomingMessage, res: ServerResponse, answer: () => Promise<unknown>): Promise<void> => {
  const key = deps.adminKey()
  const presented = /^Bearer\s+(.+)$/i.exec(req.headers.authorization ?? '')?.[1]?.trim()
  if (key === undefined || presented === undefined || !safeEqual(presented, key)) return send(res, 404, 'text/plain', 'not found\n')
  try {
    send(res, 200, 'application/json', `${JSON.stringify(await answer())}\n`)
  } catch {
    send(res, 500, 'text/plain', 'error: the answer could not be computed\n')
  }
}

const send = (res: ServerResponse, status: number, type: string, body: string, headers: Record<string, string> = {}): void => {
  res.writeHead(status, { 'Content-Type': type, 'Content-Length': Buffer.byteLength(body), 'Cache-Control': 'no-store', ...headers })
  res.end(body)
}

/** Pings every client each interval; one that did not answer the previous ping is terminated. */
const startHeartbeat = (wss: WebSocketServer, intervalMs: number): void => {
  const alive = new WeakSet<WebSocket>()
  // One listener for every socket (ws calls it with the socket as `this`), not a closure per connection.
  function markAlive(this: WebSocket): void {
    alive.add(this)
  }
  wss.on('connection', (ws: WebSocket) => {
    alive.add(ws)
    ws.on('pong', markAlive)
  })
  const timer = setInterval(() => {
    for (const ws of wss.clients) {
      if (!alive.has(ws)) ws.terminate()
      else {
        alive.delete(ws)
        ws.ping()
      }
    }
  }, intervalMs)
  timer.unref()
  wss.on('close', () => clearInterval(timer))
}
