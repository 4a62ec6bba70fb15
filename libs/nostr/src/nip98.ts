import { createHash } from 'node:crypto'
import { checkEvent, type CheckedEvent } from './event.js'
import { fail, ok, type Result } from './reason.js'

/** The kind of a NIP-98 HTTP authorization event. */
export const HTTP_AUTH_KIND = 27235

/** How far (seconds) a NIP-98 event's created_at may be from now, either way. */
export const HTTP_AUTH_WINDOW_SECONDS = 60

/** Why a NIP-98 header was refused, as a stable code for API errors and metrics. */
export type HttpAuthFailure =
  | 'missing'
  | 'malformed'
  | 'kind'
  | 'expired'
  | 'url'
  | 'method'
  | 'payload'

/** The request a NIP-98 event must describe. */
export interface HttpAuthRequest {
  /** The absolute URL of the request, built from the configured public base URL. */
  url: string
  method: string
  /** The raw body; empty or undefined when there is none. */
  body?: Buffer
  now: number
}

const tag = (checked: CheckedEvent, name: string): string | undefined => checked.event.tags.find(t => t[0] === name)?.[1]

/** sha256 of a body, as lowercase hex (the NIP-98 `payload` tag). */
export const payloadHash = (body: Buffer): string => createHash('sha256').update(body).digest('hex')

/**
 * Decodes `Authorization: Nostr <base64 event>` and checks the event against the request (not its
 * signature: the caller verifies that, on the freshly parsed event returned here).
 */
export const checkHttpAuth = (header: string | undefined, request: HttpAuthRequest): Result<CheckedEvent> & { failure?: HttpAuthFailure } => {
  const refuse = (failure: HttpAuthFailure, message: string) => ({ ...fail<CheckedEvent>(`auth-required: ${message}`), failure })
  // Scheme names are case-insensitive (RFC 7235 §2.1).
  const match = /^Nostr\s+([A-Za-z0-9+/=_-]+)\s*$/i.exec(header ?? '')
  if (!match) return refuse(header ? 'malformed' : 'missing', 'send Authorization: Nostr <base64 kind-27235 event> (NIP-98)')
  let raw: unknown
  try {
    raw = JSON.parse(Buffer.from(match[1] as string, 'base64').toString('utf8'))
  } catch {
    return refuse('malformed', 'the Authorization event is not base64-encoded JSON')
  }
  const checked = checkEvent(raw)
  if (!checked.ok) return refuse('malformed', `the Authorization event is invalid (${checked.reason.replace(/^invalid: /, '')})`)
  const event = checked.value
  if (event.event.kind !== HTTP_AUTH_KIND) return refuse('kind', `the Authorization event must be of kind ${HTTP_AUTH_KIND}`)
  if (Math.abs(event.event.created_at - request.now) > HTTP_AUTH_WINDOW_SECONDS)
    return refuse('expired', `the Authorization event's created_at must be within ${HTTP_AUTH_WINDOW_SECONDS} seconds of now`)
  // What would have been accepted is said (never a secret): behind localhost vs 127.0.0.1, a proxy or a
  // gateway, a client cannot guess the URL the server builds from its configured public base URL.
  if (tag(event, 'u') !== request.url) return refuse('url', `the u tag must be the absolute URL of this request: ${request.url}`)
  if (tag(event, 'method')?.toUpperCase() !== request.method.toUpperCase())
    return refuse('method', `the method tag must be the method of this request: ${request.method.toUpperCase()}`)
  const payload = tag(event, 'payload')
  const body = request.body && request.body.length > 0 ? request.body : undefined
  if (body ? payload !== payloadHash(body) : payload !== undefined && payload !== payloadHash(Buffer.alloc(0)))
    return refuse('payload', body ? 'the payload tag must be the sha256 of the request body' : 'a payload tag was sent without a body')
  return ok(event)
}
