import type { RequestHandler } from 'express'
import type { Pool } from 'pg'
import { RateLimiterPostgres, RateLimiterRes } from 'rate-limiter-flexible'
import { ipBudgetId } from './auth/gate.js'
import { ApiError } from './errors.js'
import type { MailboxMetrics } from './metrics.js'

/**
 * Per-minute request budgets kept in PostgreSQL, so every instance counts against the same numbers.
 * Authenticated requests are counted by the NIP-98 gate statement (auth/gate.ts) on the same rows;
 * these count the rest: admin requests, and refused authentications.
 */
export interface RateLimits {
  /** Counts the request against its client IP (admin routes). */
  byIp: RequestHandler
  /** Counts one refused authentication against the IP; the seconds to wait when its budget is spent. */
  penalize: (ip: string) => Promise<number | undefined>
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

/** Builds the IP budget (0 requests per minute disables it). */
export const createRateLimits = (pool: Pool, perIp: number, metrics: MailboxMetrics): RateLimits => {
  const store = limiter(pool, perIp, 'ip')
  return {
    byIp: middleware(store, 'ip', req => (req.ip ? ipBudgetId(req.ip) : undefined), metrics),
    penalize: async ip => {
      if (!store || !ip) return undefined
      const res = await store.penalty(ipBudgetId(ip), 1)
      return res.consumedPoints > perIp ? Math.max(1, Math.ceil(res.msBeforeNext / 1000)) : undefined
    },
  }
}
