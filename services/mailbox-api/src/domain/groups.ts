import type { Pool, PoolClient } from 'pg'

/** A group registry entry as the API returns it (non-authoritative: MLS is the authority). */
export interface Group {
  group_id: string
  display_name: string | null
  avatar_url: string | null
  owner_pubkey: string | null
  last_epoch: number | null
  last_event_ts: number | null
  /** The kind-445 hints applied to it (each event id once). */
  message_count: number
  relays: string[]
  created_at: number
  updated_at: number
}

const COLUMNS = `group_id, display_name, avatar_url, owner_pubkey, last_epoch, last_event_ts, message_count, relays,
  extract(epoch FROM created_at)::bigint AS created_at, extract(epoch FROM updated_at)::bigint AS updated_at`

/** One group, or undefined. */
export const getGroup = async (pool: Pool, id: string): Promise<Group | undefined> =>
  (await pool.query<Group>(`SELECT ${COLUMNS} FROM groups WHERE group_id = $1`, [id])).rows[0]

/** Groups ordered by id after `after`, at most `limit` (admin listing). */
export const listGroups = async (pool: Pool, limit: number, after: string): Promise<Group[]> =>
  (await pool.query<Group>(`SELECT ${COLUMNS} FROM groups WHERE group_id > $1 ORDER BY group_id LIMIT $2`, [after, limit])).rows

/** The metadata an admin may set; absent fields keep their stored value. */
export interface GroupMetadata {
  group_id: string
  display_name?: string | null
  avatar_url?: string | null
  owner_pubkey?: string | null
  relays?: string[]
}

/** Creates or updates a group's metadata (admin); epoch, last event and message count come only from hints. */
export const upsertGroupMetadata = async (pool: Pool, meta: GroupMetadata): Promise<Group> => {
  const { rows } = await pool.query<Group>(
    `INSERT INTO groups (group_id, display_name, avatar_url, owner_pubkey, relays)
     VALUES ($1, $2, $3, $4, COALESCE($5::jsonb, '[]'::jsonb))
     ON CONFLICT (group_id) DO UPDATE SET
       display_name = CASE WHEN $6 THEN EXCLUDED.display_name ELSE groups.display_name END,
       avatar_url   = CASE WHEN $7 THEN EXCLUDED.avatar_url ELSE groups.avatar_url END,
       owner_pubkey = CASE WHEN $8 THEN EXCLUDED.owner_pubkey ELSE groups.owner_pubkey END,
       relays       = CASE WHEN $9 THEN EXCLUDED.relays ELSE groups.relays END,
       updated_at   = now()
     RETURNING ${COLUMNS}`,
    [
      meta.group_id,
      meta.display_name ?? null,
      meta.avatar_url ?? null,
      meta.owner_pubkey ?? null,
      meta.relays === undefined ? null : JSON.stringify(meta.relays),
      'display_name' in meta,
      'avatar_url' in meta,
      'owner_pubkey' in meta,
      'relays' in meta,
    ],
  )
  return rows[0] as Group
}

/**
 * Records what a kind-445 hint says about a group: one more message, the epoch only ever rises (a hint
 * without one, as Marmot sends, keeps it), and the last event time only moves forward (a late hint
 * counts, but leaves the time as it is). The caller applies each event id once (consumeHint). Runs on the
 * pool or inside the caller's transaction.
 */
export const applyGroupHint = async (db: Pool | PoolClient, hint: { groupId: string; epoch?: number; eventTs: number }): Promise<void> => {
  await db.query(
    `INSERT INTO groups (group_id, last_epoch, last_event_ts, message_count) VALUES ($1, $2, $3, 1)
     ON CONFLICT (group_id) DO UPDATE SET
       last_epoch = GREATEST(groups.last_epoch, EXCLUDED.last_epoch),
       last_event_ts = GREATEST(groups.last_event_ts, EXCLUDED.last_event_ts),
       message_count = groups.message_count + 1,
       updated_at = now()`,
    [hint.groupId, hint.epoch ?? null, hint.eventTs],
  )
}
