import type { NostrEvent } from '@msr/nostr'
import type { LiveIndex } from '../subscriptions/live-index.js'

/**
 * Delivers an event to every live subscription that matches it. The event JSON was serialized once
 * at ingest; each frame only wraps it with the subscription's precomputed prefix.
 */
export const fanOut = (index: LiveIndex, event: NostrEvent, json: string): number => {
  let deliveries = 0
  for (const subscription of index.matching(event)) {
    if (subscription.sentBeforeLive.delete(event.id)) continue
    subscription.client.sendLive(subscription.framePrefix + json + ']')
    deliveries++
  }
  return deliveries
}
