import type { Filter } from '@msr/nostr'
import type { Client } from '../connection/client.js'

/** A live event held back while the subscription's stored events are still being read. */
export interface Held {
  id: string
  frame: Buffer
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

/** The EVENT frame for a subscription: its prefix, the stored JSON bytes, `]`; one copy of each. */
export const eventFrame = (subscription: Pick<Subscription, 'framePrefix'>, json: Buffer): Buffer => {
  const prefix = subscription.framePrefix
  const frame = Buffer.allocUnsafe(prefix.length + json.length + 1)
  prefix.copy(frame, 0)
  json.copy(frame, prefix.length, 0, json.length)
  frame[frame.length - 1] = CLOSE
  return frame
}
