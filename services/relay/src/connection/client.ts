import type { Socket } from 'node:net'
import type { WebSocket } from 'ws'
import type { Reason } from '@msr/nostr'
import type { Subscription } from '../subscriptions/subscription.js'

/** Why a client was disconnected by the relay, for logs and metrics. */
export type DropCause = 'slow' | 'shutdown'

/** What the relay needs of the outbound side: frames out, bounded, corked per turn. */
export interface ClientOptions {
  maxOutboundBytes: number
  onDrop: (client: Client, cause: DropCause) => void
}

const dirty = new Set<Client>()
let flushScheduled = false

/** Writes every client's queued frames once per turn, corked so a burst becomes one syscall. */
const flushAll = (): void => {
  flushScheduled = false
  for (const client of dirty) client.flush()
  dirty.clear()
}

/**
 * One WebSocket connection: its subscriptions and its outbound queue. Frames are queued and
 * written once per event-loop turn; a client whose unsent bytes pass the bound is disconnected
 * rather than allowed to grow memory or stall others.
 */
export class Client {
  /** Open subscriptions by id. */
  readonly subscriptions = new Map<string, Subscription>()
  /** EVENT messages accepted for processing but not yet answered. */
  inFlight = 0
  private queue: string[] = []
  private queuedBytes = 0
  private dropped = false

  constructor(
    readonly socket: WebSocket,
    /** The client's IP address. */
    readonly ip: string,
    private readonly options: ClientOptions,
  ) {}

  /** True once the client is closing; nothing more is sent to it. */
  get closed(): boolean {
    return this.dropped || this.socket.readyState !== this.socket.OPEN
  }

  /** Queues a raw frame. */
  send(frame: string): void {
    if (this.closed) return
    this.queue.push(frame)
    this.queuedBytes += frame.length
    if (this.queuedBytes + this.socket.bufferedAmount > this.options.maxOutboundBytes) return this.drop('slow')
    dirty.add(this)
    if (!flushScheduled) {
      flushScheduled = true
      setImmediate(flushAll)
    }
  }

  /** `["OK", id, accepted, message]`. */
  ok(eventId: string, accepted: boolean, message: string): void {
    this.send(JSON.stringify(['OK', eventId, accepted, message]))
  }

  /** `["CLOSED", subId, reason]`. */
  closedSub(subId: string, reason: Reason): void {
    this.send(JSON.stringify(['CLOSED', subId, reason]))
  }

  /** `["NOTICE", reason]`. */
  notice(reason: Reason): void {
    this.send(JSON.stringify(['NOTICE', reason]))
  }

  /** `["EOSE", subId]`. */
  eose(subId: string): void {
    this.send(JSON.stringify(['EOSE', subId]))
  }

  /** Writes the queued frames now (called by the per-turn flush). */
  flush(): void {
    if (this.closed || this.queue.length === 0) return
    const frames = this.queue
    this.queue = []
    this.queuedBytes = 0
    const raw = (this.socket as unknown as { _socket?: Socket })._socket
    raw?.cork()
    for (const frame of frames) this.socket.send(frame)
    raw?.uncork()
    if (this.socket.bufferedAmount > this.options.maxOutboundBytes) this.drop('slow')
  }

  /** Disconnects the client: a close frame, then the socket is destroyed if it does not go quietly. */
  drop(cause: DropCause): void {
    if (this.dropped) return
    this.dropped = true
    this.queue = []
    dirty.delete(this)
    this.options.onDrop(this, cause)
    if (cause === 'slow') {
      this.socket.close(1008, 'outbound buffer exceeded: client too slow')
      setTimeout(() => this.socket.terminate(), 1000).unref()
    } else {
      this.socket.close(1001, 'relay shutting down')
      setTimeout(() => this.socket.terminate(), 2000).unref()
    }
  }
}
