import type { Pool, PoolClient } from 'pg'
import { GROUP_MESSAGE_KIND, type Hint } from '@msr/hints'
import type { Logger } from '@msr/telemetry'
import { isStorableText, UNSTORABLE_TEXT } from '../db/storable-text.js'
import type { MailboxMetrics } from '../metrics.js'
import { recordDmHint } from './dm-hints.js'
import { applyGroupHint } from './groups.js'
import { hintParent, operation } from '../tracing.js'
import { SpanKind } from '@opentelemetry/api'

/** What became of a received hint. Every outcome means the message is to be acknowledged. */
export type HintOutcome = 'applied' | 'duplicate' | 'malformed'

/**
 * A decoded push envelope or pulled message: a hint (with the message attributes, which carry the relay's
 * trace context), or why it is not one.
 */
export type ReceivedHint =
  | { ok: true; hint: Hint; messageId: string; attributes?: Readonly<Record<string, string>> | undefined }
  | { ok: false; reason: string; messageId?: string }

/** Where a hint came in. */
export type HintInput = 'push' | 'pull'

/** Consumes one received hint; rejects (nothing committed) when the database fails, so it is redelivered. */
export type HintReceiver = (received: ReceivedHint, via: HintInput) => Promise<HintOutcome>

/** What a new hint changes: a 445 its group (one more message; epoch and time only forward), a 446 a dm hint per recipient. */
const applyHint = async (client: PoolClient, hint: Hint, dmHintTtlSeconds: number): Promise<void> => {
  if (hint.kind === GROUP_MESSAGE_KIND && hint.group !== undefined) {
    const group = { groupId: hint.group, ...(hint.epoch !== undefined && { epoch: hint.epoch }), eventTs: hint.created_at }
    return operation('mailbox.registry.update', { 'mailbox.source': 'hint' }, () => applyGroupHint(client, group))
  }
  if (hint.recipients !== undefined) {
    const dm = { eventId: hint.id, sender: hint.pubkey, createdAt: hint.created_at, recipients: hint.recipients, ttlSeconds: dmHintTtlSeconds }
    return operation('mailbox.dm_hints.record', { 'mailbox.recipients': hint.recipients.length }, () => recordDmHint(client, dm))
  }
}

/**
 * Applies a hint at most once, keyed on its Nostr event id: in one transaction the id goes into
 * hints_seen, and only when it was not there yet does the hint change anything. A concurrent delivery of
 * the same id waits on the first one's row and then finds it: 'duplicate'.
 */
export const consumeHint = async (pool: Pool, hint: Hint, opts: { dmHintTtlSeconds: number }): Promise<'applied' | 'duplicate'> => {
  const client = await pool.connect()
  let broken: Error | undefined
  try {
    await client.query('BEGIN')
    const seen = await client.query('INSERT INTO hints_seen (event_id) VALUES ($1) ON CONFLICT (event_id) DO NOTHING', [hint.id])
    const fresh = seen.rowCount === 1
    if (fresh) await applyHint(client, hint, opts.dmHintTtlSeconds)
    await client.query('COMMIT')
    return fresh ? 'applied' : 'duplicate'
  } catch (error) {
    // A connection that cannot even roll back is discarded rather than returned to the pool.
    broken = await client.query('ROLLBACK').then(
      () => undefined,
      (e: unknown) => (e instanceof Error ? e : new Error(String(e))),
    )
    throw error
  } finally {
    client.release(broken)
  }
}

/**
 * A hint whose group id PostgreSQL cannot store as sent is malformed: acknowledged, not a database failure
 * Pub/Sub would redeliver forever. (Its other strings are 64-hex, checked by the hint schema.)
 */
const storableOrMalformed = (received: ReceivedHint): ReceivedHint =>
  received.ok && received.hint.group !== undefined && !isStorableText(received.hint.group)
    ? { ok: false, reason: `group: ${UNSTORABLE_TEXT}`, messageId: received.messageId }
    : received

/**
 * The one handler behind both hint inputs (push route and pull consumer): consumes a hint, counts every
 * outcome, and logs a malformed message with its reason and message id, never its data.
 */
export const createHintReceiver =
  (deps: { pool: Pool; metrics: MailboxMetrics; logger: Logger; dmHintTtlSeconds: number; now?: () => number }): HintReceiver =>
  async (input, via) => {
    const received = storableOrMalformed(input)
    if (!received.ok) {
      deps.metrics.hints.inc({ kind: 'unknown', outcome: 'malformed' })
      deps.logger.warn({ via, messageId: received.messageId, reason: received.reason }, 'malformed hint acknowledged')
      return 'malformed'
    }
    const { hint } = received
    // A span per hint: the relay's trace goes on here (the message attributes name its publish span).
    const attributes = { 'nostr.kind': hint.kind, 'nostr.event_id': hint.id, 'mailbox.via': via }
    const options = { ...hintParent(received.attributes), kind: SpanKind.CONSUMER, outcomeOf: (result: HintOutcome) => result }
    return operation('mailbox.hint.consume', attributes, async () => {
      const outcome = await consumeHint(deps.pool, hint, deps)
      deps.metrics.hints.inc({ kind: String(hint.kind), outcome })
      if (outcome === 'applied') deps.metrics.hintDeliverySeconds.observe({ kind: String(hint.kind) }, Math.max(0, (deps.now ?? Date.now)() / 1000 - hint.created_at))
      if (outcome === 'applied' && hint.kind === GROUP_MESSAGE_KIND) deps.metrics.groupUpserts.inc({ source: 'hint' })
      deps.logger.debug({ via, messageId: received.messageId, eventId: hint.id, kind: hint.kind, outcome }, 'hint consumed')
      return outcome
    }, options)
  }
