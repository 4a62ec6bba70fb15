import type { Socket } from 'node:net'
import type { WebSocket } from 'ws'
import type { Reason } from '@msr/nostr'
import type { Subscription } from '../subscriptions/subscription.js'

/** Why a client was disconnected by the relay, for logs and metrics. */
export type DropCause = 'slow' | 'shutdown'

/** Why the relay stopped reading a client's socket for now. */
export type HoldReason = 'ingest' | 'outbound' | 'shutdown'

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
 * written once per event-loop turn. Two bounds keep memory in check:
 * - replies (OK, EOSE, backfill…) are always written, but while the socket holds more than
 *   `maxOutboundBytes` unsent, the relay stops reading the client's requests until it drains;
 * - a live (fan-out) frame arriving while the socket still holds more than `maxOutboundBytes`
 *   from earlier turns means the client cannot keep up: it is disconnected, so it never stalls others.
 */
export class Client {
  /** Open subscriptions by id. */
  readonly subscriptions = new Map<string, Subscription>()
  /** EVENT messages accepted for processing but not yet answered. */
  inFlight = 0
  private queue: string[] = []
  private dropped = false
  private readonly holds = new Set<HoldReason>()

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

  /** Queues a reply frame (answer to something the client asked). */
  send(frame: string): void {
    if (this.closed) return
    this.queue.push(frame)
    dirty.add(this)
    if (!flushScheduled) {
      flushScheduled = true
      setImmediate(flushAll)
    }
  }

  /** Queues a live (fan-out) frame, or drops the client if it has not read what it was sent before. */
  sendLive(frame: string): void {
    if (this.socket.bufferedAmount > this.options.maxOutboundBytes) return this.drop('slow')
    this.send(frame)
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
    const raw = this.rawSocket
    raw?.cork()
    for (const frame of frames) this.socket.send(frame)
    raw?.uncork()
    if (this.socket.bufferedAmount > this.options.maxOutboundBytes && !this.holds.has('outbound')) {
      this.hold('outbound')
      raw?.once('drain', () => this.release('outbound'))
    }
  }

  /** Stops reading the client's socket for `reason` (reasons stack: reading resumes when none is left). */
  hold(reason: HoldReason): void {
    if (this.holds.size === 0) this.socket.pause()
    this.holds.add(reason)
  }

  /** Lifts one hold. */
  release(reason: HoldReason): void {
    if (!this.holds.delete(reason) || this.holds.size > 0 || this.closed) return
    this.socket.resume()
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

  private get rawSocket(): Socket | undefined {
    return (this.socket as unknown as { _socket?: Socket })._socket
  }
}
