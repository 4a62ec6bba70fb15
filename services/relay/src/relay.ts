import type { WebSocket } from 'ws'
import type { Logger } from '@msr/telemetry'
import { readableId } from '@msr/nostr'
import { handleAuth, sendChallenge } from './connection/auth.js'
import { Client, type ClientOptions, type DropCause } from './connection/client.js'
import { InboundOrder, type InboundHandler } from './connection/inbound.js'
import { sleep } from './deadline.js'
import type { RelayMetrics } from './metrics.js'
import { FanOut } from './pipeline/fanout.js'
import { createIngest, eventsAnswered, ingestSettled } from './pipeline/ingest.js'
import { parseMessage, type ClientMessage } from './pipeline/parse.js'
import type { VerifierPool } from '@msr/workers'
import type { Writer } from './pipeline/writer.js'
import { checkRead, visibleTo } from './policies/access.js'
import type { Settings } from './settings.js'
import { LiveIndex } from './subscriptions/live-index.js'
import type { QueryPool } from './subscriptions/query-pool.js'
import type { ReplicationGate } from './replication/gate.js'
import { FilterBudget } from './subscriptions/filter-budget.js'
import { closeSubscription, handleCount, handleReq, type RequestDeps } from './subscriptions/requests.js'
import { endSpan, inSpan, startSpan } from './tracing.js'

/** What the relay is built from; main.ts wires these. */
export interface RelayDeps {
  settings: Settings
  /** The single writer; the relay adds its fan-out as the first listener of committed batches. */
  writer: Writer
  verifier: VerifierPool
  queries: QueryPool
  logger: Logger
  metrics: RelayMetrics
  /** Unix seconds. */
  now?: () => number
  /** With `[replication]`: OKs and the fan-out of this replica's events wait for the bus. */
  replication?: ReplicationGate | undefined
}

/** Where an unexpected failure happened, for the log and `internal_errors_total`. */
export type FailurePath = 'event' | 'write' | 'req' | 'count' | 'auth' | 'handler'

/** An open socket's client and the order its messages take effect in. */
interface Connection {
  client: Client
  inbound: InboundOrder<Client, ClientMessage>
}

type SocketListeners = {
  message: (this: WebSocket, data: Buffer | Buffer[], isBinary: boolean) => void
  ping: (this: WebSocket) => void
  close: (this: WebSocket) => void
  error: (this: WebSocket, error: Error) => void
}

/**
 * One set of socket listeners for every connection (ws calls them with the socket as `this`): a closure
 * per connection and event would cost about half a kilobyte per idle connection.
 */
const socketListeners = (
  bySocket: WeakMap<WebSocket, Connection>,
  on: {
    message: (c: Connection, data: Buffer | Buffer[], isBinary: boolean) => void
    ping: (c: Connection) => void
    close: (c: Connection) => void
    error: (c: Connection, error: Error) => void
  },
): SocketListeners => ({
  message(data, isBinary) {
    const c = bySocket.get(this)
    if (c) on.message(c, data, isBinary)
  },
  ping() {
    const c = bySocket.get(this)
    if (c) on.ping(c)
  },
  close() {
    const c = bySocket.get(this)
    if (c) on.close(c)
  },
  error(error) {
    const c = bySocket.get(this)
    if (c) on.error(c, error)
  },
})

/** The protocol core: connections in, messages dispatched to the EVENT, REQ and AUTH paths. */
export class Relay {
  readonly live = new LiveIndex()
  readonly fanOut: FanOut
  readonly clients = new Set<Client>()
  private readonly perIp = new Map<string, number>()
  /** Each open socket's client and message order, for the socket listeners below (shared by every socket). */
  private readonly bySocket = new WeakMap<WebSocket, Connection>()
  private readonly socketListeners: SocketListeners
  private readonly inboundHandler: InboundHandler<Client, ClientMessage>
  /** The client options of the settings in force (rebuilt when they change), shared by every client. */
  private clientOptions: { for: unknown; options: ClientOptions } | undefined
  private readonly ingest: ReturnType<typeof createIngest>
  private readonly requests: RequestDeps
  private readonly now: () => number

