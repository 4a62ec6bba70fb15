import { randomBytes } from 'node:crypto'
import { checkAuthEvent, checkEvent, readableId, type Reason } from '@msr/nostr'
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

/** A fresh challenge: 32 random bytes as hex, unguessable and unique per connection. */
export const newChallenge = (): string => randomBytes(32).toString('hex')

/** Gives the connection a challenge (if it has none) and sends it. */
export const sendChallenge = (client: Client): void => {
  client.challenge ??= newChallenge()
  client.authChallenge(client.challenge)
}

/** The metric label for a refusal: the part of the reason that names the failed check. */
const failureLabel = (reason: Reason): string =>
  /kind/.test(reason) ? 'kind' : /created_at/.test(reason) ? 'created_at' : /challenge/.test(reason) ? 'challenge' : /relay/.test(reason) ? 'relay' : /signature/.test(reason) ? 'signature' : 'invalid'

/**
 * NIP-42 AUTH: checks the event's shape and id, kind 22242, created_at, the challenge and relay tags,
 * then its signature on the verifier pool; on success the connection is authenticated as its pubkey
 * (in addition to any earlier one) once the EVENTs received before it (`earlier`) have been judged.
 * Answers OK either way; the event is never stored or broadcast.
 */
export const handleAuth = async (deps: AuthDeps, client: Client, raw: unknown, earlier: Promise<void> = Promise.resolve()): Promise<void> => {
  const { access } = deps.settings.current
  const id = readableId(raw)
  const refuse = (reason: Reason) => {
    deps.metrics.authFailures.inc({ reason: failureLabel(reason) })
    if (id) client.ok(id, false, reason)
    else client.notice(reason)
  }
  if (!access.authEnabled) return refuse('restricted: authentication (NIP-42) is not enabled on this relay')
  const checked = checkEvent(raw)
  if (!checked.ok) return refuse(checked.reason)
  // A connection opened before auth was enabled (reload) has no challenge yet: an empty challenge tag must not match it.
  if (client.challenge === undefined) return refuse('auth-required: no challenge was sent to this connection yet; answer the one that follows')
  const { event } = checked.value
  const reason = checkAuthEvent(event, { challenge: client.challenge, relayUrl: access.relayUrl, now: deps.now() })
  if (reason) return refuse(reason)
  const verdict = await deps.verifier.verify(checked.value)
  if (verdict === 'error') return refuse('error: the signature could not be checked; try again')
  if (verdict === 'invalid') return refuse('auth-required: the AUTH event has a bad signature')
  // EVENTs sent before this AUTH are judged as they were sent: unauthenticated.
  await earlier
  client.authed.add(event.pubkey)
  deps.metrics.authSuccesses.inc()
  client.ok(event.id, true, '')
}
