import type { Filter } from '@msr/nostr'
import type { Client } from '../connection/client.js'

/** A live subscription: its filters, its owner and its frame prefix. */
export interface Subscription {
  readonly client: Client
  readonly id: string
  readonly filters: readonly Filter[]
  /** `["EVENT","<id>",` serialized once; each delivery appends the event JSON and `]`. */
  readonly framePrefix: string
  /** Ids sent during backfill that were committed but not yet fanned out: skip them once live. */
  readonly sentBeforeLive: Set<string>
  /** Fan-out stamp, so an event matching two filters is delivered once. */
  lastDelivery: number
}

/** Creates a subscription record. */
export const createSubscription = (client: Client, id: string, filters: readonly Filter[]): Subscription => ({
  client,
  id,
  filters,
  framePrefix: `["EVENT",${JSON.stringify(id)},`,
  sentBeforeLive: new Set(),
  lastDelivery: -1,
})
