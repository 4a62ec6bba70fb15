import { MAX_CREATED_AT, parsePubkey } from '@msr/nostr'
import { z } from 'zod'
import { isStorableText, UNSTORABLE_TEXT } from '../db/storable-text.js'
import { ApiError } from '../errors.js'

/** `schema` refusing what PostgreSQL cannot store as sent (NUL, a lone surrogate): every free-form string that reaches SQL goes through it. */
const storable = <S extends z.ZodType<string>>(schema: S): S => schema.refine(isStorableText, UNSTORABLE_TEXT)

/** A free-form string (the base of every such field, query and path parameter). */
export const text = storable(z.string())

/** A pubkey as 64-char hex or npub, normalised to lowercase hex. */
export const pubkey = z
  .string()
  .max(128)
  .transform((value, ctx) => {
    const hex = parsePubkey(value)
    if (!hex) ctx.addIssue({ code: 'custom', message: 'expected a pubkey as 64 hex characters or npub1…' })
    return hex ?? ''
  })
  .meta({ description: 'A pubkey as 64 hex characters or npub1…; answered as hex.', example: 'npub180cvv07tjdrrgpa0j7j7tmnyl2yr6yr7l8j4s3evf6u64th6gkwsyjh6w6' })

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/

/** Bytes a padded base64 string decodes to. */
export const decodedLength = (b64: string): number => (b64.length / 4) * 3 - (b64.endsWith('==') ? 2 : b64.endsWith('=') ? 1 : 0)

/** Standard (RFC 4648) padded base64; its decoded size is checked by the route against the cap (413). */
export const base64 = (maxBytes: number) =>
  z
    .string()
    .min(1)
    .regex(BASE64, 'expected standard padded base64')
    .meta({ description: `Opaque bytes as standard padded base64, at most ${maxBytes} bytes decoded.` })

/** A group routing id (welcomes, the group registry). */
export const groupId = text.min(1).max(256)

/** A KeyPackage's opaque string tags. */
export const tags = z.array(z.array(text.max(1024)).max(16)).max(64)

/** A group's relay URLs. */
export const relays = z.array(text.max(512).regex(/^wss?:\/\//, 'expected a ws:// or wss:// URL')).max(16)

/** A group's display name (admin metadata). */
export const displayName = text.max(256)

/**
 * A group's avatar URL (admin metadata, served to every caller): http or https only, never a `javascript:`
 * or `data:` URL a client might render.
 */
export const avatarUrl = storable(z.url({ protocol: /^https?$/, error: 'expected an http:// or https:// URL' }).max(2048))

/** The body of POST /keypackages. */
export const keyPackageBody = (maxBytes: number, maxTtl: number) =>
  z.strictObject({
    recipient: pubkey,
    sender: pubkey.optional().meta({ description: 'If sent, must be the NIP-98 pubkey.' }),
    content_b64: base64(maxBytes),
    tags: tags.optional().meta({ description: 'Opaque string tags, kept with the item.' }),
    ttl_seconds: z.number().int().min(1).optional().meta({ description: `Lifetime; default MAILBOX_DEFAULT_TTL, at most ${maxTtl}.` }),
  })

/** The body of POST /welcome. */
export const welcomeBody = (maxBytes: number, maxTtl: number) =>
  z.strictObject({
    recipient: pubkey,
    sender: pubkey.optional().meta({ description: 'If sent, must be the NIP-98 pubkey.' }),
    group_id: groupId,
    welcome_b64: base64(maxBytes),
    ratchet_tree_b64: base64(maxBytes).optional(),
    ttl_seconds: z.number().int().min(1).optional().meta({ description: `Lifetime; default MAILBOX_DEFAULT_TTL, at most ${maxTtl}.` }),
  })

/**
 * Page sizes (`limit`) of the listings. @msr/mailbox-client refuses a limit outside them before any request
 * (its input.ts mirrors the maxima; test/client-bounds.test.ts checks the two against each other).
 */
export const PAGE_SIZES = {
  mailbox: { default: 50, max: 100 },
  dmHints: { default: 100, max: 500 },
  groups: { default: 100, max: 500 },
} as const

/** A listing's `limit` query parameter. */
const pageLimit = (size: { default: number; max: number }) => z.coerce.number().int().min(1).max(size.max).default(size.default)

/** The query of GET /keypackages and GET /welcome. */
export const pickupQuery = z.strictObject({
  recipient: pubkey,
  limit: pageLimit(PAGE_SIZES.mailbox),
  cursor: text.max(64).optional().meta({ description: 'The next_cursor of the previous page.' }),
})

/** The query of GET /dm-hints. */
export const dmHintsQuery = z.strictObject({
  recipient: pubkey,
  since: z.coerce.number().int().min(0).max(MAX_CREATED_AT).default(0).meta({ description: 'Unix seconds; hints received at or after it.' }),
  limit: pageLimit(PAGE_SIZES.dmHints),
  cursor: text.max(64).optional().meta({ description: 'The next_cursor of the previous page.' }),
})

/** The query of GET /groups (admin). */
export const groupListQuery = z.strictObject({
  limit: pageLimit(PAGE_SIZES.groups),
  cursor: text.max(256).optional().meta({ description: 'The next_cursor of the previous page (a group id).' }),
})

/** The body of POST /groups (admin). */
export const groupBody = z.strictObject({
  group_id: groupId,
  display_name: displayName.nullable().optional(),
  avatar_url: avatarUrl.nullable().optional(),
  owner_pubkey: pubkey.nullable().optional(),
  relays: relays.optional(),
})

/** The path parameter of item routes. */
export const itemId = z.string().uuid()

/** Parses with `schema`, or throws a 400 listing every problem. */
export const parse = <S extends z.ZodType>(schema: S, value: unknown, where: 'body' | 'query' | 'path'): z.output<S> => {
  const result = schema.safeParse(value ?? {})
  if (result.success) return result.data
  throw new ApiError(400, 'VALIDATION_FAILED', `invalid ${where}: ${problems(result.error).join('; ')}`)
}

/** Most problems, and most unknown fields of one object, an answer names (the rest are counted). */
const MAX_NAMED = 10
/** Most characters of a field name an answer echoes. */
const MAX_NAME_LENGTH = 64

/** Up to MAX_NAMED of `items`, then how many more there were: an answer stays small whatever was sent. */
const named = (items: string[], more: (n: number) => string): string[] =>
  items.length <= MAX_NAMED ? items : [...items.slice(0, MAX_NAMED), more(items.length - MAX_NAMED)]

/** Every problem of a failed parse as `path: message` (unknown fields named), the first few of many. */
export const problems = (error: z.ZodError): string[] =>
  named(
    error.issues.map(issue => {
      const path = issue.path.join('.').slice(0, 4 * MAX_NAME_LENGTH)
      const keys = issue.code === 'unrecognized_keys' ? named(issue.keys.map(key => key.slice(0, MAX_NAME_LENGTH)), n => `and ${n} more`) : []
      const what = issue.code === 'unrecognized_keys' ? `unknown field${issue.keys.length > 1 ? 's' : ''} ${keys.join(', ')}` : issue.message
      return path ? `${path}: ${what}` : what
    }),
    n => `and ${n} more problems`,
  )
