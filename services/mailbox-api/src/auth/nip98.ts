import type { RequestHandler } from 'express'
import type { Pool } from 'pg'
import { checkHttpAuth, HTTP_AUTH_WINDOW_SECONDS, type HttpAuthFailure, type SignatureVerifier } from '@msr/nostr'
import { ApiError, type ErrorCode } from '../errors.js'
import type { MailboxMetrics } from '../metrics.js'

declare module 'express-serve-static-core' {
  interface Request {
    /** The raw request body (for the NIP-98 payload hash). */
    rawBody?: Buffer
    /** The NIP-98-authenticated pubkey (hex). */
    pubkey?: string
  }
}

const REPLAY_INSERT = 'INSERT INTO nip98_replay (sig, expires_at) VALUES ($1, to_timestamp($2)) ON CONFLICT DO NOTHING'

const CODES: Record<HttpAuthFailure, ErrorCode> = {
  missing: 'AUTH_REQUIRED',
  malformed: 'AUTH_INVALID',
  kind: 'AUTH_INVALID',
  expired: 'AUTH_EXPIRED',
  url: 'AUTH_URL_MISMATCH',
  method: 'AUTH_METHOD_MISMATCH',
  payload: 'AUTH_PAYLOAD_MISMATCH',
}

/**
 * NIP-98 authentication: the event must describe this request (absolute URL built from PUBLIC_URL, never
 * from Host; method; payload hash of the raw body), be fresh, carry a valid signature, and be used
 * once: the signature is recorded in PostgreSQL, so a replay is refused by every instance.
 */
export const requireNip98 = (deps: { publicUrl: string; verifier: SignatureVerifier; pool: Pool; metrics: MailboxMetrics }): RequestHandler =>
  async (req, _res, next) => {
    const refuse = (code: ErrorCode, message: string, reason: string) => {
      deps.metrics.authFailures.inc({ reason })
      return next(new ApiError(401, code, message))
    }
    const now = Math.floor(Date.now() / 1000)
    const url = deps.publicUrl + req.originalUrl
    const checked = checkHttpAuth(req.headers.authorization, { url, method: req.method, body: req.rawBody, now })
    if (!checked.ok) return refuse(CODES[checked.failure ?? 'malformed'], checked.reason.replace(/^auth-required: /, ''), checked.failure ?? 'malformed')
    const { event } = checked.value
    if (!deps.verifier.verify(event)) return refuse('AUTH_BAD_SIGNATURE', 'the Authorization event has a bad signature', 'signature')
    try {
      // Kept a little longer than the event can be valid, so a replay is caught for as long as it could pass.
      const expires = event.created_at + HTTP_AUTH_WINDOW_SECONDS + 5
      // Named: prepared once per pooled connection (every authenticated request runs it).
      const fresh = await deps.pool.query({ name: 'nip98-replay', text: REPLAY_INSERT, values: [event.sig, expires] })
      if (fresh.rowCount === 0) return refuse('AUTH_REPLAYED', 'this Authorization event was already used', 'replay')
    } catch (error) {
      return next(error)
    }
    req.pubkey = event.pubkey
    next()
  }
