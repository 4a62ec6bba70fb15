/** The API's stable error codes (branch on these, never on messages), and the client's own for a reply that is not the API's. */
export type MailboxErrorCode =
  | 'AUTH_REQUIRED'
  | 'AUTH_INVALID'
  | 'AUTH_EXPIRED'
  | 'AUTH_URL_MISMATCH'
  | 'AUTH_METHOD_MISMATCH'
  | 'AUTH_PAYLOAD_MISMATCH'
  | 'AUTH_BAD_SIGNATURE'
  | 'AUTH_REPLAYED'
  | 'ADMIN_AUTH_REQUIRED'
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
  /** Client-side: the reply was not `{ error: { code, message } }` (a proxy's page) or not the expected JSON. */
  | 'UNEXPECTED_RESPONSE'

/** The API answered with an error: `status`, its stable `code` and its `message` (never a token or a body of ours). */
export class MailboxApiError extends Error {
  override readonly name = 'MailboxApiError'

  constructor(
    readonly status: number,
    readonly code: MailboxErrorCode | (string & {}),
    message: string,
    /** The request, as `METHOD URL` (the URL carries no secret: pubkeys, cursors and ids only). */
    readonly request: string,
    /** Seconds the server asked to wait (Retry-After), on 429 and 503. */
    readonly retryAfterSeconds?: number,
  ) {
    super(message)
  }
}

/** No answer: the connection failed or the attempt timed out. The message names the request, never a token or a body. */
export class MailboxNetworkError extends Error {
  override readonly name = 'MailboxNetworkError'

  constructor(
    readonly request: string,
    /** `timeout`: no answer within `timeoutMs`; `connect`: no connection was made (nothing was sent); `network`: the connection failed during the exchange. */
    readonly reason: 'timeout' | 'connect' | 'network',
    message: string,
    options?: { cause?: unknown },
  ) {
    super(`${request}: ${message}`, options)
  }
}

/** The caller's input or options are invalid; thrown before any request is sent. */
export class MailboxInputError extends Error {
  override readonly name = 'MailboxInputError'

  constructor(
    /** The offending field or option, e.g. `recipient`, `content`, `signer`. */
    readonly field: string,
    problem: string,
  ) {
    super(`${field}: ${problem}`)
  }
}
