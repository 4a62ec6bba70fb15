import type { RelayInformation } from '@msr/nostr'
import type { RelayConfig } from './config.js'

/** The NIPs this relay implements, given its configuration. */
export const supportedNips = (config: RelayConfig): number[] =>
  [1, 9, 11, 40, ...(config.auth.enabled ? [42] : []), ...(config.count.enabled ? [45] : []), 70].sort((a, b) => a - b)

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
      auth_required: config.auth.enabled && (config.auth.required || config.auth.req.pubkey_whitelist.length > 0),
      payment_required: false,
      restricted_writes: restrictedWrites(config),
      // Seconds relative to now, as NIP-11's example values (31536000, 3) and other relays use them.
      ...(lim.max_event_time_older_than_now > 0 && { created_at_lower_limit: lim.max_event_time_older_than_now }),
      ...(lim.max_event_time_newer_than_now > 0 && { created_at_upper_limit: lim.max_event_time_newer_than_now }),
    },
  }
}

/** True when publishing needs more than a valid event: an allowlist, or authentication. */
const restrictedWrites = ({ auth }: RelayConfig): boolean =>
  auth.required ||
  auth.event.pubkey_whitelist.length > 0 ||
  auth.event.event_pubkey_whitelist.length > 0 ||
  auth.event.ip_whitelist.length > 0
