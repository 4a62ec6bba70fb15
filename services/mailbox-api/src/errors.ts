import type { ErrorRequestHandler } from 'express'
import type { Logger } from '@msr/telemetry'

/** The stable error codes of the API; clients branch on these, never on messages. */
export type ErrorCode =
  | 'AUTH_REQUIRED'
  | 'AUTH_INVALID'
  | 'AUTH_EXPIRED'
  | 'AUTH_URL_MISMATCH'
  | 'AUTH_METHOD_MISMATCH'
  | 'AUTH_PAYLOAD_MISMATCH'
  | 'AUTH_BAD_SIGNATURE'
  | 'AUTH_REPLAYED'
  | 'ADMIN_AUTH_REQUIRED'
  | 'PUSH_AUTH_REQUIRED'
  | 'PUSH_AUTH_INVALID'
  | 'FORBIDDEN'
  | 'VALIDATION_FAILED'
  | 'PAYLOAD_TOO_LARGE'
  | 'HEADERS_TOO_LARGE'
  | 'REQUEST_TIMEOUT'
  | 'TTL_TOO_LONG'
  | 'NOT_FOUND'
  | 'MAILBOX_NOT_FOUND'
  | 'GROUP_NOT_FOUND'
  | 'RATE_LIMITED'
  | 'UNSUPPORTED_MEDIA_TYPE'
  | 'INTERNAL'
  | 'UNAVAILABLE'

/** An error the API answers with `{ error: { code, message } }` and `status`. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: ErrorCode,
    message: string,
    /** Extra response headers (e.g. Retry-After). */
    readonly headers: Record<string, string> = {},
  ) {
    super(message)
  }
}

/**
 * Failures to open a database connection: the request never reached PostgreSQL, so nothing was stored
 * and trying again is safe (a failure on an open connection is not among them: a commit may have happened).
 * PostgreSQL's 57P03 (starting up or shutting down) and 53300 (too many connections) come at connect too.
 */
const NOT_CONNECTED = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', '57P03', '53300'])

const notConnected = (error: unknown): boolean => error instanceof LostBeforeWriting || NOT_CONNECTED.has(String((error as { code?: unknown } | null)?.code))

/**
 * A connection lost mid-statement: PostgreSQL shutting down (57P01 admin, 57P02 crash), the connection
 * failing (08xxx), or its socket reset or closed (a pooled idle connection the server has just ended).
 */
const lostConnection = (error: unknown): boolean => {
  const { code, message } = (error ?? {}) as { code?: unknown; message?: unknown }
  return code === '57P01' || code === '57P02' || /^08/.test(String(code)) || code === 'ECONNRESET' || code === 'EPIPE' || message === 'Connection terminated unexpectedly'
}

/** A lost connection of a statement that writes no mailbox data: answered as an unreachable database (503). */
class LostBeforeWriting extends Error {
  readonly code: string
  constructor(cause: unknown) {
    super('the database connection was lost before the request wrote anything', { cause })
    this.code = String((cause as { code?: unknown }).code ?? 'CONNECTION_LOST')
  }
}

/**
 * For a statement before the request's own writes (the NIP-98 gate): its connection lost means nothing of
 * the mailbox was stored, so a retry (with a new NIP-98 event, as every request needs) is safe: 503, not 500.
 * Any other failure is returned as it is.
 */
export const beforeWriting = (error: unknown): unknown => (lostConnection(error) ? new LostBeforeWriting(error) : error)

/** Seconds a client is asked to wait when the database cannot be reached. */
const UNREACHABLE_RETRY_AFTER = '2'

/** The one error middleware: ApiErrors as they are, body-parser errors mapped, an unreachable database 503, anything else a logged 500. */
export const errorMiddleware = (logger: Logger): ErrorRequestHandler => (error, req, res, _next) => {
  const api = toApiError(error)
  const where = { method: req.method, route: req.route?.path ?? req.path }
  if (notConnected(error)) logger.warn({ ...where, code: (error as { code: string }).code }, 'database unreachable')
  else if (api.status >= 500) logger.error({ err: error, ...where }, 'request failed')
  res.status(api.status).set(api.headers).json({ error: { code: api.code, message: api.message } })
}

const toApiError = (error: unknown): ApiError => {
  if (error instanceof ApiError) return error
  const e = error as { type?: string; status?: number }
  if (e.type === 'entity.too.large') return new ApiError(413, 'PAYLOAD_TOO_LARGE', 'the request body is larger than this API accepts')
  if (e.type === 'entity.parse.failed') return new ApiError(400, 'VALIDATION_FAILED', 'the request body is not valid JSON')
  if (e.type === 'encoding.unsupported') return new ApiError(415, 'UNSUPPORTED_MEDIA_TYPE', 'send the body without a Content-Encoding (identity)')
  if (e.type === 'charset.unsupported') return new ApiError(415, 'UNSUPPORTED_MEDIA_TYPE', 'send the body as UTF-8 JSON')
  if (typeof e.status === 'number' && e.status >= 400 && e.status < 500) return new ApiError(e.status, 'VALIDATION_FAILED', 'the request is malformed')
  if (notConnected(error)) return new ApiError(503, 'UNAVAILABLE', 'the database cannot be reached; nothing was stored, try again', { 'Retry-After': UNREACHABLE_RETRY_AFTER })
  return new ApiError(500, 'INTERNAL', 'internal error')
}
