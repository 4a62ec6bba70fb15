// The export format (JSON lines: a header, then one record per row) and, per table, the one column list
// that both directions are built from: the export's SELECT and the import's INSERT cannot drift apart.
import { isHex64 } from '@msr/nostr'
import { z } from 'zod'
import { avatarUrl, base64, decodedLength, displayName, groupId, itemId, problems, pubkey, relays, tags } from '../routes/schemas.js'

/** The format name every export's header carries. */
export const FORMAT = 'msr-mailbox-export'

/** The format version this build writes and reads. */
export const VERSION = 1

/** The tables an export can hold (`--tables`), in the order they are written. */
export const TABLES = ['groups', 'keypackages', 'welcomes', 'dm_hints'] as const

/** A table an export can hold. */
export type Table = (typeof TABLES)[number]

/** The `type` of a table's records. */
export type RecordType = 'group' | 'keypackage' | 'welcome' | 'dm_hint'

/** The record types in table order. */
export const RECORD_TYPES: readonly RecordType[] = ['group', 'keypackage', 'welcome', 'dm_hint']

/** A validated record: its type, and one value per column (times as ISO 8601 strings). */
export type MailboxRecord = { type: RecordType } & Record<string, unknown>

/** The first line of an export. */
export interface Header {
  type: 'header'
  format: typeof FORMAT
  version: typeof VERSION
  exported_at: string
  tables: Table[]
}

/** The header of an export of `tables` made now. */
export const header = (tables: Table[]): Header => ({ type: 'header', format: FORMAT, version: VERSION, exported_at: new Date().toISOString(), tables })

const headerSchema = z.strictObject({
  type: z.literal('header'),
  format: z.literal(FORMAT),
  version: z.literal(VERSION),
  exported_at: z.iso.datetime({ offset: true }),
  tables: z.array(z.enum(TABLES)).optional(),
})

const EXPECTED = `expected {"type":"header","format":"${FORMAT}","version":${VERSION},…}`

/** What keeps a parsed line from being a header this build reads (undefined: it is one). */
const headerProblem = (value: unknown): string | undefined => {
  const fields = isObject(value) ? value : {}
  if (fields.type !== 'header' || fields.format !== FORMAT) return `not an ${FORMAT} header (${EXPECTED})`
  if (fields.version !== VERSION) return `unsupported format version ${JSON.stringify(fields.version)} (this build reads version ${VERSION})`
  const parsed = headerSchema.safeParse(value)
  return parsed.success ? undefined : `invalid header: ${problems(parsed.error).join('; ')}`
}

/** Why a stream whose first line is `line` is refused (undefined: it starts with a header this build reads; no line: it was empty). */
export const refuseHeader = (line: string | undefined): string | undefined => {
  if (line === undefined) return `missing header: the stream is empty (${EXPECTED})`
  const problem = headerProblem(parseJson(line.replace(/^\uFEFF/, '')))
  if (problem === undefined) return undefined
  return problem.startsWith('not an') ? `missing header: line 1 is ${problem}` : problem
}

// ---------------------------------------------------------------------------------------------
// Columns

type ColumnType = 'text' | 'jsonb' | 'bigint' | 'timestamptz'

/** A column, the record field that carries it, and its type. */
export interface Column {
  column: string
  field: string
  type: ColumnType
}

const col = (column: string, type: ColumnType = 'text', field = column): Column => ({ column, field, type })

/** What export and import know of one table. */
export interface TableSpec {
  table: Table
  type: RecordType
  sqlTable: string
  columns: readonly Column[]
  /** The export order: pickup order for the mailboxes and hints (the import keeps it), the id for groups. */
  order: string
  /** Rows carry `expires_at`: expired ones are skipped both ways. */
  expires: boolean
  /** Rows per FETCH: fewer where one row may carry two artifacts, so a page stays small in memory. */
  fetchRows: number
  /** The import's conflict clause: an existing row is kept (a duplicate), except that groups merge. */
  onConflict: string
}

/**
 * An imported group merges into an existing one as a hint does: the epoch only rises and the last event
 * time only moves forward; metadata already set on this server wins, and only fills what is missing.
 * The message count takes the larger of the two (not their sum: importing twice changes nothing).
 * A group the import does not change is left alone (a duplicate: not even updated_at moves).
 */
