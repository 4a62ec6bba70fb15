import type { Pool } from 'pg'

/** A DM hint: the id of a kind-446 event waiting on the relay for `recipient`. */
export interface DmHint {
  event_id: string
  sender: string
  created_at: number
  received_at: number
}

/** Records hints for each recipient; idempotent on (event id, recipient). */
export const recordDmHint = async (
  pool: Pool,
  hint: { eventId: string; sender: string; createdAt: number; recipients: string[]; ttlSeconds: number },
): Promise<void> => {
  if (hint.recipients.length === 0) return
  await pool.query(
    `INSERT INTO dm_hints (event_id, recipient_pubkey, sender_pubkey, event_created_at, expires_at)
     SELECT $1, r, $2, $3, now() + make_interval(secs => $4) FROM unnest($5::text[]) AS r
     ON CONFLICT (event_id, recipient_pubkey) DO NOTHING`,
    [hint.eventId, hint.sender, hint.createdAt, hint.ttlSeconds, hint.recipients],
  )
}

/** The recipient's unexpired hints received at or after `since` (unix seconds), oldest first. */
export const listDmHints = async (pool: Pool, recipient: string, since: number, limit: number): Promise<DmHint[]> =>
  (
    await pool.query<DmHint>(
      `SELECT event_id, sender_pubkey AS sender, event_created_at AS created_at, extract(epoch FROM received_at)::bigint AS received_at
       FROM dm_hints WHERE recipient_pubkey = $1 AND expires_at > now() AND received_at >= to_timestamp($2)
       ORDER BY seq LIMIT $3`,
      [recipient, since, limit],
    )
  ).rows
