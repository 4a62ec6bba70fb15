// What the API answers, as typed objects: field names in camelCase, times as unix seconds, and each
// base64 artifact both decoded (Uint8Array) and as the API sent it. A reply of another shape is refused.
import { decodeBase64, isBase64 } from './base64.js'

/** What every mailbox item carries. */
export interface MailboxItem {
  /** The id to acknowledge it with. */
  id: string
  /** Hex pubkeys. */
  recipient: string
  sender: string
  createdAt: number
  expiresAt: number
  /** Its first pickup (set by the first list that returned it). */
  pickedUpAt: number | null
}

/** A KeyPackage waiting in the caller's mailbox. */
export interface KeyPackageItem extends MailboxItem {
  content: Uint8Array
  contentB64: string
  /** The opaque tags deposited with it ([] when none). */
  tags: string[][]
}

/** A Welcome waiting in the caller's mailbox. */
export interface WelcomeItem extends MailboxItem {
  groupId: string
  welcome: Uint8Array
  welcomeB64: string
  ratchetTree?: Uint8Array
  ratchetTreeB64?: string
}

/** A group registry entry (non-authoritative: MLS is the authority). */
export interface Group {
  groupId: string
  displayName: string | null
  avatarUrl: string | null
  ownerPubkey: string | null
  lastEpoch: number | null
  lastEventTs: number | null
  /** The kind-445 events relay hints reported for it, each once (with or without an epoch: Marmot 445s carry none). */
  messageCount: number
  relays: string[]
  createdAt: number
  updatedAt: number
}

/** The id of a kind-446 event waiting on the relay for the caller. */
export interface DmHint {
  eventId: string
  sender: string
  /** The event's created_at. */
  createdAt: number
  /** When the hint arrived (floored to the second; pass it back as `since`). */
  receivedAt: number
}

/** One page of a listing; `nextCursor` is absent on the last page. */
export interface Page<T> {
  items: T[]
  nextCursor?: string
}

type Json = Record<string, unknown>

const object = (value: unknown, what: string): Json => {
  if (typeof value === 'object' && value !== null && !Array.isArray(value)) return value as Json
  throw new TypeError(`${what} is not an object`)
}
const string = (o: Json, key: string): string => {
  if (typeof o[key] === 'string') return o[key]
  throw new TypeError(`${key} is not a string`)
}
const number = (o: Json, key: string): number => {
  if (typeof o[key] === 'number') return o[key]
  throw new TypeError(`${key} is not a number`)
}
const nullable = <T>(o: Json, key: string, read: (o: Json, key: string) => T): T | null => (o[key] === null || o[key] === undefined ? null : read(o, key))
const bytes = (o: Json, key: string): Uint8Array => {
  const text = string(o, key)
  if (!isBase64(text)) throw new TypeError(`${key} is not base64`)
  return decodeBase64(text)
}
const stringArrays = (value: unknown, key: string): string[][] => {
  if (Array.isArray(value) && value.every(t => Array.isArray(t) && t.every(v => typeof v === 'string'))) return value as string[][]
  throw new TypeError(`${key} is not an array of string arrays`)
}

/** `{ ok: true, id }` of a deposit. */
export const readDeposit = (json: unknown): { id: string } => ({ id: string(object(json, 'the answer'), 'id') })

/** `{ ok: true, items, next_cursor? }`, each item read by `item`. */
export const readPage =
  <T>(item: (o: Json) => T) =>
  (json: unknown): Page<T> => {
    const body = object(json, 'the answer')
    if (!Array.isArray(body.items)) throw new TypeError('items is not an array')
    const items = body.items.map((raw, i) => item(object(raw, `items[${i}]`)))
    return body.next_cursor === undefined ? { items } : { items, nextCursor: string(body, 'next_cursor') }
  }

const mailboxItem = (o: Json): MailboxItem => ({
  id: string(o, 'id'),
  recipient: string(o, 'recipient'),
  sender: string(o, 'sender'),
  createdAt: number(o, 'created_at'),
  expiresAt: number(o, 'expires_at'),
  pickedUpAt: nullable(o, 'picked_up_at', number),
})

/** A KeyPackage item of a page. */
export const readKeyPackage = (o: Json): KeyPackageItem => ({
  ...mailboxItem(o),
  content: bytes(o, 'content_b64'),
  contentB64: string(o, 'content_b64'),
  tags: o.tags === undefined || o.tags === null ? [] : stringArrays(o.tags, 'tags'),
})

/** A Welcome item of a page. */
export const readWelcome = (o: Json): WelcomeItem => ({
  ...mailboxItem(o),
  groupId: string(o, 'group_id'),
  welcome: bytes(o, 'welcome_b64'),
  welcomeB64: string(o, 'welcome_b64'),
  ...(o.ratchet_tree_b64 !== undefined && o.ratchet_tree_b64 !== null && { ratchetTree: bytes(o, 'ratchet_tree_b64'), ratchetTreeB64: string(o, 'ratchet_tree_b64') }),
})

/** A group entry (of GET /groups/{id}, a listing or an upsert). */
export const readGroup = (o: Json): Group => {
  if (!Array.isArray(o.relays) || !o.relays.every(r => typeof r === 'string')) throw new TypeError('relays is not an array of strings')
  return {
    groupId: string(o, 'group_id'),
    displayName: nullable(o, 'display_name', string),
    avatarUrl: nullable(o, 'avatar_url', string),
    ownerPubkey: nullable(o, 'owner_pubkey', string),
    lastEpoch: nullable(o, 'last_epoch', number),
    lastEventTs: nullable(o, 'last_event_ts', number),
    messageCount: number(o, 'message_count'),
    relays: o.relays as string[],
    createdAt: number(o, 'created_at'),
    updatedAt: number(o, 'updated_at'),
  }
}

/** `{ ok: true, group }`. */
export const readGroupAnswer = (json: unknown): Group => readGroup(object(object(json, 'the answer').group, 'group'))

/** A DM hint of a page. */
export const readDmHint = (o: Json): DmHint => ({
  eventId: string(o, 'event_id'),
  sender: string(o, 'sender'),
  createdAt: number(o, 'created_at'),
  receivedAt: number(o, 'received_at'),
})