const MERGE_GROUP = `ON CONFLICT (group_id) DO UPDATE SET
  last_epoch = GREATEST(groups.last_epoch, EXCLUDED.last_epoch),
  last_event_ts = GREATEST(groups.last_event_ts, EXCLUDED.last_event_ts),
  message_count = GREATEST(groups.message_count, EXCLUDED.message_count),
  display_name = COALESCE(groups.display_name, EXCLUDED.display_name),
  avatar_url = COALESCE(groups.avatar_url, EXCLUDED.avatar_url),
  owner_pubkey = COALESCE(groups.owner_pubkey, EXCLUDED.owner_pubkey),
  relays = CASE WHEN groups.relays = '[]'::jsonb THEN EXCLUDED.relays ELSE groups.relays END,
  updated_at = now()
WHERE EXCLUDED.last_epoch > groups.last_epoch OR (groups.last_epoch IS NULL AND EXCLUDED.last_epoch IS NOT NULL)
   OR EXCLUDED.last_event_ts > groups.last_event_ts OR (groups.last_event_ts IS NULL AND EXCLUDED.last_event_ts IS NOT NULL)
   OR EXCLUDED.message_count > groups.message_count
   OR (groups.display_name IS NULL AND EXCLUDED.display_name IS NOT NULL)
   OR (groups.avatar_url IS NULL AND EXCLUDED.avatar_url IS NOT NULL)
   OR (groups.owner_pubkey IS NULL AND EXCLUDED.owner_pubkey IS NOT NULL)
   OR (groups.relays = '[]'::jsonb AND EXCLUDED.relays <> '[]'::jsonb)`

/** The four tables, in export order. `seq` is not carried: an import appends, keeping the exported order. */
export const SPECS: readonly TableSpec[] = [
  {
    table: 'groups',
    type: 'group',
    sqlTable: 'groups',
    columns: [
      col('group_id'), col('display_name'), col('avatar_url'), col('owner_pubkey'), col('last_epoch', 'bigint'), col('last_event_ts', 'bigint'),
      col('message_count', 'bigint'), col('relays', 'jsonb'), col('created_at', 'timestamptz'), col('updated_at', 'timestamptz'),
    ],
    order: 'group_id',
    expires: false,
    fetchRows: 1000,
    onConflict: MERGE_GROUP,
  },
  {
    table: 'keypackages',
    type: 'keypackage',
    sqlTable: 'mail_keypackages',
    columns: [
      col('id'), col('recipient_pubkey', 'text', 'recipient'), col('sender_pubkey', 'text', 'sender'), col('content_b64'), col('tags', 'jsonb'),
      col('created_at', 'timestamptz'), col('expires_at', 'timestamptz'), col('picked_up_at', 'timestamptz'),
    ],
    order: 'seq',
    expires: true,
    fetchRows: 100,
    onConflict: 'ON CONFLICT DO NOTHING',
  },
  {
    table: 'welcomes',
    type: 'welcome',
    sqlTable: 'mail_welcomes',
    columns: [
      col('id'), col('recipient_pubkey', 'text', 'recipient'), col('sender_pubkey', 'text', 'sender'), col('group_id'), col('welcome_b64'),
      col('ratchet_tree_b64'), col('created_at', 'timestamptz'), col('expires_at', 'timestamptz'), col('picked_up_at', 'timestamptz'),
    ],
    order: 'seq',
    expires: true,
    fetchRows: 100,
    onConflict: 'ON CONFLICT DO NOTHING',
  },
  {
    table: 'dm_hints',
    type: 'dm_hint',
    sqlTable: 'dm_hints',
    columns: [
      col('event_id'), col('recipient_pubkey', 'text', 'recipient'), col('sender_pubkey', 'text', 'sender'), col('event_created_at', 'bigint'),
      col('received_at', 'timestamptz'), col('expires_at', 'timestamptz'),
    ],
    order: 'seq',
    expires: true,
    fetchRows: 1000,
    onConflict: 'ON CONFLICT DO NOTHING',
  },
]

/** The spec of each record type. */
export const SPEC_OF: Readonly<Record<RecordType, TableSpec>> = Object.fromEntries(SPECS.map(s => [s.type, s])) as Record<RecordType, TableSpec>

// Times leave as UTC ISO 8601 with microseconds (exactly what timestamptz holds); bigints as float8, which
// is exact below 2^53 and needs no type parser.
const selected = (c: Column): string =>
  c.type === 'timestamptz'
    ? `to_char(${c.column} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS ${c.field}`
    : `${c.column}${c.type === 'bigint' ? '::float8' : ''} AS ${c.field}`

/** The export's query of a table: unexpired rows, in order, each row's keys the record's fields. */
export const selectSql = (spec: TableSpec): string =>
  `SELECT ${spec.columns.map(selected).join(', ')} FROM ${spec.sqlTable}${spec.expires ? ' WHERE expires_at > now()' : ''} ORDER BY ${spec.order}`

/**
 * The import's statement: one multi-row insert of column arrays (unnest keeps the given order, and with
 * it the pickup order), then the table's conflict clause. Each returned row says whether it was new.
 */
export const insertSql = (spec: TableSpec): string => {
  const names = spec.columns.map((_, i) => `c${i}`)
  const values = spec.columns.map((c, i) => (c.type === 'jsonb' ? `c${i}::jsonb` : `c${i}`))
  const arrays = spec.columns.map((c, i) => `$${i + 1}::${c.type === 'jsonb' ? 'text' : c.type}[]`)
  return `INSERT INTO ${spec.sqlTable} (${spec.columns.map(c => c.column).join(', ')})
    SELECT ${values.join(', ')} FROM unnest(${arrays.join(', ')}) WITH ORDINALITY AS r(${names.join(', ')}, ord) ORDER BY ord
    ${spec.onConflict}
    RETURNING (xmax = 0) AS inserted`
}

