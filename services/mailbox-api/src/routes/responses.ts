// The bodies the API answers, as zod schemas. The OpenAPI document's response schemas are generated
// from them (openapi.ts), the compiler checks the domain's row types against them (end of this file), and
// test/openapi.test.ts checks real answers against the document: the three cannot drift apart unnoticed.
import { z } from 'zod'
import type { DmHint } from '../domain/dm-hints.js'
import type { Group } from '../domain/groups.js'
import type { MailboxItem } from '../domain/mailbox.js'
import type { ErrorCode } from '../errors.js'
import { avatarUrl, displayName, groupId, relays, tags } from './schemas.js'

/** Every code of `ErrorCode`, at run time (the compiler refuses a code missing here, or one that is not an ErrorCode). */
export const ERROR_CODES = [
  'AUTH_REQUIRED',
  'AUTH_INVALID',
  'AUTH_EXPIRED',
  'AUTH_URL_MISMATCH',
  'AUTH_METHOD_MISMATCH',
  'AUTH_PAYLOAD_MISMATCH',
  'AUTH_BAD_SIGNATURE',
  'AUTH_REPLAYED',
  'ADMIN_AUTH_REQUIRED',
  'PUSH_AUTH_REQUIRED',
  'PUSH_AUTH_INVALID',
  'FORBIDDEN',
  'VALIDATION_FAILED',
  'PAYLOAD_TOO_LARGE',
  'HEADERS_TOO_LARGE',
  'REQUEST_TIMEOUT',
  'TTL_TOO_LONG',
  'NOT_FOUND',
  'MAILBOX_NOT_FOUND',
  'GROUP_NOT_FOUND',
  'RATE_LIMITED',
  'UNSUPPORTED_MEDIA_TYPE',
  'INTERNAL',
  'UNAVAILABLE',
] as const satisfies readonly ErrorCode[]

type Unlisted = Exclude<ErrorCode, (typeof ERROR_CODES)[number]>
const _everyCodeListed: [Unlisted] extends [never] ? true : { unlisted: Unlisted } = true

/** `{ error: { code, message } }` with `code` one of `codes` (all of them by default). */
export const errorBody = (codes: readonly ErrorCode[] = ERROR_CODES) =>
  z.strictObject({
    error: z.strictObject({
      code: z.enum(codes as [ErrorCode, ...ErrorCode[]]).meta({ description: 'Stable: branch on it, never on the message.' }),
      message: z.string().min(1).meta({ description: 'For people; may change.' }),
    }),
  })

const HEX64 = /^[0-9a-f]{64}$/

/** A pubkey as answered: 64 lowercase hex characters (whatever form it was sent in). */
const hexPubkey = z.string().regex(HEX64).meta({ example: '3bf0c63fcb93463407af97a5e5ee64fa883d107ef9e558472c4eb9aaaefa459d' })

/** Unix seconds. */
const unixSeconds = (description: string) => z.int().meta({ format: 'int64', description, example: 1764108000 })

/** An artifact as deposited: standard padded base64. */
const artifact = (description: string) =>
  z
    .string()
    .regex(/^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/)
    .min(1)
    .meta({ format: 'byte', description, example: 'AAEAAgADAAQ=' })

const ok = z.literal(true)
const cursor = z.string().min(1).meta({ description: 'Pass it as `cursor` for the next page; absent on the last page.', example: 'czo0Mg' })

/** `201` of a deposit. */
export const deposited = z.strictObject({
  ok,
  id: z.uuid().meta({ description: 'The item id, to acknowledge it with.', example: 'c6917cbd-c0d6-4dfb-b6a5-34bdc2934127' }),
})

/** `200` of an ack. */
export const acknowledged = z.strictObject({ ok })

/** The fields every mailbox item has, in answer order around the kind's artifact columns. */
const itemHead = {
  id: deposited.shape.id,
  recipient: hexPubkey,
  sender: hexPubkey.meta({ description: 'The NIP-98 pubkey that deposited it.' }),
}
const itemTail = {
  created_at: unixSeconds('When it was deposited.'),
  expires_at: unixSeconds('When it expires (it is never answered after).'),
  picked_up_at: unixSeconds('Its first pickup (set by the first listing that answered it).').nullable(),
}

