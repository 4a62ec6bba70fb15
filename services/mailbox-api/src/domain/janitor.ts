import type { Pool } from 'pg'

/** Rows purged per table in one sweep. */
export type Purged = Record<'keypackage' | 'welcome' | 'dm_hint' | 'nip98' | 'rate_limit' | 'hint_seen', number>

const BATCH = 5000

/** The shortest time a seen hint id is kept: longer than Pub/Sub retries a message (7 days by default). */
export const MIN_HINT_SEEN_RETENTION_SECONDS = 30 * 86400

/**
 * How long a seen hint id is kept: as long as a dm hint it produced can live, and at least 30 days, so a
 * redelivery never re-creates a hint that expired.
 */
export const hintSeenRetention = (dmHintTtlSeconds: number): number => Math.max(dmHintTtlSeconds, MIN_HINT_SEEN_RETENTION_SECONDS)

/**
 * Deletes expired rows in batches. Safe with many instances sweeping at once: each batch claims its
 * rows with FOR UPDATE SKIP LOCKED, so instances never wait on or double-count each other's rows.
 */
export const purgeExpired = async (pool: Pool, opts: { hintSeenRetentionSeconds?: number } = {}): Promise<Purged> => {
  const retention = Math.floor(opts.hintSeenRetentionSeconds ?? MIN_HINT_SEEN_RETENTION_SECONDS)
  const sweep = async (table: string, expired: string): Promise<number> => {
    let total = 0
    for (;;) {
      const { rowCount } = await pool.query(
        `DELETE FROM ${table} WHERE ctid IN (SELECT ctid FROM ${table} WHERE ${expired} LIMIT ${BATCH} FOR UPDATE SKIP LOCKED)`,
      )
      total += rowCount ?? 0
      if ((rowCount ?? 0) < BATCH) return total
    }
  }
  return {
    keypackage: await sweep('mail_keypackages', 'expires_at <= now()'),
    welcome: await sweep('mail_welcomes', 'expires_at <= now()'),
    dm_hint: await sweep('dm_hints', 'expires_at <= now()'),
    nip98: await sweep('nip98_replay', 'expires_at <= now()'),
    rate_limit: await sweep('rate_limits', `expire IS NOT NULL AND expire <= (extract(epoch FROM now()) * 1000)::bigint`),
    hint_seen: await sweep('hints_seen', `seen_at <= now() - make_interval(secs => ${retention})`),
  }
}
