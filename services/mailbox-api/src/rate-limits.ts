import type { RequestHandler } from 'express'
import type { Pool } from 'pg'
import { RateLimiterPostgres, RateLimiterRes } from 'rate-limiter-flexible'
import { ApiError } from './errors.js'
import type { MailboxMetrics } from './metrics.js'

/** Per-minute request budgets kept in PostgreSQL, so every instance counts against the same numbers. */
export interface RateLimits {
  /** Counts the request against its client IP (before authentication). */
  byIp: RequestHandler
  /** Counts the request against its NIP-98 pubkey (after authentication). */
  byPubkey: RequestHandler
}

const limiter = (pool: Pool, points: number, keyPrefix: string) =>
  points > 0
    ? new RateLimiterPostgres({ storeClient: pool, tableName: 'rate_limits', tableCreated: true, clearExpiredByTimeout: false, points, duration: 60, keyPrefix })
    : undefined

const middleware = (store: RateLimiterPostgres | undefined, scope: 'ip' | 'pubkey', key: (req: Parameters<RequestHandler>[0]) => string | undefined, metrics: MailboxMetrics): RequestHandler =>
  async (req, _res, next) => {
    const id = key(req)
    if (!store || !id) return next()
    try {
      await store.consume(id)
      next()
    } catch (rejection) {
      if (!(rejection instanceof RateLimiterRes)) return next(rejection)
      metrics.rateLimited.inc({ scope })
      const retry = String(Math.max(1, Math.ceil(rejection.msBeforeNext / 1000)))
      next(new ApiError(429, 'RATE_LIMITED', `too many requests for this ${scope === 'ip' ? 'address' : 'pubkey'}; retry later`, { 'Retry-After': retry }))
    }
  }

/** Builds both budgets (0 requests per minute disables one). */
export const createRateLimits = (pool: Pool, perIp: number, perPubkey: number, metrics: MailboxMetrics): RateLimits => ({
  byIp: middleware(limiter(pool, perIp, 'ip'), 'ip', req => req.ip, metrics),
  byPubkey: middleware(limiter(pool, perPubkey, 'pk'), 'pubkey', req => req.pubkey, metrics),
})