/** The parameters of `insertSql`: one array per column. */
export const insertParams = (spec: TableSpec, records: readonly MailboxRecord[]): unknown[][] =>
  spec.columns.map(c => records.map(r => (c.type === 'jsonb' && r[c.field] !== null ? JSON.stringify(r[c.field]) : r[c.field])))

// ---------------------------------------------------------------------------------------------
// Record schemas

const LATEST = 253_402_300_799 // 9999-12-31T23:59:59Z

/** A time as ISO 8601 (what exports write) or unix seconds, normalised to ISO 8601. */
const time = z
  .union([z.iso.datetime({ offset: true }), z.number().min(0).max(LATEST)], { error: 'expected an ISO 8601 time or unix seconds' })
  .transform(v => (typeof v === 'number' ? new Date(v * 1000).toISOString() : v))
  .refine(v => Date.parse(v) >= 0, 'expected a time after 1970')

const hex64 = z.string().refine(isHex64, 'expected 64 lowercase hex characters')
const unixSeconds = z.number().int().min(0)
const count = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER)

/** Base64 as the API takes it, capped like a deposit. */
const artifact = (maxBytes: number) =>
  base64(maxBytes).refine(v => decodedLength(v) <= maxBytes, { message: `decodes to more than ${maxBytes} bytes`, when: p => p.issues.length === 0 })

/** The strict schema of each record type; artifacts capped at `maxArtifactBytes` as deposits are. */
export const recordSchemas = (maxArtifactBytes: number): Record<RecordType, z.ZodType<MailboxRecord>> => ({
  group: z.strictObject({
    type: z.literal('group'),
    group_id: groupId,
    display_name: displayName.nullable().default(null),
    avatar_url: avatarUrl.nullable().default(null),
    owner_pubkey: pubkey.nullable().default(null),
    last_epoch: unixSeconds.nullable().default(null),
    last_event_ts: unixSeconds.nullable().default(null),
    // Exports made before the count existed have none: such a group imports with 0.
    message_count: count.default(0),
    relays: relays.default([]),
    created_at: time,
    updated_at: time,
  }),
  keypackage: z.strictObject({
    type: z.literal('keypackage'),
    id: itemId,
    recipient: pubkey,
    sender: pubkey,
    content_b64: artifact(maxArtifactBytes),
    tags: tags.nullable().default(null),
    created_at: time,
    expires_at: time,
    picked_up_at: time.nullable().default(null),
  }),
  welcome: z.strictObject({
    type: z.literal('welcome'),
    id: itemId,
    recipient: pubkey,
    sender: pubkey,
    group_id: groupId,
    welcome_b64: artifact(maxArtifactBytes),
    ratchet_tree_b64: artifact(maxArtifactBytes).nullable().default(null),
    created_at: time,
    expires_at: time,
    picked_up_at: time.nullable().default(null),
  }),
  dm_hint: z.strictObject({
    type: z.literal('dm_hint'),
    event_id: hex64,
    recipient: pubkey,
    sender: pubkey,
    event_created_at: unixSeconds,
    received_at: time,
    expires_at: time,
  }),
})

/** A line read: a record, a line to pass over (blank, or the header of a concatenated export), or why it is invalid. */
export type ParsedLine = { ok: true; record: MailboxRecord } | { ok: true; record: undefined } | { ok: false; reason: string }

/** Parses and validates one line after the header. Never echoes the line's content. */
export const parseLine = (line: string, schemas: Record<RecordType, z.ZodType<MailboxRecord>>): ParsedLine => {
  if (line.trim() === '') return { ok: true, record: undefined }
  const value = parseJson(line)
  if (value === undefined) return { ok: false, reason: 'not JSON' }
  if (!isObject(value)) return { ok: false, reason: 'not a JSON object' }
  if (value.type === 'header') {
    const problem = headerProblem(value)
    return problem ? { ok: false, reason: `header: ${problem}` } : { ok: true, record: undefined }
  }
  const schema = typeof value.type === 'string' && Object.hasOwn(schemas, value.type) ? schemas[value.type as RecordType] : undefined
  if (!schema) return { ok: false, reason: value.type === undefined ? 'no type' : `unknown type ${JSON.stringify(value.type).slice(0, 40)}` }
  const parsed = schema.safeParse(value)
  return parsed.success ? { ok: true, record: parsed.data } : { ok: false, reason: `${String(value.type)}: ${problems(parsed.error).join('; ')}` }
}

const parseJson = (text: string): unknown => {
  try {
    return JSON.parse(text) as unknown
  } catch {
    return undefined
  }
}

const isObject = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value)
