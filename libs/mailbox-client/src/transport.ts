// One request to /api/v1: URL and body built once, each attempt authorized afresh (a NIP-98 event is
// accepted once), a timeout per attempt, retries where they cannot do harm, and errors typed.
import { MailboxApiError, MailboxInputError, MailboxNetworkError } from './errors.js'
import { integer } from './input.js'

/** Retry and timeout options, shared by the user and the admin client. */
export interface TransportOptions {
  /** `fetch` to use (default: the global one), e.g. to add a proxy or run in tests. */
  fetch?: typeof fetch
  /** Retries after the first attempt, for 429, 503 and network failures (default 2). */
  retries?: number
  /** Per attempt, until the whole answer is read (default 30,000 ms). */
  timeoutMs?: number
  /** First wait before retrying a 503 or a network failure without Retry-After; doubled each time (default 250 ms). */
  retryDelayMs?: number
  /** Longest wait before a retry (default 10,000 ms): a Retry-After beyond it is not waited for, the error is thrown at once. */
  maxRetryWaitMs?: number
}

/**
 * How far a request may be retried. `idempotent`: on 429, 503 and any network failure. `refused`: only
 * when the server certainly did not act on it: 429 and the API's own 503 (both answered before the route
 * runs) and a connection that could not be made (nothing was sent). A deposit is `refused`: after a
 * timeout or a connection lost mid-request it may have been stored, and storing it twice is a duplicate.
 */
export type RetryPolicy = 'idempotent' | 'refused'

/** One API request; `path` is under /api/v1 and already encoded. */
export interface ApiRequest<T> {
  method: 'GET' | 'POST'
  path: string
  query?: Record<string, string | number | undefined>
  body?: unknown
  retry: RetryPolicy
  /** Reads the 2xx JSON answer; throws (any error) when its shape is wrong. */
  read: (json: unknown) => T
}

/** The Authorization header of one attempt. */
export type Authorize = (method: string, url: string, body: Uint8Array | undefined) => Promise<string>

/** Sends a request, resolving with what `read` made of the answer or throwing a MailboxApiError / MailboxNetworkError. */
export type Send = <T>(request: ApiRequest<T>) => Promise<T>

interface Answer {
  status: number
  retryAfterSeconds: number | undefined
  text: string
}

// Errors meaning the connection was never made, so the request was not sent (undici's codes and the system's).
const NOT_CONNECTED = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'UND_ERR_CONNECT_TIMEOUT'])

const encoder = new TextEncoder()

const sleep = (ms: number): Promise<void> => new Promise(resolve => setTimeout(resolve, ms))

/** `?a=1&b=2` from the defined values, or ''. */
const queryString = (query: Record<string, string | number | undefined> = {}): string => {
  const params = new URLSearchParams()
  for (const [key, value] of Object.entries(query)) if (value !== undefined) params.set(key, String(value))
  const text = params.toString()
  return text ? `?${text}` : ''
}

/** Retry-After as seconds (delta-seconds or an HTTP date), or undefined. */
const retryAfter = (header: string | null): number | undefined => {
  if (header === null) return undefined
  if (/^\d+$/.test(header.trim())) return Number(header.trim())
  const at = Date.parse(header)
  return Number.isNaN(at) ? undefined : Math.max(0, Math.ceil((at - Date.now()) / 1000))
}

/** The first `code` along an error's cause chain (undici puts the socket's code on `cause`). */
const errorCode = (error: unknown): string | undefined => {
  for (let e = error, depth = 0; e && typeof e === 'object' && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    const code = (e as { code?: unknown }).code
    if (typeof code === 'string') return code
  }
  return undefined
}

const networkError = (label: string, error: unknown, timedOut: boolean, timeoutMs: number): MailboxNetworkError => {
  if (timedOut) return new MailboxNetworkError(label, 'timeout', `no answer within ${timeoutMs} ms`, { cause: error })
  const code = errorCode(error)
  if (code !== undefined && NOT_CONNECTED.has(code)) return new MailboxNetworkError(label, 'connect', `could not connect (${code})`, { cause: error })
  return new MailboxNetworkError(label, 'network', `the connection failed (${code ?? (error instanceof Error ? error.message : 'unknown error')})`, { cause: error })
}

/** The API's `{ error: { code, message } }`, or undefined when the body is something else (a proxy's page). */
const apiErrorBody = (text: string): { code: string; message: string } | undefined => {
  try {
    const error = (JSON.parse(text) as { error?: { code?: unknown; message?: unknown } } | null)?.error
    return typeof error?.code === 'string' && typeof error.message === 'string' ? { code: error.code, message: error.message } : undefined
  } catch {
    return undefined
  }
}

