import type { RequestHandler } from 'express'
import type { Pool } from 'pg'
import { checkHttpAuth, HTTP_AUTH_WINDOW_SECONDS, type HttpAuthFailure } from '@msr/nostr'
import { ApiError, beforeWriting, type ErrorCode } from '../errors.js'
import { createGate, type GateLimits } from './gate.js'
import type { SignatureCheck } from './signatures.js'
import type { MailboxMetrics } from '../metrics.js'

declare module 'express-serve-static-core' {
  interface Request {
    /** The raw request body (for the NIP-98 payload hash). */
    rawBody?: Buffer
    /** The NIP-98-authenticated pubkey (hex). */
    pubkey?: string
  }
}

const CODES: Record<HttpAuthFailure, ErrorCode> = {
  missing: 'AUTH_REQUIRED',
  malformed: 'AUTH_INVALID',
  kind: 'AUTH_INVALID',
  expired: 'AUTH_EXPIRED',
  url: 'AUTH_URL_MISMATCH',
  method: 'AUTH_METHOD_MISMATCH',
  payload: 'AUTH_PAYLOAD_MISMATCH',
}

/** What NIP-98 authentication needs. */
export interface Nip98Deps {
  publicUrl: string
  signatures: SignatureCheck
  pool: Pool
  metrics: MailboxMetrics
  limits: GateLimits
  /** Counts a refused authentication against the client IP's budget; the seconds to wait when spent. */
  penalize: (ip: string) => Promise<number | undefined>
}

const over = (budget: { points: number; expire: number } | undefined, limit: number): number | undefined =>
  budget && budget.points > limit ? Math.max(1, Math.ceil((budget.expire - Date.now()) / 1000)) : undefined

/**
 * NIP-98 authentication: the event must describe this request (absolute URL built from PUBLIC_URL, never
 * from Host; method; payload hash of the raw body), be fresh, carry a valid signature, and be used
 * once: the signature is recorded in PostgreSQL, so a replay is refused by every instance. The same
 * statement counts the request against the IP and pubkey budgets (429 with Retry-After past them).
 */
export const requireNip98 = (deps: Nip98Deps): RequestHandler => {
  const gate = createGate(deps.pool, deps.limits, { onBatch: size => deps.metrics.gateBatchSize.observe(size) })
  const limited = (scope: 'ip' | 'pubkey', retryAfter: number) => {
    deps.metrics.rateLimited.inc({ scope })
    return new ApiError(429, 'RATE_LIMITED', `too many requests for this ${scope === 'ip' ? 'address' : 'pubkey'}; retry later`, {
      'Retry-After': String(retryAfter),
    })
  }
  return async (req, _res, next) => {
    const refuse = async (code: ErrorCode, message: string, reason: string) => {
      deps.metrics.authFailures.inc({ reason })
      // Failed attempts still spend the address's budget, so a flood of bad tokens is throttled too.
      const wait = await deps.penalize(req.ip ?? '').catch(() => undefined)
      return next(wait !== undefined ? limited('ip', wait) : new ApiError(401, code, message))
    }
    const now = Math.floor(Date.now() / 1000)
    const url = deps.publicUrl + req.originalUrl
    const checked = checkHttpAuth(req.headers.authorization, { url, method: req.method, body: req.rawBody, now })
    if (!checked.ok) return refuse(CODES[checked.failure ?? 'malformed'], checked.reason.replace(/^auth-required: /, ''), checked.failure ?? 'malformed')
    const { event } = checked.value
    try {
      const verdict = await deps.signatures.verify(checked.value)
      if (verdict === 'error') return next(new ApiError(503, 'UNAVAILABLE', 'the signature could not be checked; try again'))
      if (verdict === 'invalid') return refuse('AUTH_BAD_SIGNATURE', 'the Authorization event has a bad signature', 'signature')
      // Kept a little longer than the event can be valid, so a replay is caught for as long as it could pass.
      const validUntil = event.created_at + HTTP_AUTH_WINDOW_SECONDS + 5
      const outcome = await gate({ sig: event.sig, ip: req.ip ?? '', pubkey: event.pubkey, validUntil }).catch((error: unknown) => {
        throw beforeWriting(error)
      })
      if (!outcome.fresh) return refuse('AUTH_REPLAYED', 'this Authorization event was already used', 'replay')
      const ipWait = over(outcome.ip, deps.limits.perIp)
      if (ipWait !== undefined) return next(limited('ip', ipWait))
      const pubkeyWait = over(outcome.pubkey, deps.limits.perPubkey)
      if (pubkeyWait !== undefined) return next(limited('pubkey', pubkeyWait))
    } catch (error) {
      return next(error)
    }
    req.pubkey = event.pubkey
    next()
  }
}
