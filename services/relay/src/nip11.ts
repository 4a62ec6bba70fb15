import type { RelayInformation } from '@msr/nostr'
import type { RelayConfig } from './config.js'

/** The NIPs this relay implements, given its configuration. */
export const supportedNips = (config: RelayConfig): number[] => [1, 9, 11, 40, ...(config.count.enabled ? [45] : [])]

/** The NIP-11 document for the current configuration. */
export const relayDocument = (config: RelayConfig): RelayInformation => {
  const { information: info, limitation: lim } = config
  return {
    name: info.name,
    description: info.description,
    pubkey: info.pubkey,
    contact: info.contact,
    software: info.software,
    version: '0.1.0',
    icon: info.icon,
    supported_nips: supportedNips(config),
    limitation: {
      max_message_length: lim.max_message_length,
      max_subscriptions: lim.max_subscriptions,
      max_filters: lim.max_filters,
      max_limit: lim.max_limit,
      default_limit: Math.min(lim.default_limit, lim.max_limit),
      max_subid_length: lim.max_subid_length,
      max_event_tags: lim.max_event_tags,
      auth_required: false,
      payment_required: false,
      restricted_writes: false,
      // Seconds relative to now, as NIP-11's example values (31536000, 3) and other relays use them.
      ...(lim.max_event_time_older_than_now > 0 && { created_at_lower_limit: lim.max_event_time_older_than_now }),
      ...(lim.max_event_time_newer_than_now > 0 && { created_at_upper_limit: lim.max_event_time_newer_than_now }),
    },
  }
}
