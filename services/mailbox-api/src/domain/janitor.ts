import type { Pool } from 'pg'

/** Rows purged per table in one sweep. */
export type Purged = Record<'keypackage' | 'welcome' | 'dm_hint' | 'nip98' | 'rate_limit', number>

const BATCH = 5000

/**
 * Deletes expired rows in batches. Safe with many instances sweeping at once: each batch claims its
 * rows with FOR UPDATE SKIP LOCKED, so instances never wait on or double-count each other's rows.
 */
export const purgeExpired = async (pool: Pool): Promise<Purged> => {
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
  }
}