  constructor(private readonly deps: RelayDeps) {
    this.now = deps.now ?? (() => Math.floor(Date.now() / 1000))
    this.socketListeners = socketListeners(this.bySocket, {
      message: (c, data, isBinary) => this.receive(c.client, c.inbound, data, isBinary),
      ping: c => c.client.checkBackpressure(),
      close: c => this.disconnect(c.client),
      error: (c, error) => this.deps.logger.debug({ err: error, ip: c.client.ip }, 'socket error'),
    })
    this.inboundHandler = {
      handle: (client, message) => this.dispatch(client, message),
      hold: (client, on) => (on ? client.hold('auth') : client.release('auth')),
    }
    const { settings, metrics } = deps
    const visible = (s: { client: Client }, e: Parameters<typeof visibleTo>[2]) =>
      visibleTo(settings.current.access.privateKinds, s.client.authed, e)
    this.fanOut = new FanOut(this.live, n => metrics.deliveries.inc(n), visible)
    const { replication } = deps
    const fanOut = (batch: Parameters<FanOut['enqueue']>[0]) => this.fanOut.enqueue(batch)
    deps.writer.onCommitted(replication ? batch => replication.deliver(batch) : fanOut)
    this.ingest = createIngest({
      settings,
      verifier: deps.verifier,
      writer: deps.writer,
      fanOut: (valid, span) => this.fanOut.enqueue([{ ...valid, span }]),
      metrics,
      now: this.now,
      onFailure: (error, { eventId }) => this.report('event', error, { event: eventId }),
      replication,
    })
    const budget = new FilterBudget(() => {
      const { limitation } = settings.current.config
      return { perConnection: limitation.max_filter_values, perIp: limitation.max_filter_values_per_ip }
    })
    // What a reload denies applies to what is already open, not only to the next REQ.
    settings.onReload(applied => {
      if (applied.some(key => key.startsWith('auth.'))) this.rejudgeSubscriptions()
    })
    this.requests = {
      settings,
      queries: deps.queries,
      live: this.live,
      budget,
      metrics,
      now: this.now,
      onFailure: (path, error, { subId }) => this.report(path, error, { subscription: subId }),
      fanOutCaughtUp: () => {
        const settling = deps.writer.settling
        return settling ? settling.then(() => this.fanOut.caughtUp()) : this.fanOut.caughtUp()
      },
      fanOutPending: replication && (id => replication.fanOutPending(id)),
    }
  }

  /**
   * After a reload changed `[auth]`: every open subscription is judged again as its REQ would be now, and
   * one the rules refuse (a blacklisted address or key, a whitelist it is not on, a private kind it may no
   * longer read) is closed with `CLOSED` and the reason.
   */
  private rejudgeSubscriptions(): void {
    const { access } = this.deps.settings.current
    for (const client of this.clients)
      for (const subscription of [...client.subscriptions.values()]) {
        const denied = checkRead(access, client, subscription.filters.map(f => f.kinds))
        if (denied === undefined) continue
        closeSubscription(this.requests, client, subscription.id)
        client.closedSub(subscription.id, denied)
      }
  }

  /** Logs and counts an unexpected failure (never content: ids only). */
  report(path: FailurePath, error: unknown, context: Record<string, unknown> = {}): void {
    this.deps.metrics.internalErrors.inc({ where: path })
    this.deps.logger.error({ err: error, path, ...context }, 'request failed unexpectedly')
  }

  /** Whether one more connection from this address is allowed (`[rate_limiter] max_connections_per_ip`). */
  admits(ip: string): boolean {
    const max = this.deps.settings.current.limits.maxConnectionsPerIp
    return max === 0 || (this.perIp.get(ip) ?? 0) < max
  }

  /** Takes over a freshly upgraded WebSocket; sends the NIP-42 challenge when auth is enabled. */
  connect(socket: WebSocket, ip: string): Client {
    const { access } = this.deps.settings.current
    const client = new Client(socket, ip, this.optionsForClients())
    this.clients.add(client)
    this.perIp.set(ip, (this.perIp.get(ip) ?? 0) + 1)
    this.deps.metrics.connections.inc()
    this.deps.metrics.connectionsTotal.inc()
    this.bySocket.set(socket, { client, inbound: new InboundOrder(client, this.inboundHandler) })
    socket.on('message', this.socketListeners.message)
    // ws answers each ping; a client that does not read its pongs stops being read, like any slow reader.
    socket.on('ping', this.socketListeners.ping)
    socket.on('close', this.socketListeners.close)
    socket.on('error', this.socketListeners.error)
    if (access.authEnabled) sendChallenge(client)
    return client
  }