/** The error an answer that is not 2xx stands for. */
const answerError = (answer: Answer, label: string): MailboxApiError => {
  const body = apiErrorBody(answer.text)
  if (body) return new MailboxApiError(answer.status, body.code, body.message, label, answer.retryAfterSeconds)
  // Never followed: the signed `u` names this URL, and a token must not travel to another one.
  if (answer.status >= 300 && answer.status < 400)
    return new MailboxApiError(answer.status, 'UNEXPECTED_RESPONSE', `HTTP ${answer.status}: redirected (baseUrl must be the API's PUBLIC_URL)`, label)
  return new MailboxApiError(answer.status, 'UNEXPECTED_RESPONSE', `HTTP ${answer.status} without the API's error body`, label, answer.retryAfterSeconds)
}

/** Milliseconds to wait before the next attempt, or undefined when the outcome is final. */
const retryWait = (outcome: Answer | MailboxNetworkError, policy: RetryPolicy, attempt: number, options: Required<Omit<TransportOptions, 'fetch'>>): number | undefined => {
  if (attempt >= options.retries) return undefined
  const backoff = Math.min(options.retryDelayMs * 2 ** attempt, options.maxRetryWaitMs)
  if (outcome instanceof MailboxNetworkError) return policy === 'idempotent' || outcome.reason === 'connect' ? backoff : undefined
  const retryable = outcome.status === 429 || (outcome.status === 503 && (policy === 'idempotent' || apiErrorBody(outcome.text)?.code === 'UNAVAILABLE'))
  if (!retryable) return undefined
  if (outcome.retryAfterSeconds === undefined) return backoff
  const wait = outcome.retryAfterSeconds * 1000
  return wait <= options.maxRetryWaitMs ? wait : undefined
}

const checkedOptions = (options: TransportOptions): Required<Omit<TransportOptions, 'fetch'>> & { fetch: typeof fetch } => {
  const fetchImpl = options.fetch ?? globalThis.fetch
  if (typeof fetchImpl !== 'function') throw new MailboxInputError('fetch', 'no fetch in this runtime: pass one')
  return {
    fetch: fetchImpl,
    retries: integer(options.retries ?? 2, 'retries', 0),
    timeoutMs: integer(options.timeoutMs ?? 30_000, 'timeoutMs', 1),
    retryDelayMs: integer(options.retryDelayMs ?? 250, 'retryDelayMs', 0),
    maxRetryWaitMs: integer(options.maxRetryWaitMs ?? 10_000, 'maxRetryWaitMs', 0),
  }
}

/** The request function of a client on `baseUrl` (already checked); `authorize` is called once per attempt. */
export const createTransport = (baseUrl: string, authorize: Authorize, transportOptions: TransportOptions): Send => {
  const options = checkedOptions(transportOptions)

  const attempt = async (method: string, url: string, label: string, body: Uint8Array | undefined): Promise<Answer | MailboxNetworkError> => {
    // Signed outside the timeout: a remote signer's delay is not the server's.
    const headers: Record<string, string> = { accept: 'application/json', authorization: await authorize(method, url, body) }
    if (body) headers['content-type'] = 'application/json'
    const controller = new AbortController()
    const timer = setTimeout(() => controller.abort(), options.timeoutMs)
    try {
      // Called as a plain function: a browser's fetch refuses to run as a method of another object ("Illegal invocation").
      const send = options.fetch
      const response = await send(url, { method, headers, ...(body && { body }), signal: controller.signal, redirect: 'manual' })
      const text = await response.text()
      return { status: response.status, retryAfterSeconds: retryAfter(response.headers.get('retry-after')), text }
    } catch (error) {
      return networkError(label, error, controller.signal.aborted, options.timeoutMs)
    } finally {
      clearTimeout(timer)
    }
  }

  return async <T>(request: ApiRequest<T>): Promise<T> => {
    const url = `${baseUrl}/api/v1${request.path}${queryString(request.query)}`
    const label = `${request.method} ${url}`
    const body = request.body === undefined ? undefined : encoder.encode(JSON.stringify(request.body))
    for (let n = 0; ; n++) {
      const outcome = await attempt(request.method, url, label, body)
      const wait = retryWait(outcome, request.retry, n, options)
      if (wait === undefined) return finish(outcome, label, request.read)
      await sleep(wait)
    }
  }
}

const finish = <T>(outcome: Answer | MailboxNetworkError, label: string, read: (json: unknown) => T): T => {
  if (outcome instanceof MailboxNetworkError) throw outcome
  if (outcome.status < 200 || outcome.status > 299) throw answerError(outcome, label)
  try {
    return read(JSON.parse(outcome.text))
  } catch (error) {
    const why = error instanceof SyntaxError ? 'not JSON' : error instanceof Error ? error.message : 'unreadable'
    throw new MailboxApiError(outcome.status, 'UNEXPECTED_RESPONSE', `the answer is not what the API sends (${why})`, label)
  }
}
