import { randomUUID } from 'node:crypto'
import type { Pool } from 'pg'

/** The two mailboxes share one shape: a table, and the columns that carry the artifact. */
export interface MailboxKind {
  name: 'keypackage' | 'welcome'
  table: 'mail_keypackages' | 'mail_welcomes'
  /** Artifact columns beyond the common ones, in API field order. */
  columns: readonly string[]
}

export const KEYPACKAGES: MailboxKind = { name: 'keypackage', table: 'mail_keypackages', columns: ['content_b64', 'tags'] }
export const WELCOMES: MailboxKind = { name: 'welcome', table: 'mail_welcomes', columns: ['group_id', 'welcome_b64', 'ratchet_tree_b64'] }

/** A mailbox item as the API returns it (times as unix seconds). */
export type MailboxItem = Record<string, unknown> & {
  id: string
  recipient: string
  sender: string
  created_at: number
  expires_at: number
  picked_up_at: number | null
}

// The statements of every request (deposit, pickup, ack) are named: each pooled connection prepares them
// once, so PostgreSQL does not parse and plan them again per request. A name stands for one text (per kind).

/** What a deposit stores. */
export interface Deposit {
  recipient: string
  sender: string
  ttlSeconds: number
  fields: Record<string, unknown>
}

/** The array type an artifact column's values travel in. */
const arrayType = (column: string): string => (column === 'tags' ? 'jsonb[]' : 'text[]')

const depositSql = (kind: MailboxKind): string => {
  const columns = kind.columns.join(', ')
  const arrays = kind.columns.map((c, i) => `$${i + 5}::${arrayType(c)}`).join(', ')
  return `INSERT INTO ${kind.table} (id, recipient_pubkey, sender_pubkey, expires_at, ${columns})
     SELECT id, recipient, sender, now() + make_interval(secs => ttl), ${columns}
     FROM unnest($1::text[], $2::text[], $3::text[], $4::float8[], ${arrays}) WITH ORDINALITY AS t(id, recipient, sender, ttl, ${columns}, ord)
     ORDER BY ord`
}

/**
 * Stores items (one statement, one commit, whatever their number: the deposit batcher's statement);
 * resolves with their ids, in order, once the rows are committed.
 */
export const depositMany = async (pool: Pool, kind: MailboxKind, items: readonly Deposit[]): Promise<string[]> => {
  const ids = items.map(() => randomUUID())
  const artifacts = kind.columns.map(c => items.map(i => (c === 'tags' && i.fields[c] !== undefined ? JSON.stringify(i.fields[c]) : (i.fields[c] ?? null))))
  await pool.query({
    name: `mailbox-deposit-${kind.name}`,
    text: depositSql(kind),
    values: [ids, items.map(i => i.recipient), items.map(i => i.sender), items.map(i => i.ttlSeconds), ...artifacts],
  })
  return ids
}

/** Stores an item for `recipient`; resolves with its id once the row is committed. */
export const deposit = async (pool: Pool, kind: MailboxKind, item: Deposit): Promise<string> => (await depositMany(pool, kind, [item]))[0] as string

/** A page of items, and the cursor of the next page (undefined at the end). */
export interface Page {
  items: MailboxItem[]
  nextCursor: string | undefined
}

/** Opaque cursors: the position after which the next page starts. */
export const encodeCursor = (seq: number): string => Buffer.from(`s:${seq}`).toString('base64url')

/** The position in a cursor, or undefined when it is not one of ours. */
export const decodeCursor = (cursor: string): number | undefined => {
  const match = /^s:(\d{1,18})$/.exec(Buffer.from(cursor, 'base64url').toString('utf8'))
  return match ? Number(match[1]) : undefined
}

/**
 * The recipient's unexpired items oldest first, after `cursor`; marks each one's first pickup in the
 * same statement. Expired items are invisible at once, whether or not the janitor has purged them.
 */
export const pickup = async (pool: Pool, kind: MailboxKind, recipient: string, limit: number, after: number): Promise<Page> => {
  const { rows } = await pool.query({
    name: `mailbox-pickup-${kind.name}`,
    text: `WITH candidates AS (
       SELECT seq FROM ${kind.table}
       WHERE recipient_pubkey = $1 AND expires_at > now() AND seq > $2
       ORDER BY seq LIMIT $3 + 1
     ), page AS (
       SELECT seq FROM candidates ORDER BY seq LIMIT $3
     ), picked AS (
       UPDATE ${kind.table} m SET picked_up_at = COALESCE(m.picked_up_at, now())
       FROM page WHERE m.seq = page.seq
       RETURNING m.seq, m.id, m.recipient_pubkey, m.sender_pubkey, ${kind.columns.map(c => `m.${c}`).join(', ')},
         extract(epoch FROM m.created_at)::bigint AS created_at, extract(epoch FROM m.expires_at)::bigint AS expires_at,
         extract(epoch FROM m.picked_up_at)::bigint AS picked_up_at
     )
     SELECT picked.*, (SELECT count(*) FROM candidates)::int AS candidates FROM picked ORDER BY seq`,
    values: [recipient, after, limit],
  })
  const more = (rows[0]?.candidates ?? 0) > limit
  const last = rows[rows.length - 1]
  return { items: rows.map(row => toItem(kind, row)), nextCursor: more && last ? encodeCursor(last.seq) : undefined }
}

const toItem = (kind: MailboxKind, row: Record<string, unknown>): MailboxItem => ({
  id: row.id as string,
  recipient: row.recipient_pubkey as string,
  sender: row.sender_pubkey as string,
  ...Object.fromEntries(kind.columns.map(c => [c, row[c] ?? undefined])),
  created_at: row.created_at as number,
  expires_at: row.expires_at as number,
  picked_up_at: (row.picked_up_at as number | null) ?? null,
})

/** One acknowledgement: the item and who claims it. */
export interface Ack {
  recipient: string
  id: string
}

/**
 * Deletes the recipients' items (one statement, one commit: the ack batcher's statement); for each ack,
 * whether it deleted the item: false when there is none (already acked, expired, or someone else's).
 * The same item acked twice in one call is deleted by the first ack only, as two statements would have.
 */
export const ackMany = async (pool: Pool, kind: MailboxKind, acks: readonly Ack[]): Promise<boolean[]> => {
  const { rows } = await pool.query<{ id: string; recipient_pubkey: string }>({
    name: `mailbox-ack-${kind.name}`,
    text: `DELETE FROM ${kind.table} m USING unnest($1::text[], $2::text[]) AS a(id, recipient)
     WHERE m.id = a.id AND m.recipient_pubkey = a.recipient AND m.expires_at > now()
     RETURNING m.id, m.recipient_pubkey`,
    values: [acks.map(a => a.id), acks.map(a => a.recipient)],
  })
  const deleted = new Set(rows.map(r => `${r.id} ${r.recipient_pubkey}`))
  return acks.map(a => deleted.delete(`${a.id} ${a.recipient}`))
}

/** Deletes the recipient's item; false when there is none (already acked, expired, or someone else's). */
export const ack = async (pool: Pool, kind: MailboxKind, recipient: string, id: string): Promise<boolean> =>
  (await ackMany(pool, kind, [{ recipient, id }]))[0] as boolean
