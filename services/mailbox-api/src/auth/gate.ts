import { createHash } from 'node:crypto'
import type { Pool } from 'pg'
import { createBatcher } from '../db/batcher.js'

/** What the gate found for one request: whether the token is fresh, and each budget's count and window end. */
export interface GateOutcome {
  fresh: boolean
  ip?: { points: number; expire: number }
  pubkey?: { points: number; expire: number }
}

/** The budgets the gate counts against (0: that budget is off). */
export interface GateLimits {
  perIp: number
  perPubkey: number
}

/** One authenticated request at the gate. */
export interface GateRequest {
  /** The NIP-98 event's signature (the replay guard's key). */
  sig: string
  ip: string
  pubkey: string
  /** Until when (unix seconds) the signature must stay recorded. */
  validUntil: number
}

/** How the gate batches (defaults suit one instance; tests set their own). */
export interface GateOptions {
  /** Gate statements in flight at once (default 1, db/batcher.ts); requests arriving meanwhile wait and go together in the next one. */
  concurrency?: number
  /** Most requests in one statement. */
  maxBatch?: number
  /** Called with each statement's request count (the batch-size metric). */
  onBatch?: (size: number) => void
}

const WINDOW_MS = 60_000
/** rate_limits.key is VARCHAR(255): a longer client address (X-Forwarded-For is the client's text) is counted by its hash. */
const MAX_IP_LENGTH = 200
const DEADLOCK = '40P01'
const DEADLOCK_RETRIES = 2

/** How a client address is counted: itself, or its hash when too long for the column (rate-limits.ts uses it too). */
export const ipBudgetId = (ip: string): string =>
  ip.length <= MAX_IP_LENGTH ? ip : `sha256:${createHash('sha256').update(ip).digest('hex')}`

/** The IP budget's key, with rate-limiter-flexible's `ip:` prefix. */
const ipKey = (ip: string): string => `ip:${ipBudgetId(ip)}`

/**
 * The gate of a batch of NIP-98 requests in ONE statement (one round trip, one commit): record each
 * signature (a replay finds it taken) and count each request against its IP and pubkey budgets.
 *
 * The counters have rate-limiter-flexible's semantics on its table (key, points, expire in ms; the window
 * restarts when it has passed) and its `ip:`/`pk:` key prefixes, so both count the same rows. A key hit n
 * times in a batch is incremented once by n; each request's count is the new total minus the hits after
 * it in the batch, exactly what n one-by-one increments would have returned. Signatures and counters are
 * written in key order, so concurrent statements (this instance's or another's) lock shared rows in the same
 * order; a deadlock PostgreSQL still reports is retried.
 */
const BATCH_SQL = `WITH input AS (
  SELECT * FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[]) WITH ORDINALITY AS t(sig, valid_until, ip_key, pk_key, ord)
), replay AS (
  INSERT INTO nip98_replay (sig, expires_at) SELECT sig, to_timestamp(valid_until) FROM input ORDER BY sig
  ON CONFLICT DO NOTHING RETURNING sig
), hits AS (
  SELECT key, count(*)::int AS n FROM (SELECT ip_key AS key FROM input UNION ALL SELECT pk_key FROM input) k
  WHERE key IS NOT NULL GROUP BY key
), counted AS (
  INSERT INTO rate_limits AS r (key, points, expire) SELECT key, n, $5::bigint + ${WINDOW_MS} FROM hits ORDER BY key
  ON CONFLICT (key) DO UPDATE SET
    points = CASE WHEN r.expire IS NULL OR r.expire <= $5::bigint THEN excluded.points ELSE r.points + excluded.points END,
    expire = CASE WHEN r.expire IS NULL OR r.expire <= $5::bigint THEN excluded.expire ELSE r.expire END
  RETURNING key, points, expire
)
SELECT i.ord::int AS ord, r.sig IS NOT NULL AS fresh,
  (ip.points - ip_hits.n + row_number() OVER (PARTITION BY i.ip_key ORDER BY i.ord))::int AS ip_points, ip.expire AS ip_expire,
  (pk.points - pk_hits.n + row_number() OVER (PARTITION BY i.pk_key ORDER BY i.ord))::int AS pk_points, pk.expire AS pk_expire
FROM input i
LEFT JOIN replay r ON r.sig = i.sig
LEFT JOIN counted ip ON ip.key = i.ip_key LEFT JOIN hits ip_hits ON ip_hits.key = i.ip_key
LEFT JOIN counted pk ON pk.key = i.pk_key LEFT JOIN hits pk_hits ON pk_hits.key = i.pk_key`

type Row = { ord: number; fresh: boolean; ip_points: number | null; ip_expire: string | null; pk_points: number | null; pk_expire: string | null }

/** One gate statement for `batch`: each request's outcome, in order. */
const runGate = async (pool: Pool, limits: GateLimits, batch: GateRequest[]): Promise<GateOutcome[]> => {
  const values = [
    batch.map(r => r.sig),
    batch.map(r => r.validUntil),
    batch.map(r => (limits.perIp > 0 && r.ip ? ipKey(r.ip) : null)),
    batch.map(r => (limits.perPubkey > 0 ? `pk:${r.pubkey}` : null)),
    Date.now(),
  ]
  for (let attempt = 0; ; attempt++) {
    try {
      const { rows } = await pool.query<Row>({ name: 'nip98-gate', text: BATCH_SQL, values })
      return outcomes(rows, batch.length)
    } catch (error) {
      // Only the same signature presented to two instances at once can order locks against each other.
      if ((error as { code?: string }).code !== DEADLOCK || attempt >= DEADLOCK_RETRIES) throw error
    }
  }
}

/** The statement's rows as outcomes in request order (every request has its row: `input` is joined, never filtered). */
const outcomes = (rows: Row[], count: number): GateOutcome[] => {
  const byOrd: GateOutcome[] = []
  for (const row of rows)
    byOrd[row.ord - 1] = {
      fresh: row.fresh,
      ...(row.ip_points !== null && { ip: { points: row.ip_points, expire: Number(row.ip_expire) } }),
      ...(row.pk_points !== null && { pubkey: { points: row.pk_points, expire: Number(row.pk_expire) } }),
    }
  const answered = byOrd.filter(Boolean).length
  if (answered !== count) throw new Error(`gate statement answered ${answered} of ${count} requests`)
  return byOrd
}

/**
 * The authentication gate of every NIP-98 request. Requests are batched like a group commit
 * (db/batcher.ts: while `concurrency` statements are in flight, arriving requests wait and go together in
 * the next one), so an idle instance sends each request at once and a busy one sends one statement for
 * many (the benchmark note: one statement per request made the gate half of the database round trips).
 */
export const createGate = (pool: Pool, limits: GateLimits, options: GateOptions = {}) => {
  const statement = createBatcher((batch: GateRequest[]) => runGate(pool, limits, batch), {
    ...(options.concurrency !== undefined && { concurrency: options.concurrency }),
    maxBatch: options.maxBatch ?? 128,
    ...(options.onBatch && { onBatch: options.onBatch }),
  })
  /** Signatures waiting or in flight: a second use of one while the first is unanswered is a replay. */
  const pending = new Set<string>()
  return (request: GateRequest): Promise<GateOutcome> => {
    if (pending.has(request.sig)) return Promise.resolve({ fresh: false })
    pending.add(request.sig)
    return statement(request).finally(() => pending.delete(request.sig))
  }
}
