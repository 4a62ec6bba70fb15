import { AUTH_KIND, checkEvent, expirationOf, markVerified, readableId, type CheckedEvent, type NostrEvent, type Reason, type VerifiedEvent } from '@msr/nostr'
import type { VerifierPool } from '@msr/workers'

/** The `[limitation]` values the validate stage enforces. */
export interface EventLimits {
  max_event_tags: number
  max_event_time_older_than_now: number
  max_event_time_newer_than_now: number
}

/** An event that passed every check, with its canonical JSON as UTF-8 bytes (stored and sent as is). */
export interface ValidEvent {
  event: VerifiedEvent
  json: Buffer
}

/** A refused event: the id to answer OK with (when readable) and why. */
export interface Invalid {
  eventId: string | undefined
  reason: Reason
}

/** The cheap checks, run before the signature so that spam costs no curve math. */
export const checkLimits = (e: NostrEvent, limits: EventLimits, now: number): Reason | undefined => {
  if (e.kind === AUTH_KIND) return 'invalid: kind 22242 is only accepted in an AUTH message'
  if (e.tags.length > limits.max_event_tags) return `invalid: too many tags (at most ${limits.max_event_tags})`
  const older = limits.max_event_time_older_than_now
  if (older > 0 && e.created_at < now - older) return `invalid: created_at is more than ${older} seconds in the past`
  const newer = limits.max_event_time_newer_than_now
  if (newer > 0 && e.created_at > now + newer) return `invalid: created_at is more than ${newer} seconds in the future`
  const expiration = expirationOf(e)
  if (expiration !== undefined && expiration <= now) return 'invalid: event has expired (NIP-40)'
  return undefined
}

/** Shape, id and limits, synchronously; the signature is checked separately by `verifySignature`. */
export const precheck = (raw: unknown, limits: EventLimits, now: number): CheckedEvent | Invalid => {
  const checked = checkEvent(raw)
  if (!checked.ok) return { eventId: readableId(raw), reason: checked.reason }
  const reason = checkLimits(checked.value.event, limits, now)
  return reason ? { eventId: checked.value.event.id, reason } : checked.value
}

/** The signature check on the worker pool; only this produces a VerifiedEvent. */
export const verifySignature = async (pool: VerifierPool, checked: CheckedEvent): Promise<ValidEvent | Invalid> => {
  const verdict = await pool.verify(checked)
  if (verdict === 'valid') return { event: markVerified(checked.event), json: Buffer.from(checked.json, 'utf8') }
  const reason: Reason = verdict === 'invalid' ? 'invalid: bad signature' : 'error: signature check failed; try again'
  return { eventId: checked.event.id, reason }
}

/** Narrows a precheck result. */
export const isInvalid = (v: CheckedEvent | ValidEvent | Invalid): v is Invalid => 'reason' in v
