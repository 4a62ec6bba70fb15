import type { Filter } from '@msr/nostr'
import type { Client } from '../connection/client.js'

/** A live event held back while the subscription's stored events are still being read. */
export interface Held {
  id: string
  frame: LiveFrame
}

/** A live subscription: its filters, its owner and its frame prefix. */
export interface Subscription {
  readonly client: Client
  readonly id: string
  readonly filters: readonly Filter[]
  /** The values its filters hold (reserved in the connection's filter budget until it closes). */
  readonly values: number
  /** `["EVENT","<id>",` serialized once; each delivery appends the event JSON and `]`. */
  readonly framePrefix: Buffer
  /**
   * While the backfill runs, live events wait here (they go out after EOSE, minus any the backfill
   * already sent); undefined once the subscription is live.
   */
  held: Held[] | undefined
  /**
   * With `[replication]`: ids its backfill sent before their own live fan-out (which waits for the bus):
   * that fan-out skips this subscription, once.
   */
  sentBeforeFanOut?: Set<string> | undefined
  /** Fan-out stamp, so an event matching two filters is delivered once. */
  lastDelivery: number
}

/** Creates a subscription record, holding live events until its backfill completes. */
export const createSubscription = (client: Client, id: string, filters: readonly Filter[], values = 0): Subscription => ({
  client,
  id,
  filters,
  values,
  framePrefix: Buffer.from(`["EVENT",${JSON.stringify(id)},`, 'utf8'),
  held: [],
  lastDelivery: -1,
})

const CLOSE = 0x5d // ']'
const FIN_TEXT = 0x81

/**
 * A live EVENT frame as it goes on the wire: the WebSocket header (RFC 6455 §5.2: FIN, text, unmasked) and
 * the payload in one buffer. Built once per (event, subscription id) and shared by every subscription with
 * that id, whatever its connection: the bytes are the same.
 */
export class LiveFrame {
  constructor(
    /** Header and payload. */
    readonly wire: Buffer,
    readonly headerLength: number,
  ) {}

  /** The JSON text alone, for ws to frame itself (a connection with a WebSocket extension). */
  get payload(): Buffer {
    return this.wire.subarray(this.headerLength)
  }
}

/** The header's length for a payload of `length` bytes. */
const headerLengthOf = (length: number): number => (length < 126 ? 2 : length < 65536 ? 4 : 10)

/** The EVENT frame for a subscription id: header, its prefix, the stored JSON bytes, `]`; one copy of each. */
export const liveFrame = (framePrefix: Buffer, json: Buffer): LiveFrame => {
  const length = framePrefix.length + json.length + 1
  const at = headerLengthOf(length)
  const wire = Buffer.allocUnsafe(at + length)
  wire[0] = FIN_TEXT
  if (at === 2) wire[1] = length
  else if (at === 4) {
    wire[1] = 126
    wire.writeUInt16BE(length, 2)
  } else {
    wire[1] = 127
    wire.writeUInt32BE(0, 2)
    wire.writeUInt32BE(length, 6)
  }
  framePrefix.copy(wire, at)
  json.copy(wire, at + framePrefix.length)
  wire[wire.length - 1] = CLOSE
  return new LiveFrame(wire, at)
}
