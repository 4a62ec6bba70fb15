import { z } from 'zod'

/** The kinds that produce hints: MLS group messages and Noise direct messages. */
export const GROUP_MESSAGE_KIND = 445
export const DIRECT_MESSAGE_KIND = 446

/** Default Pub/Sub topic per hint kind (DESIGN.md §5). */
export const DEFAULT_TOPICS = { group: 'mls-group-hints', dm: 'noise-dm-hints' } as const

/** Longest group routing id carried (ids are short hex in practice; this bounds what a hint can carry). */
export const MAX_GROUP_ID_LENGTH = 255
/** Most recipients one 446 hint names (its `p` tags beyond these are ignored). */
export const MAX_RECIPIENTS = 64
/** Pub/Sub refuses a message whose attribute value exceeds 1024 bytes. */
export const MAX_ATTRIBUTE_BYTES = 1024

const HEX64 = /^[0-9a-f]{64}$/
const DECIMAL = /^(0|[1-9][0-9]{0,15})$/

/** A routing hint: small JSON, one per accepted 445/446 event. Never any content. */
export type Hint = z.infer<typeof hintSchema>

export const hintSchema = z
  .object({
    v: z.literal(1),
    id: z.string().regex(HEX64),
    kind: z.union([z.literal(GROUP_MESSAGE_KIND), z.literal(DIRECT_MESSAGE_KIND)]),
    pubkey: z.string().regex(HEX64),
    created_at: z.number().int().min(0).max(0xffffffff),
    group: z.string().min(1).max(MAX_GROUP_ID_LENGTH).optional(),
    epoch: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER).optional(),
    recipients: z.array(z.string().regex(HEX64)).min(1).max(MAX_RECIPIENTS).optional(),
  })
  .strict()
  .superRefine((hint, ctx) => {
    if (hint.kind === GROUP_MESSAGE_KIND && hint.group === undefined) ctx.addIssue({ code: 'custom', message: 'a 445 hint needs group' })
    if (hint.kind === DIRECT_MESSAGE_KIND && hint.recipients === undefined) ctx.addIssue({ code: 'custom', message: 'a 446 hint needs recipients' })
    // A 446 carrying a group would be ordered (and routed by attribute) as if it were group traffic.
    if (hint.kind === GROUP_MESSAGE_KIND && hint.recipients !== undefined) ctx.addIssue({ code: 'custom', message: 'a 445 hint has no recipients' })
    if (hint.kind === DIRECT_MESSAGE_KIND && (hint.group !== undefined || hint.epoch !== undefined))
      ctx.addIssue({ code: 'custom', message: 'a 446 hint has no group or epoch' })
  })

/** The fields of an event a hint is made from. */
export interface HintSource {
  id: string
  kind: number
  pubkey: string
  created_at: number
  tags: string[][]
}

/** A tag value as an epoch; 16 digits can exceed 2^53, which the schema (rightly) refuses. */
const decimal = (value: string | undefined): number | undefined =>
  value !== undefined && DECIMAL.test(value) && Number.isSafeInteger(Number(value)) ? Number(value) : undefined

/**
 * The MLS epoch of a 445: its `k` tag, or else the first `e` tag whose value is a decimal number (the
 * original spec's shape; a real `e` tag holds a 64-hex event id and never reads as decimal).
 */
const epochOf = (tags: string[][]): number | undefined => {
  const k = tags.find(t => t[0] === 'k')
  if (k) return decimal(k[1])
  for (const t of tags) if (t[0] === 'e' && decimal(t[1]) !== undefined) return decimal(t[1])
  return undefined
}

/**
 * The hint for an accepted event, or undefined when it routes nowhere: other kinds, a 445 without a
 * usable `h` tag, a 446 without a 64-hex `p` tag.
 */
export const hintFromEvent = (event: HintSource): Hint | undefined => {
  const base = { v: 1 as const, id: event.id, pubkey: event.pubkey, created_at: event.created_at }
  if (event.kind === GROUP_MESSAGE_KIND) {
    const group = event.tags.find(t => t[0] === 'h')?.[1]
    if (!group || group.length > MAX_GROUP_ID_LENGTH) return undefined
    const epoch = epochOf(event.tags)
    return { ...base, kind: GROUP_MESSAGE_KIND, group, ...(epoch !== undefined && { epoch }) }
  }
  if (event.kind === DIRECT_MESSAGE_KIND) {
    const recipients = [...new Set(event.tags.filter(t => t[0] === 'p' && typeof t[1] === 'string' && HEX64.test(t[1])).map(t => t[1] as string))]
    if (recipients.length === 0) return undefined
    return { ...base, kind: DIRECT_MESSAGE_KIND, recipients: recipients.slice(0, MAX_RECIPIENTS) }
  }
  return undefined
}

/** Which topic a hint goes to. */
export const topicOf = (hint: Hint, topics: { group: string; dm: string } = DEFAULT_TOPICS): string =>
  hint.kind === GROUP_MESSAGE_KIND ? topics.group : topics.dm

/** How many recipients fit one attribute value: 64 hex digits and a comma each. */
const RECIPIENTS_PER_ATTRIBUTE = Math.floor((MAX_ATTRIBUTE_BYTES + 1) / 65)

/** The W3C trace context a hint travels with (`traceparent`, and `tracestate` when there is one). */
export type HintTrace = { traceparent: string; tracestate?: string }

/**
 * The message attributes: the routing fields (`kind`, `group` or `recipient`), the event id, and the W3C
 * trace context (`traceparent`, `tracestate`) when the publish is traced. `recipient` joins the first 15
 * recipients by commas (all 64 would make Pub/Sub refuse the whole message); the data always names them all.
 */
export const hintAttributes = (hint: Hint, trace?: HintTrace): Record<string, string> => ({
  kind: String(hint.kind),
  event_id: hint.id,
  ...(hint.group !== undefined && { group: hint.group }),
  ...(hint.recipients !== undefined && { recipient: hint.recipients.slice(0, RECIPIENTS_PER_ATTRIBUTE).join(',') }),
  ...trace,
})

/** The ordering key: the group id for 445 (epochs of one group in order), none for 446. */
export const orderingKeyOf = (hint: Hint): string | undefined => (hint.kind === GROUP_MESSAGE_KIND ? hint.group : undefined)

/** The message data: the hint's JSON. */
export const encodeHint = (hint: Hint): Buffer => Buffer.from(JSON.stringify(hint))

/** Parses message data into a hint, or says why it is not one. */
export const decodeHint = (data: Buffer | string): { ok: true; hint: Hint } | { ok: false; reason: string } => {
  let value: unknown
  try {
    value = JSON.parse(typeof data === 'string' ? data : data.toString('utf8'))
  } catch {
    return { ok: false, reason: 'data is not JSON' }
  }
  const parsed = hintSchema.safeParse(value)
  if (parsed.success) return { ok: true, hint: parsed.data }
  const issue = parsed.error.issues[0]
  return { ok: false, reason: issue ? `${issue.path.join('.') || 'hint'}: ${issue.message}` : 'not a hint' }
}
