import type { WebSocket } from 'ws'
import type { Logger } from '@msr/telemetry'
import { handleAuth, sendChallenge } from './connection/auth.js'
import { Client, type DropCause } from './connection/client.js'
import type { RelayMetrics } from './metrics.js'
import { FanOut } from './pipeline/fanout.js'
import { createIngest, ingestSettled } from './pipeline/ingest.js'
import { parseMessage, type ClientMessage } from './pipeline/parse.js'
import type { VerifierPool } from '@msr/workers'
import { Writer, type Committed } from './pipeline/writer.js'
import { visibleTo } from './policies/access.js'
import type { Settings } from './settings.js'
import type { EventStore } from './store/event-store.js'
import { LiveIndex } from './subscriptions/live-index.js'
import type { QueryPool } from './subscriptions/query-pool.js'
import { closeSubscription, handleCount, handleReq, type RequestDeps } from './subscriptions/requests.js'

/** What the relay is built from; main.ts wires these. */
export interface RelayDeps {
  settings: Settings
  store: EventStore
  verifier: VerifierPool
  queries: QueryPool
  logger: Logger
  metrics: RelayMetrics
  /** Observes each committed batch after fan-out was handed it (the hint drainer's wake-up). */
  onCommitted?: (batch: Committed[]) => void
  /** Unix seconds. */
  now?: () => number
}

/** The protocol core: connections in, messages dispatched to the EVENT, REQ and AUTH paths. */
export class Relay {
  readonly live = new LiveIndex()
  readonly writer: Writer
  readonly fanOut: FanOut
  readonly clients = new Set<Client>()
  private readonly perIp = new Map<string, number>()
  private readonly ingest: ReturnType<typeof createIngest>
  private readonly requests: RequestDeps
  private readonly now: () => number

  constructor(private readonly deps: RelayDeps) {
    this.now = deps.now ?? (() => Math.floor(Date.now() / 1000))
    const { settings, metrics } = deps
    const visible = (s: { client: Client }, e: Parameters<typeof visibleTo>[2]) =>
      visibleTo(settings.current.access.privateKinds, s.client.authed, e)
    this.fanOut = new FanOut(this.live, n => metrics.deliveries.inc(n), visible)
    const committed = (batch: Committed[]) => {
      this.fanOut.enqueue(batch)
      deps.onCommitted?.(batch)
    }
    this.writer = new Writer(deps.store, committed, error => deps.logger.error({ err: error }, 'store write failed'))
    this.ingest = createIngest({
      settings,
      verifier: deps.verifier,
      writer: this.writer,
      fanOut: valid => this.fanOut.enqueue([valid]),
      metrics,
      now: this.now,
    })
    this.requests = { settings, queries: deps.queries, live: this.live, metrics, now: this.now }
  }

  /** Whether one more connection from this address is allowed (`[rate_limiter] max_connections_per_ip`). */
  admits(ip: string): boolean {
    const max = this.deps.settings.current.limits.maxConnectionsPerIp
    return max === 0 || (this.perIp.get(ip) ?? 0) < max
  }

  /** Takes over a freshly upgraded WebSocket; sends the NIP-42 challenge when auth is enabled. */
  connect(socket: WebSocket, ip: string): Client {
    const { config, access } = this.deps.settings.current
    const client = new Client(socket, ip, {
      maxOutboundBytes: config.network.max_outbound_buffer,
      slowGraceMs: config.network.slow_client_grace,
      onDrop: (c, cause) => this.onDrop(c, cause),
      onAuthRequired: c => this.deps.settings.current.access.authEnabled && sendChallenge(c),
    })
    this.clients.add(client)
    this.perIp.set(ip, (this.perIp.get(ip) ?? 0) + 1)
    this.deps.metrics.connections.inc()
    this.deps.metrics.connectionsTotal.inc()
    socket.on('message', (data, isBinary) => this.receive(client, data as Buffer, isBinary))
    socket.on('close', () => this.disconnect(client))
    socket.on('error', error => this.deps.logger.debug({ err: error, ip }, 'socket error'))
    if (access.authEnabled) sendChallenge(client)
    return client
  }

  private receive(client: Client, data: Buffer | Buffer[], isBinary: boolean): void {
    const frame = Array.isArray(data) ? Buffer.concat(data) : data
    if (isBinary) return client.notice('invalid: binary frames are not supported; send JSON text')
    const parsed = parseMessage(frame, this.deps.settings.current.config.limitation.max_message_length)
    if (!parsed.ok) {
      const { refusal } = parsed
      this.deps.metrics.messages.inc({ verb: 'invalid' })
      if (refusal.to === 'OK') return client.ok(refusal.eventId, false, refusal.reason)
      if (refusal.to === 'CLOSED') return client.closedSub(refusal.subId, refusal.reason)
      return client.notice(refusal.reason)
    }
    this.deps.metrics.messages.inc({ verb: parsed.message.verb })
    try {
      this.dispatch(client, parsed.message)
    } catch (error) {
      this.failed(client, parsed.message.verb, error)
    }
  }

  private dispatch(client: Client, message: ClientMessage): void {
    const authDeps = { settings: this.deps.settings, verifier: this.deps.verifier, metrics: this.deps.metrics, now: this.now }
    const guard = (work: Promise<void>) => void work.catch(error => this.failed(client, message.verb, error))
    switch (message.verb) {
      case 'EVENT': return this.ingest(client, message.event)
      case 'REQ': return handleReq(this.requests, client, message.subId, message.filters)
      case 'COUNT': return guard(handleCount(this.requests, client, message.subId, message.filters))
      case 'CLOSE': return closeSubscription(this.requests, client, message.subId)
      case 'AUTH': return guard(handleAuth(authDeps, client, message.event))
    }
  }

  private failed(client: Client, verb: string, error: unknown): void {
    this.deps.logger.error({ err: error, verb }, 'message handler failed')
    client.notice('error: internal error while handling the message')
  }

  private onDrop(client: Client, cause: DropCause): void {
    this.deps.metrics.drops.inc({ cause })
    if (cause === 'slow') this.deps.logger.warn({ ip: client.ip }, 'disconnected a client whose outbound buffer overflowed')
    this.disconnect(client)
  }

  private disconnect(client: Client): void {
    if (!this.clients.delete(client)) return
    const left = (this.perIp.get(client.ip) ?? 1) - 1
    if (left > 0) this.perIp.set(client.ip, left)
    else this.perIp.delete(client.ip)
    for (const subId of [...client.subscriptions.keys()]) closeSubscription(this.requests, client, subId)
    this.deps.metrics.connections.dec()
  }

  /**
   * Graceful stop: stop reading, let every received EVENT be verified, committed and answered,
   * then close every client with 1001.
   */
  async shutdown(graceMs = 5000): Promise<void> {
    const clients = [...this.clients]
    for (const client of clients) client.hold('shutdown')
    const settled = Promise.all(clients.map(ingestSettled))
    await Promise.race([settled, new Promise(resolve => setTimeout(resolve, graceMs).unref())])
    await this.writer.drain()
    await new Promise(resolve => setImmediate(resolve)) // let the last OKs flush
    for (const client of clients) client.drop('shutdown')
  }
}
