import { timingSafeEqual } from 'node:crypto'
import type { NostrEvent } from './event.js'
import type { Reason } from './reason.js'

/** The kind of a NIP-42 authentication event. */
export const AUTH_KIND = 22242

/** How far (seconds) an AUTH event's created_at may be from now, either way. */
export const AUTH_WINDOW_SECONDS = 600

const DEFAULT_PORTS: Record<string, string> = { 'ws:': '80', 'wss:': '443', 'http:': '80', 'https:': '443' }

/**
 * A relay URL reduced to what identifies it: scheme (ws/wss), lowercase host, explicit port (defaults
 * filled in) and path without trailing slash; query and fragment dropped. undefined when not a URL.
 */
export const normalizeRelayUrl = (value: string): string | undefined => {
  let url: URL
  try {
    url = new URL(value.trim())
  } catch {
    return undefined
  }
  const scheme = url.protocol === 'https:' ? 'wss:' : url.protocol === 'http:' ? 'ws:' : url.protocol
  if (scheme !== 'ws:' && scheme !== 'wss:') return undefined
  const port = url.port || DEFAULT_PORTS[scheme]
  const path = url.pathname.replace(/\/+$/, '')
  return `${scheme}//${url.hostname.toLowerCase()}:${port}${path}`
}

/** The first value of a tag by name. */
const tagValue = (event: NostrEvent, name: string): string | undefined => event.tags.find(t => t[0] === name)?.[1]

/** Which NIP-42 check refused an AUTH event: a stable label for metrics. */
export type AuthFailure = 'kind' | 'created_at' | 'challenge' | 'relay'

/** The challenge is a secret of its connection: compared in constant time (its length, 64, is not). */
const sameChallenge = (sent: string | undefined, expected: string): boolean => {
  if (sent === undefined) return false
  const a = Buffer.from(sent, 'utf8')
  const b = Buffer.from(expected, 'utf8')
  return a.length === b.length && timingSafeEqual(a, b)
}

/**
 * Checks a NIP-42 AUTH event against the connection's challenge and the relay's public URL (its
 * signature is checked separately). Refusals use `auth-required:`: the connection stays unauthenticated.
 */
export const checkAuthEvent = (
  event: NostrEvent,
  expected: { challenge: string; relayUrl: string; now: number },
): { failure: AuthFailure; reason: Reason } | undefined => {
  if (event.kind !== AUTH_KIND) return { failure: 'kind', reason: `auth-required: an AUTH event must be of kind ${AUTH_KIND}` }
  if (Math.abs(event.created_at - expected.now) > AUTH_WINDOW_SECONDS)
    return { failure: 'created_at', reason: `auth-required: the AUTH event's created_at must be within ${AUTH_WINDOW_SECONDS / 60} minutes of now` }
  if (!sameChallenge(tagValue(event, 'challenge'), expected.challenge)) return { failure: 'challenge', reason: 'auth-required: the challenge tag does not match this connection' }
  const relay = tagValue(event, 'relay')
  const want = normalizeRelayUrl(expected.relayUrl)
  if (relay === undefined || want === undefined || normalizeRelayUrl(relay) !== want)
    return { failure: 'relay', reason: `auth-required: the relay tag does not name this relay: expected ${expected.relayUrl}` }
  return undefined
}
