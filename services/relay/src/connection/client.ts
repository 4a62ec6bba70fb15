import type { Socket } from 'node:net'
import type { WebSocket } from 'ws'
import type { Reason } from '@msr/nostr'
import type { Peer } from '../policies/access.js'
import { LiveFrame, type Subscription } from '../subscriptions/subscription.js'

/** Why a client was disconnected by the relay, for logs and metrics. */
export type DropCause = 'slow' | 'shutdown'

/** Why the relay stopped reading a client's socket for now. */
export type HoldReason = 'ingest' | 'outbound' | 'auth' | 'turn' | 'penalty' | 'fanout' | 'shutdown'

/** What the relay needs of the outbound side: frames out, bounded, corked per turn. */
export interface ClientOptions {
  /** Unsent bytes above which the client counts as behind. */
  maxOutboundBytes: number
  /** How long (ms) a client may stay behind while live events keep coming before it is dropped. */
  slowGraceMs: number
  onDrop: (client: Client, cause: DropCause) => void
  /** Called when a refusal says `auth-required:`: the relay (re)sends its NIP-42 challenge. */
  onAuthRequired?: (client: Client) => void
  /** Milliseconds, for the grace period. */
  now?: () => number
}

let clientSerial = 0

/**
 * Bytes of messages one client may have handled in one event-loop turn before its socket waits for the
 * next turn: others' messages (and live events) go in between, so a client sending huge messages as fast
 * as it can slows itself, not everyone.
 */
const TURN_BYTES = 256 * 1024

/** The longest pause after refused oversized requests (see Client.penalize). */
const MAX_PENALTY_MS = 1000

/** Unsent bytes, as a multiple of maxOutboundBytes, past which a client is dropped at once. */
const HARD_LIMIT_FACTOR = 4
/** How often a paged answer checks whether the client has room for the next page. */
const ROOM_POLL_MS = 5
const TEXT = { binary: false }

/** Complete WebSocket frames (headers included), written to the socket as they are; `done` runs once written or dropped. */
class Wire {
  constructor(
    readonly bytes: Buffer,
    readonly done: () => void,
  ) {}
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
 * - live (fan-out) frames keep coming whatever the client does, so a client that stays above
 *   `maxOutboundBytes` for longer than the grace period, or passes four times it, cannot keep up
 *   and is disconnected: it never stalls others. A burst that a fast client drains is no reason.
 */
export class Client implements Peer {
  /** A process-unique id (rate-limit key for per-connection limits). */
  readonly id = `c${++clientSerial}`
  /** Open subscriptions by id. */
  readonly subscriptions = new Map<string, Subscription>()
  /** Pubkeys this connection proved with NIP-42 AUTH (re-authentication adds to them). */
  readonly authed = new Set<string>()
  /** The NIP-42 challenge sent to this connection, once auth is enabled. */
  challenge: string | undefined
  /** EVENT messages accepted for processing but not yet answered. */
  inFlight = 0
  private queue: Array<string | Buffer | Wire | LiveFrame> = []
  private dropped = false
  private readonly holds = new Set<HoldReason>()
  private behindSince: number | undefined
  /** Bytes of messages handled this turn (see TURN_BYTES). */
  private turnBytes = 0
  /** Requests refused in a row as too large to keep (see penalize). */
  private strikes = 0

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
  send(frame: string | Buffer): void {
    this.enqueue(frame)
  }

  private enqueue(item: string | Buffer | Wire | LiveFrame): void {
    if (this.closed) return
    // A client with queued frames is already in `dirty` (flush empties both together).
    if (this.queue.push(item) === 1) dirty.add(this)
    if (!flushScheduled) {
      flushScheduled = true
      setImmediate(flushAll)
    }
  }

  /**
   * True when frames this relay builds itself (header included) may go straight to the socket: with
   * no extension negotiated, ws writes every frame synchronously, so order is kept.
   */
  get acceptsWireFrames(): boolean {
    return this.socket.extensions === '' && this.rawSocket !== undefined
  }

  /**
   * Queues ready-made WebSocket frames (see acceptsWireFrames), e.g. a whole backfill at once.
   * `done` runs when the socket no longer needs the bytes (written, or the client went away).
   */
  sendWire(bytes: Buffer, done: () => void): void {
    if (this.closed) return done()
    this.enqueue(new Wire(bytes, done))
  }

  /** Queues a live (fan-out) frame, or drops the client when it has been behind for too long. */
  sendLive(frame: LiveFrame): void {
    const buffered = this.socket.bufferedAmount
    const max = this.options.maxOutboundBytes
    if (buffered <= max) this.behindSince = undefined
    else {
      const now = this.options.now?.() ?? Date.now()
      this.behindSince ??= now
      if (buffered > HARD_LIMIT_FACTOR * max || now - this.behindSince > this.options.slowGraceMs) return this.drop('slow')
    }
    this.enqueue(frame)
  }

