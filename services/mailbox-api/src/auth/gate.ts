import type { Pool } from 'pg'

/** What one gate statement found: whether the token is fresh, and each budget's count and window end. */
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

const WINDOW_MS = 60_000

/**
 * A counter upsert with rate-limiter-flexible's semantics on its table (key, points, expire in ms): the
 * window restarts when it has passed. Keys match its `ip:`/`pk:` prefixes, so both count the same rows.
 */
const counter = (name: string, key: string) => `${name} AS (
  INSERT INTO rate_limits AS r (key, points, expire) VALUES (${key}, 1, $3::bigint + ${WINDOW_MS})
  ON CONFLICT (key) DO UPDATE SET
    points = CASE WHEN r.expire IS NULL OR r.expire <= $3::bigint THEN 1 ELSE r.points + 1 END,
    expire = CASE WHEN r.expire IS NULL OR r.expire <= $3::bigint THEN $3::bigint + ${WINDOW_MS} ELSE r.expire END
  RETURNING points, expire
)`

/**
 * The authentication gate of every NIP-98 request in ONE statement (one round trip, one commit): record
 * the signature (a replay finds it taken) and count the request against its IP and pubkey budgets.
 * Four statements per request made the database round trips the bottleneck (see the benchmark note).
 */
export const createGate = (pool: Pool, limits: GateLimits) => {
  // $1 signature, $2 token expiry (s), then when a budget is on: $3 now (ms), the IP and/or the pubkey.
  // PostgreSQL refuses a parameter the text never names, so only the used ones are passed.
  const keyed = [...(limits.perIp > 0 ? ['ip'] : []), ...(limits.perPubkey > 0 ? ['pk'] : [])]
  const ctes = [
    `replay AS (INSERT INTO nip98_replay (sig, expires_at) VALUES ($1, to_timestamp($2)) ON CONFLICT DO NOTHING RETURNING 1)`,
    ...keyed.map((name, i) => counter(name, `'${name}:' || $${i + 4}::text`)),
  ]
  const columns = [
    'EXISTS (SELECT 1 FROM replay) AS fresh',
    ...(limits.perIp > 0 ? ['(SELECT points FROM ip) AS ip_points', '(SELECT expire FROM ip) AS ip_expire'] : []),
    ...(limits.perPubkey > 0 ? ['(SELECT points FROM pk) AS pk_points', '(SELECT expire FROM pk) AS pk_expire'] : []),
  ]
  const text = `WITH ${ctes.join(', ')} SELECT ${columns.join(', ')}`
  // A prepared statement's name is per connection and fixed to its text: name each shape on its own.
  const name = `nip98-gate-${keyed.join('-') || 'none'}`
  type Row = { fresh: boolean; ip_points?: number; ip_expire?: string; pk_points?: number; pk_expire?: string }
  return async (gate: { sig: string; ip: string; pubkey: string; validUntil: number }): Promise<GateOutcome> => {
    const { rows } = await pool.query<Row>({
      name,
      text,
      values: [
        gate.sig,
        gate.validUntil,
        ...(keyed.length > 0 ? [Date.now()] : []),
        ...(limits.perIp > 0 ? [gate.ip] : []),
        ...(limits.perPubkey > 0 ? [gate.pubkey] : []),
      ],
    })
    const row = rows[0] as Row
    return {
      fresh: row.fresh,
      ...(row.ip_points !== undefined && { ip: { points: row.ip_points, expire: Number(row.ip_expire) } }),
      ...(row.pk_points !== undefined && { pubkey: { points: row.pk_points, expire: Number(row.pk_expire) } }),
    }
  }
}
