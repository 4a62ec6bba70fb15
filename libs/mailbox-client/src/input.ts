// Checks of the caller's input, run before any request: a mistake fails at once with the field named,
// instead of costing a signed request, a rate-limit point and a 400. The page sizes are fixed by the API
// and mirrored here (checked against the server by services/mailbox-api/test/client-bounds.test.ts);
// limits the server's configuration sets (artifact size, TTL maximum) are left to it.
import { decode } from 'nostr-tools/nip19'
import { isBase64, encodeBase64 } from './base64.js'
import { MailboxInputError } from './errors.js'

const HEX64 = /^[0-9a-fA-F]{64}$/
const UUID = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/

/** A pubkey given as 64 hex characters (any case) or `npub1…`, as lowercase hex. */
export const pubkeyHex = (value: unknown, field: string): string => {
  if (typeof value === 'string' && HEX64.test(value)) return value.toLowerCase()
  if (typeof value === 'string' && value.startsWith('npub1')) {
    try {
      const decoded = decode(value)
      if (decoded.type === 'npub' && HEX64.test(decoded.data)) return decoded.data
    } catch {
      // reported below
    }
  }
  throw new MailboxInputError(field, 'expected a pubkey as 64 hex characters or npub1…')
}

/** An artifact given as bytes or as standard padded base64, as base64 (never empty). */
export const artifactB64 = (value: unknown, field: string): string => {
  if (value instanceof Uint8Array) {
    if (value.length === 0) throw new MailboxInputError(field, 'is empty')
    return encodeBase64(value)
  }
  if (typeof value === 'string' && isBase64(value)) return value
  throw new MailboxInputError(field, 'expected a non-empty Uint8Array or standard padded base64 text')
}

/** KeyPackage tags: an array of arrays of strings (their counts and lengths are the server's to check). */
export const stringTags = (value: unknown, field: string): string[][] => {
  if (Array.isArray(value) && value.every(tag => Array.isArray(tag) && tag.every(v => typeof v === 'string'))) return value as string[][]
  throw new MailboxInputError(field, 'expected an array of arrays of strings')
}

/** The largest `limit` of each listing (the API's routes/schemas.ts PAGE_SIZES). */
export const MAX_PAGE_SIZE = { mailbox: 100, dmHints: 500, groups: 500 } as const

/** An integer of at least `min` (and at most `max`). */
export const integer = (value: unknown, field: string, min: number, max = Number.MAX_SAFE_INTEGER): number => {
  if (typeof value === 'number' && Number.isSafeInteger(value) && value >= min && value <= max) return value
  throw new MailboxInputError(field, max === Number.MAX_SAFE_INTEGER ? `expected an integer of at least ${min}` : `expected an integer from ${min} to ${max}`)
}

/** A non-empty string. */
export const nonEmpty = (value: unknown, field: string): string => {
  if (typeof value === 'string' && value.length > 0) return value
  throw new MailboxInputError(field, 'expected a non-empty string')
}

/** A mailbox item id (the UUID the deposit answered). */
export const itemId = (value: unknown): string => {
  if (typeof value === 'string' && UUID.test(value)) return value
  throw new MailboxInputError('id', 'expected the item id (a UUID) a deposit or list answered')
}

/** A group id that can stand as one URL path segment ('.' and '..' would be resolved away by any URL parser). */
export const groupIdSegment = (value: unknown, field = 'groupId'): string => {
  const id = nonEmpty(value, field)
  if (id === '.' || id === '..') throw new MailboxInputError(field, `'${id}' cannot be sent as a URL path segment`)
  return encodeURIComponent(id)
}

/** A base URL as the server's PUBLIC_URL: http(s), no query or fragment; trailing slashes dropped as the server drops them. */
export const baseUrl = (value: unknown): string => {
  const trimmed = typeof value === 'string' ? value.replace(/\/+$/, '') : ''
  if (/^https?:\/\/[^/?#]+(\/[^?#]*)?$/.test(trimmed)) return trimmed
  throw new MailboxInputError('baseUrl', "expected the API's PUBLIC_URL: an http(s) URL without query or fragment")
}