  /** `["OK", id, accepted, message]`; an `auth-required:` refusal is followed by the challenge again. */
  ok(eventId: string, accepted: boolean, message: string): void {
    this.send(JSON.stringify(['OK', eventId, accepted, message]))
    if (message.startsWith('auth-required:')) this.options.onAuthRequired?.(this)
  }

  /** `["CLOSED", subId, reason]`; an `auth-required:` refusal is followed by the challenge again. */
  closedSub(subId: string, reason: Reason): void {
    this.send(JSON.stringify(['CLOSED', subId, reason]))
    if (reason.startsWith('auth-required:')) this.options.onAuthRequired?.(this)
  }

  /** `["AUTH", challenge]` (NIP-42). */
  authChallenge(challenge: string): void {
    this.send(JSON.stringify(['AUTH', challenge]))
  }

  /** `["NOTICE", reason]`. */
  notice(reason: Reason): void {
    this.send(JSON.stringify(['NOTICE', reason]))
  }

  /** `["EOSE", subId]`. */
  eose(subId: string): void {
    this.send(JSON.stringify(['EOSE', subId]))
  }

  /**
   * Writes the queued frames now (called by the per-turn flush), corked, so that a turn's frames leave in one
   * writev. With no extension negotiated, live frames go to the socket as they are (header included, shared
   * by every subscription with that id); otherwise ws frames their payloads.
   */
  flush(): void {
    if (this.closed) return this.discard()
    if (this.queue.length === 0) return
    const frames = this.queue
    this.queue = []
    const raw = this.rawSocket
    const wire = raw !== undefined && this.socket.extensions === ''
    raw?.cork()
    for (let i = 0; i < frames.length; i++) {
      const frame = frames[i] as string | Buffer | Wire | LiveFrame
      if (frame instanceof LiveFrame) {
        if (!wire) this.socket.send(frame.payload, TEXT)
        else raw.write(frame.wire)
      } else if (!(frame instanceof Wire)) this.socket.send(frame, TEXT)
      else if (raw) raw.write(frame.bytes, frame.done)
      else frame.done()
    }
    raw?.uncork()
    this.checkBackpressure()
  }

  /** Counts a received message against this turn's share; past it, reading waits for the next turn. */
  charge(bytes: number): void {
    if (this.turnBytes === 0) setImmediate(() => this.endTurn())
    this.turnBytes += bytes
    if (this.turnBytes > TURN_BYTES && !this.holds.has('turn')) this.hold('turn')
  }

  private endTurn(): void {
    this.turnBytes = 0
    this.release('turn')
  }

  /**
   * After a request refused as too large to keep: reading pauses 50 ms, doubling with each refusal in a
   * row up to 1 s, so a client repeating huge requests costs little; `forgive` resets it.
   */
  penalize(): void {
    const pauseMs = Math.min(MAX_PENALTY_MS, 50 * 2 ** this.strikes++)
    this.hold('penalty')
    setTimeout(() => this.release('penalty'), pauseMs).unref()
  }

  /** A request was accepted: the refusals in a row start again from none. */
  forgive(): void {
    this.strikes = 0
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

  /**
   * Disconnects the client with a close frame (code and reason). A slow client's frame queues behind
   * what it has not read yet: it gets ws's close timeout (30 s) to read up to it, so that it learns why
   * (1008) instead of seeing a bare TCP close; reading is resumed so its answering close frame is seen.
   * At shutdown the socket is destroyed after 2 s whatever the client does.
   */
  drop(cause: DropCause): void {
    if (this.dropped) return
    this.dropped = true
    this.discard()
    dirty.delete(this)
    this.options.onDrop(this, cause)
    this.holds.clear()
    this.socket.resume()
    if (cause === 'slow') return this.socket.close(1008, 'outbound buffer exceeded: client too slow')
    this.socket.close(1001, 'relay shutting down')
    setTimeout(() => this.socket.terminate(), 2000).unref()
  }

  /**
   * Resolves once what was queued for the client has been handed to the socket and the socket holds no
   * more than max_outbound_buffer unsent (or the client is gone): a long answer sent in pages waits here
   * between pages, so it never piles up in memory faster than the client reads.
   */
  async roomToSend(): Promise<void> {
    while (!this.closed && (this.queue.length > 0 || this.socket.bufferedAmount > this.options.maxOutboundBytes))
      await new Promise(resolve => setTimeout(resolve, ROOM_POLL_MS))
  }

  /** Stops reading while more than max_outbound_buffer is unsent (replies, pongs); resumes on drain. */
  checkBackpressure(): void {
    if (this.socket.bufferedAmount <= this.options.maxOutboundBytes || this.holds.has('outbound')) return
    this.hold('outbound')
    const raw = this.rawSocket
    if (raw) raw.once('drain', () => this.release('outbound'))
    else this.release('outbound')
  }

  /** Empties the queue, letting ready-made frames release their memory. */
  private discard(): void {
    for (const item of this.queue) if (item instanceof Wire) item.done()
    this.queue = []
  }

  private get rawSocket(): Socket | undefined {
    return (this.socket as unknown as { _socket?: Socket })._socket
  }
}