/** A KeyPackage waiting in the caller's mailbox. */
export const keyPackageItem = z.strictObject({
  ...itemHead,
  content_b64: artifact('The serialized KeyPackage.'),
  tags: tags.optional().meta({ description: 'The opaque tags deposited with it; absent when none were.', example: [['mls_protocol_version', '1.0']] }),
  ...itemTail,
})

/** A Welcome waiting in the caller's mailbox. */
export const welcomeItem = z.strictObject({
  ...itemHead,
  group_id: groupId.meta({ description: 'The group the Welcome is for.', example: '5d1e7a0c' }),
  welcome_b64: artifact('The serialized Welcome.'),
  ratchet_tree_b64: artifact('The ratchet tree; absent when none was deposited.').optional(),
  ...itemTail,
})

/** A group registry entry (non-authoritative: MLS is the authority). */
export const group = z.strictObject({
  group_id: groupId.meta({ example: '5d1e7a0c' }),
  display_name: displayName.nullable(),
  avatar_url: avatarUrl.nullable(),
  owner_pubkey: hexPubkey.nullable(),
  last_epoch: z.int().min(0).meta({ format: 'int64', description: 'The highest MLS epoch a relay hint reported.', example: 7 }).nullable(),
  last_event_ts: unixSeconds('The created_at of the latest kind-445 event a relay hint reported.').nullable(),
  message_count: z
    .int()
    .min(0)
    .meta({
      format: 'int64',
      description:
        'The kind-445 events relay hints reported, each event id once, since hints started; counted with or without an epoch (Marmot 445s carry none), never lowered.',
      example: 42,
    }),
  relays,
  created_at: unixSeconds('When the entry was created.'),
  updated_at: unixSeconds('When metadata or a hint last changed it.'),
})

/** `{ ok, group }`. */
export const groupAnswer = z.strictObject({ ok, group })

/** A DM hint: a kind-446 event waiting on the relay for the caller. */
export const dmHint = z.strictObject({
  event_id: z.string().regex(HEX64).meta({ description: 'The kind-446 event id.', example: 'a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90' }),
  sender: hexPubkey.meta({ description: "The event's pubkey." }),
  created_at: unixSeconds("The event's created_at."),
  received_at: unixSeconds('When the hint arrived, floored to the second: pass it back as `since`.'),
})

/** `{ ok, items, next_cursor? }` of `item`s. */
const page = <T extends z.ZodType>(item: T) => z.strictObject({ ok, items: z.array(item), next_cursor: cursor.optional() })

export const keyPackagePage = page(keyPackageItem)
export const welcomePage = page(welcomeItem)
export const groupPage = page(group)
export const dmHintPage = page(dmHint)

/** The plain-text answers of `/healthz` and `/readyz` (app.ts). */
export const HEALTH_TEXT = {
  alive: z.literal('ok\n'),
  ready: z.literal('ready\n'),
  notReady: z.literal('not ready\n'),
}

/** `/metrics`: Prometheus' text exposition format. */
export const metricsText = z.string().meta({ example: '# HELP msr_mailbox_deposits_total Mailbox items deposited.\n# TYPE msr_mailbox_deposits_total counter\nmsr_mailbox_deposits_total{kind="keypackage"} 1\n' })

/** `/api/v1/openapi.json`: an OpenAPI 3.0 document (this one). */
export const openApiShape = z.looseObject({
  openapi: z.string().regex(/^3\.0\.\d+$/),
  info: z.looseObject({ title: z.string(), version: z.string() }),
  paths: z.record(z.string(), z.looseObject({})),
})

/** The named schemas of the document's `components.schemas`, by name. */
export const NAMED_RESPONSES = {
  Error: errorBody(),
  Deposited: deposited,
  Acknowledged: acknowledged,
  KeyPackageItem: keyPackageItem,
  KeyPackagePage: keyPackagePage,
  WelcomeItem: welcomeItem,
  WelcomePage: welcomePage,
  Group: group,
  GroupAnswer: groupAnswer,
  GroupPage: groupPage,
  DmHint: dmHint,
  DmHintPage: dmHintPage,
}

// The domain's row types are what the handlers answer: each must be exactly its schema's type.
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false
type ItemBase = keyof typeof itemHead | keyof typeof itemTail
const _groupIsTheSchema: Same<Group, z.output<typeof group>> = true
const _dmHintIsTheSchema: Same<DmHint, z.output<typeof dmHint>> = true
const _itemBaseIsTheSchema: Same<Pick<MailboxItem, ItemBase>, Pick<z.output<typeof keyPackageItem>, ItemBase>> = true
