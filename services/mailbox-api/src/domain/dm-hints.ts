import type { Pool, PoolClient } from 'pg'
import { encodeCursor } from './mailbox.js'

/** A DM hint: the id of a kind-446 event waiting on the relay for `recipient`. */
export interface DmHint {
  event_id: string
  sender: string
  created_at: number
  received_at: number
}

/** Records hints for each recipient; idempotent on (event id, recipient). Runs on the pool or in a transaction. */
export const recordDmHint = async (
  db: Pool | PoolClient,
  hint: { eventId: string; sender: string; createdAt: number; recipients: string[]; ttlSeconds: number },
): Promise<void> => {
  if (hint.recipients.length === 0) return
  await db.query(
    `INSERT INTO dm_hints (event_id, recipient_pubkey, sender_pubkey, event_created_at, expires_at)
     SELECT $1, r, $2, $3, now() + make_interval(secs => $4) FROM unnest($5::text[]) AS r
     ON CONFLICT (event_id, recipient_pubkey) DO NOTHING`,
    [hint.eventId, hint.sender, hint.createdAt, hint.ttlSeconds, hint.recipients],
  )
}

/** A page of hints, and the cursor of the next page (undefined at the end). */
export interface DmHintPage {
  items: DmHint[]
  nextCursor: string | undefined
}

/**
 * The recipient's unexpired hints received at or after `since` (unix seconds) and after the cursor
 * position `after`, oldest first. received_at is floored, not rounded: clients pass it back as `since`,
 * which must still include the hint; the cursor pages through hints that share a second.
 */
export const listDmHints = async (pool: Pool, recipient: string, since: number, after: number, limit: number): Promise<DmHintPage> => {
  const { rows } = await pool.query<DmHint & { seq: number }>(
    `SELECT seq, event_id, sender_pubkey AS sender, event_created_at AS created_at, floor(extract(epoch FROM received_at))::bigint AS received_at
     FROM dm_hints WHERE recipient_pubkey = $1 AND expires_at > now() AND received_at >= to_timestamp($2) AND seq > $3
     ORDER BY seq LIMIT $4`,
    [recipient, since, after, limit + 1],
  )
  const page = rows.slice(0, limit)
  const last = page[page.length - 1]
  return {
    items: page.map(({ seq: _seq, ...hint }) => hint),
    nextCursor: rows.length > limit && last ? encodeCursor(last.seq) : undefined,
  }
}
