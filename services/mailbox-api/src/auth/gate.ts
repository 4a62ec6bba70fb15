import { createHash } from 'node:crypto'
import type { Pool } from 'pg'

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
  /** Gate statements in flight at once; requests arriving meanwhile wait and go together in the next one. */
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

interface Waiting {
  request: GateRequest
  resolve: (outcome: GateOutcome) => void
  reject: (error: unknown) => void
}

/**
 * The authentication gate of every NIP-98 request. Requests are batched like a group commit: while
 * `concurrency` statements are in flight, arriving requests wait and go together in the next one, so
 * an idle instance sends each request at once and a busy one sends one statement for many (the
 * benchmark note: one statement per request made the gate half of the database round trips).
 */
export const createGate = (pool: Pool, limits: GateLimits, options: GateOptions = {}) => {
  const concurrency = Math.max(1, options.concurrency ?? 2)
  const maxBatch = Math.max(1, options.maxBatch ?? 128)
  const queue: Waiting[] = []
  /** Signatures waiting or in flight: a second use of one while the first is unanswered is a replay. */
  const pending = new Set<string>()
  let inFlight = 0

  const run = async (batch: Waiting[]): Promise<Row[]> => {
    const now = Date.now()
    const values = [
      batch.map(w => w.request.sig),
      batch.map(w => w.request.validUntil),
      batch.map(w => (limits.perIp > 0 && w.request.ip ? ipKey(w.request.ip) : null)),
      batch.map(w => (limits.perPubkey > 0 ? `pk:${w.request.pubkey}` : null)),
      now,
    ]
    for (let attempt = 0; ; attempt++) {
      try {
        return (await pool.query<Row>({ name: 'nip98-gate', text: BATCH_SQL, values })).rows
      } catch (error) {
        // Only the same signature presented to two instances at once can order locks against each other.
        if ((error as { code?: string }).code !== DEADLOCK || attempt >= DEADLOCK_RETRIES) throw error
      }
    }
  }

  const settle = (batch: Waiting[], rows: Row[]) => {
    const answered = new Set<number>()
    for (const row of rows) {
      const waiting = batch[row.ord - 1] as Waiting
      answered.add(row.ord)
      waiting.resolve({
        fresh: row.fresh,
        ...(row.ip_points !== null && { ip: { points: row.ip_points, expire: Number(row.ip_expire) } }),
        ...(row.pk_points !== null && { pubkey: { points: row.pk_points, expire: Number(row.pk_expire) } }),
      })
    }
    if (answered.size < batch.length) {
      const missing = new Error(`gate statement answered ${answered.size} of ${batch.length} requests`)
      batch.forEach((w, i) => answered.has(i + 1) || w.reject(missing))
    }
  }

  /**
   * A failed statement fails its batch; when PostgreSQL refused a value (SQLSTATE class 22), one request
   * may have spoiled it for the others, so each is retried on its own and only the culprit fails.
   */
  const isolate = (batch: Waiting[], error: unknown) => {
    const code = (error as { code?: unknown }).code
    if (batch.length === 1 || typeof code !== 'string' || !code.startsWith('22')) return batch.forEach(w => w.reject(error))
    for (const w of batch) run([w]).then(rows => settle([w], rows), e => w.reject(e))
  }

  const pump = () => {
    while (inFlight < concurrency && queue.length > 0) {
      const batch = queue.splice(0, maxBatch)
      inFlight++
      options.onBatch?.(batch.length)
      run(batch)
        .then(rows => settle(batch, rows), error => isolate(batch, error))
        .finally(() => {
          for (const w of batch) pending.delete(w.request.sig)
          inFlight--
          pump()
        })
    }
  }

  return (request: GateRequest): Promise<GateOutcome> => {
    if (pending.has(request.sig)) return Promise.resolve({ fresh: false })
    pending.add(request.sig)
    return new Promise<GateOutcome>((resolve, reject) => {
      queue.push({ request, resolve, reject })
      pump()
    })
  }
}
