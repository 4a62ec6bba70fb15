/** The NIP-11 relay information document. */
export interface RelayInformation {
  name?: string
  description?: string
  banner?: string
  icon?: string
  pubkey?: string
  self?: string
  contact?: string
  software?: string
  version?: string
  privacy_policy?: string
  terms_of_service?: string
  supported_nips: number[]
  limitation: RelayLimitation
}

/** The `limitation` object of NIP-11, as far as this relay enforces it. */
export interface RelayLimitation {
  max_message_length?: number
  max_subscriptions?: number
  max_filters?: number
  max_limit?: number
  default_limit?: number
  max_subid_length?: number
  max_event_tags?: number
  max_content_length?: number
  min_pow_difficulty?: number
  auth_required?: boolean
  payment_required?: boolean
  restricted_writes?: boolean
  created_at_lower_limit?: number
  created_at_upper_limit?: number
}

/** The media type a client sends in `Accept` to ask for the NIP-11 document. */
export const NIP11_MEDIA_TYPE = 'application/nostr+json'

/** True when an `Accept` header asks for the NIP-11 document. */
export const wantsRelayInformation = (accept: string | undefined): boolean =>
  accept !== undefined && accept.split(',').some(part => part.trim().split(';')[0]?.trim().toLowerCase() === NIP11_MEDIA_TYPE)

/** Builds the document, dropping empty optional strings so clients see only what is configured. */
export const relayInformation = (doc: RelayInformation): RelayInformation => {
  const out: Record<string, unknown> = {}
  for (const [key, value] of Object.entries(doc)) if (value !== undefined && value !== '') out[key] = value
  return out as unknown as RelayInformation
}
