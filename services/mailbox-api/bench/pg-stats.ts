// PostgreSQL's own counters around a phase, read over a connection of the generator's own: write
// transactions (every statement of a request writes and commits on its own, so this counts DB round trips)
// and WAL bytes. Both come from live positions (next transaction id, WAL insert position), not from the
// cumulative statistics, which backends report up to a second late.
import pg from 'pg'

/** Database work over a phase. */
export interface DbWork {
  /** Transaction ids assigned: one per committed (or aborted) write transaction. */
  transactions: number
  walMiB: number
}

interface Position {
  nextXid: number
  walBytes: number
}

// The embedded server's fixed loopback credentials (src/db/database.ts): the bench reads positions only.
const EMBEDDED = { host: '127.0.0.1', user: 'postgres', password: 'embedded-mailbox', database: 'mailbox' }

// Neither function assigns a transaction id, so reading them does not move them.
const QUERY = `SELECT pg_snapshot_xmax(pg_current_snapshot())::text::float8 AS next_xid,
  pg_wal_lsn_diff(pg_current_wal_insert_lsn(), '0/0')::float8 AS wal_bytes`

/** A position reader; it gives up quietly (undefined) when the database cannot be reached. */
export interface PgStats {
  /** Starts a measurement; the result ends it. */
  start(): Promise<() => Promise<DbWork | undefined>>
  close(): Promise<void>
}

/** Connects to the API's embedded PostgreSQL on `port`. */
export const connectPgStats = async (port: number): Promise<PgStats> => {
  const client = new pg.Client({ ...EMBEDDED, port })
  const connected = await client.connect().then(() => true, () => false)
  client.on('error', () => undefined)
  const read = async (): Promise<Position | undefined> => {
    if (!connected) return undefined
    const row = (await client.query(QUERY).catch(() => undefined))?.rows[0] as { next_xid: number; wal_bytes: number } | undefined
    return row && { nextXid: row.next_xid, walBytes: row.wal_bytes }
  }
  return {
    start: async () => {
      const before = await read()
      return async () => {
        const after = await read()
        if (!before || !after) return undefined
        return { transactions: after.nextXid - before.nextXid, walMiB: (after.walBytes - before.walBytes) / 2 ** 20 }
      }
    },
    close: () => (connected ? client.end().catch(() => undefined) : Promise.resolve()),
  }
}
