import { randomBytes } from 'node:crypto'
import { checkAuthEvent, checkEvent, readableId, type AuthFailure, type Reason } from '@msr/nostr'
import type { RelayMetrics } from '../metrics.js'
import type { VerifierPool } from '@msr/workers'
import type { Settings } from '../settings.js'
import type { Client } from './client.js'

/** What NIP-42 needs. */
export interface AuthDeps {
  settings: Settings
  verifier: VerifierPool
  metrics: RelayMetrics
  now: () => number
}

/**
 * Keys one connection may authenticate as (NIP-42 allows several). Each is a valid signature over this
 * connection's challenge, which anyone can produce with fresh keys: the bound keeps one connection from
 * growing its set without end. A client with more accounts opens another connection.
 */
export const MAX_AUTHED_KEYS = 16

/** A fresh challenge: 32 random bytes as hex, unguessable and unique per connection. */
export const newChallenge = (): string => randomBytes(32).toString('hex')

/** Gives the connection a challenge (if it has none) and sends it. */
export const sendChallenge = (client: Client): void => {
  client.challenge ??= newChallenge()
  client.authChallenge(client.challenge)
}

/**
 * NIP-42 AUTH: checks the event's shape and id, kind 22242, created_at, the challenge and relay tags,
 * then its signature on the verifier pool; on success the connection is authenticated as its pubkey
 * (in addition to any earlier one) once the EVENTs received before it (`earlier`) have been judged.
 * Answers OK either way; the event is never stored or broadcast. Resolves with the answer: the refusal's
 * reason, or `authenticated`.
 */
export const handleAuth = async (deps: AuthDeps, client: Client, raw: unknown, earlier: Promise<void> = Promise.resolve()): Promise<Reason | 'authenticated'> => {
  const { access } = deps.settings.current
  const id = readableId(raw)
  // The label names the failed check (never parsed from the message, which may carry the relay's URL).
  const refuse = (reason: Reason, failure: AuthFailure | 'signature' | 'disabled' | 'invalid' | 'keys' = 'invalid'): Reason => {
    deps.metrics.authFailures.inc({ reason: failure })
    if (id) client.ok(id, false, reason)
    else client.notice(reason)
    return reason
  }
  if (!access.authEnabled) return refuse('restricted: authentication (NIP-42) is not enabled on this relay', 'disabled')
  const checked = checkEvent(raw)
  if (!checked.ok) return refuse(checked.reason)
  // A connection opened before auth was enabled (reload) has no challenge yet: an empty challenge tag must not match it.
  if (client.challenge === undefined) return refuse('auth-required: no challenge was sent to this connection yet; answer the one that follows', 'challenge')
  const { event } = checked.value
  const refused = checkAuthEvent(event, { challenge: client.challenge, relayUrl: access.relayUrl, now: deps.now() })
  if (refused) return refuse(refused.reason, refused.failure)
  if (client.authed.size >= MAX_AUTHED_KEYS && !client.authed.has(event.pubkey))
    return refuse(`restricted: this connection is already authenticated as ${MAX_AUTHED_KEYS} keys; open another connection for more`, 'keys')
  const verdict = await deps.verifier.verify(checked.value)
  if (verdict === 'error') return refuse('error: the signature could not be checked; try again', 'signature')
  if (verdict === 'invalid') return refuse('auth-required: the AUTH event has a bad signature', 'signature')
  // EVENTs sent before this AUTH are judged as they were sent: unauthenticated.
  await earlier
  client.authed.add(event.pubkey)
  deps.metrics.authSuccesses.inc()
  client.ok(event.id, true, '')
  return 'authenticated'
}
