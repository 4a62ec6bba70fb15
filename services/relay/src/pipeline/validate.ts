import { availableParallelism } from 'node:os'
import {
  AUTH_KIND,
  checkEvent,
  expirationOf,
  isEphemeral,
  readableId,
  type CheckedEvent,
  type NostrEvent,
  type Reason,
  type VerifiedEvent,
} from '@msr/nostr'
import type { VerifierPool } from '@msr/workers'

/**
 * Signature-verification worker threads for `[verification] workers`: the number given, or with 0 one fewer
 * than the CPU cores, at least one. The event loop and the writer thread need a core between them, and
 * verifiers on every core took it from them: in-memory ingest on 2 cores, one verifier against two, seven
 * alternated pairs: 15,296 against 14,714 OK/s on average, OK p99 60.2 against 66.2 ms (docs/performance-log.md).
 */
export const verifierThreads = (workers: number, cores: number = availableParallelism()): number => (workers > 0 ? workers : Math.max(1, cores - 1))

/** The `[limitation]` values the validate stage enforces. */
export interface EventLimits {
  max_event_tags: number
  max_event_time_older_than_now: number
  max_event_time_newer_than_now: number
  /** Kinds that must carry exactly one `p` tag (NIP-59 gift wraps). */
  single_recipient_kinds: readonly number[]
  /** Kinds refused outright (a top-level MLS Welcome, 444, in the Marmot profile). */
  refused_kinds: readonly number[]
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

const rejectAuthKind = (e: NostrEvent): Reason | undefined =>
  e.kind === AUTH_KIND ? 'invalid: kind 22242 is only accepted in an AUTH message' : undefined

const rejectExpired = (e: NostrEvent, now: number): Reason | undefined => {
  const expiration = expirationOf(e)
  return expiration !== undefined && expiration <= now ? 'invalid: event has expired (NIP-40)' : undefined
}

/** A kind this relay refuses, and a single-recipient kind without exactly one `p` tag. */
const rejectByKind = (e: NostrEvent, limits: EventLimits): Reason | undefined => {
  if (limits.refused_kinds.includes(e.kind))
    return e.kind === 444
      ? 'invalid: kind 444 (an MLS Welcome) is accepted only inside a NIP-59 gift wrap (kind 1059)'
      : `invalid: kind ${e.kind} is not accepted on this relay`
  if (!limits.single_recipient_kinds.includes(e.kind)) return undefined
  const recipients = e.tags.filter(t => t[0] === 'p').length
  return recipients === 1 ? undefined : `invalid: a kind ${e.kind} event must name exactly one recipient (one p tag, NIP-59); it has ${recipients}`
}

/** The cheap checks, run before the signature so that spam costs no curve math. */
export const checkLimits = (e: NostrEvent, limits: EventLimits, now: number): Reason | undefined => {
  const auth = rejectAuthKind(e)
  if (auth) return auth
  const byKind = rejectByKind(e, limits)
  if (byKind) return byKind
  if (e.tags.length > limits.max_event_tags) return `invalid: too many tags (at most ${limits.max_event_tags})`
  const older = limits.max_event_time_older_than_now
  if (older > 0 && e.created_at < now - older) return `invalid: created_at is more than ${older} seconds in the past`
  const newer = limits.max_event_time_newer_than_now
  if (newer > 0 && e.created_at > now + newer) return `invalid: created_at is more than ${newer} seconds in the future`
  return rejectExpired(e, now)
}

/** Shape, id and limits, synchronously; the signature is checked separately by `verifySignature`. */
export const precheck = (raw: unknown, limits: EventLimits, now: number): CheckedEvent | Invalid => {
  const checked = checkEvent(raw)
  if (!checked.ok) return { eventId: readableId(raw), reason: checked.reason }
  const reason = checkLimits(checked.value.event, limits, now)
  return reason ? { eventId: checked.value.event.id, reason } : checked.value
}

/**
 * Shape, id and what may be stored at all, for events that come back from storage (an import, a
 * snapshot): kind 22242 and ephemeral kinds never are, nor an event already expired. The publishing
 * limits (tag count, created_at window) are not applied: they were, when the event was first published.
 */
export const precheckStored = (raw: unknown, now: number): CheckedEvent | Invalid => {
  const checked = checkEvent(raw)
  if (!checked.ok) return { eventId: readableId(raw), reason: checked.reason }
  const { event } = checked.value
  if (event.kind === AUTH_KIND) return { eventId: event.id, reason: 'invalid: kind 22242 is never stored' }
  if (isEphemeral(event.kind)) return { eventId: event.id, reason: 'invalid: ephemeral kinds are never stored' }
  const expired = rejectExpired(event, now)
  return expired ? { eventId: event.id, reason: expired } : checked.value
}

/**
 * Shape, id and what may come from another replica: never kind 22242. Ephemeral events pass (fanned out,
 * never stored). The origin applied the publishing limits, access rules and NIP-40 (an event that expired
 * on its way is the subscriber's to drop, see `isExpired`); they are not applied again.
 */
export const precheckReplicated = (raw: unknown): CheckedEvent | Invalid => {
  const checked = checkEvent(raw)
  if (!checked.ok) return { eventId: readableId(raw), reason: checked.reason }
  const reason = rejectAuthKind(checked.value.event)
  return reason ? { eventId: checked.value.event.id, reason } : checked.value
}

/** Whether the event's NIP-40 expiration is at or before `now` (it would never be served). */
export const isExpired = (e: NostrEvent, now: number): boolean => rejectExpired(e, now) !== undefined

/** The one place a VerifiedEvent is made; reached only through the two doors below. */
const valid = (checked: CheckedEvent): ValidEvent => ({ event: checked.event as VerifiedEvent, json: Buffer.from(checked.json, 'utf8') })

/** Door 1, every live event and a verifying import: the signature checked on the worker pool. */
export const verifySignature = async (pool: VerifierPool, checked: CheckedEvent): Promise<ValidEvent | Invalid> => {
  const verdict = await pool.verify(checked)
  if (verdict === 'valid') return valid(checked)
  const reason: Reason = verdict === 'invalid' ? 'invalid: bad signature' : 'error: signature check failed; try again'
  return { eventId: checked.event.id, reason }
}

/** Why an event may be stored without its signature being checked again. */
export type UnverifiedOrigin =
  /** The relay's own snapshot, restored on boot: every event in it was verified when it was published here. */
  | 'own snapshot'
  /** `msr-relay import --no-verify`: the operator vouches for the file. */
  | 'operator vouched'
  /** An event from another replica with `[replication] verify = false`: the origin checked it, and the topic is the relays' own. */
  | 'replica, verify off'
  /** An entry of this replica's replication outbox, fanned out once published: it was verified when it was stored here. */
  | 'own replication outbox'

/**
 * Door 2: an event from storage (already through `precheckStored`: shape, id, storable) whose signature
 * is deliberately not checked, for the reason `origin` names. Nothing else may skip door 1.
 */
export const acceptUnverified = (checked: CheckedEvent, origin: UnverifiedOrigin): ValidEvent => {
  void origin // the type is the record: each caller names why it skips the signature
  return valid(checked)
}

/** Narrows a precheck result. */
export const isInvalid = (v: CheckedEvent | ValidEvent | Invalid): v is Invalid => 'reason' in v