  /** The options every client of the settings in force shares. */
  private optionsForClients(): ClientOptions {
    const { network } = this.deps.settings.current.config
    if (this.clientOptions?.for !== network)
      this.clientOptions = {
        for: network,
        options: {
          maxOutboundBytes: network.max_outbound_buffer,
          slowGraceMs: network.slow_client_grace,
          onDrop: (c, cause) => this.onDrop(c, cause),
          onAuthRequired: c => this.deps.settings.current.access.authEnabled && sendChallenge(c),
        },
      }
    return this.clientOptions.options
  }

  private receive(client: Client, inbound: InboundOrder<Client, ClientMessage>, data: Buffer | Buffer[], isBinary: boolean): void {
    if (client.closed) return // dropped or closing: its subscriptions are gone and must not come back
    const frame = Array.isArray(data) ? Buffer.concat(data) : data
    client.charge(frame.length)
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
    inbound.push(parsed.message)
  }

  /** One line per verb; an AUTH's promise holds the connection's later messages until it is decided. */
  private dispatch(client: Client, message: ClientMessage): Promise<void> | void {
    try {
      switch (message.verb) {
        case 'EVENT': return (this.fanOut.throttle(client), this.ingest(client, message.event))
        case 'REQ': return this.afterEvents(client, message.verb, () => handleReq(this.requests, client, message.subId, message.filters))
        case 'COUNT': return this.afterEvents(client, message.verb, () => void handleCount(this.requests, client, message.subId, message.filters))
        case 'CLOSE': return closeSubscription(this.requests, client, message.subId)
        case 'AUTH': return this.authenticate(client, message.event)
      }
    } catch (error) {
      this.failed(client, message.verb, error)
    }
  }

  /**
   * Messages of a connection take effect in the order they were sent: a REQ or COUNT sent behind EVENTs
   * not yet answered waits for their OKs (and holds what follows it), so it finds what they stored and not
   * what they deleted. Without such EVENTs (the common case) it runs at once.
   */
  private afterEvents(client: Client, verb: string, run: () => void): Promise<void> | void {
    const answered = eventsAnswered(client)
    if (!answered) return run()
    return answered.then(run).catch(error => this.failed(client, verb, error))
  }

  /** NIP-42, in a `relay.auth` span ending with the answer's prefix. */
  private authenticate(client: Client, event: unknown): Promise<void> {
    const deps = { settings: this.deps.settings, verifier: this.deps.verifier, metrics: this.deps.metrics, now: this.now }
    const span = startSpan('relay.auth')
    return handleAuth(deps, client, event, ingestSettled(client)).then(
      outcome => endSpan(span, 'nostr.outcome', outcome),
      error => {
        const reason = 'error: internal error while checking the AUTH message; send it again'
        inSpan(span, () => this.report('auth', error))
        // NIP-42: an AUTH is answered with OK, like an EVENT, whenever its id can be read.
        const id = readableId(event)
        if (id) client.ok(id, false, reason)
        else client.notice(reason)
        endSpan(span, 'nostr.outcome', reason)
      },
    )
  }

  private failed(client: Client, verb: string, error: unknown): void {
    this.report('handler', error, { verb })
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
   * Graceful stop: stop reading, let every received EVENT be verified, committed and answered (for at
   * most `graceMs`), then close every client with 1001.
   */
  async shutdown(graceMs = 5000): Promise<void> {
    const clients = [...this.clients]
    for (const client of clients) client.hold('shutdown')
    const settled = Promise.all(clients.map(ingestSettled))
    await Promise.race([settled, sleep(graceMs)])
    await Promise.race([this.deps.writer.drain(), sleep(graceMs)])
    await new Promise(resolve => setImmediate(resolve)) // let the last OKs flush
    for (const client of clients) client.drop('shutdown')
  }
}
