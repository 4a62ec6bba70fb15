// The mailbox API fuzzer (`fuzzMailbox`), run by the tool (fuzz.ts: `npm run fuzz -w services/mailbox-api`,
// 10,000 requests) and by `npm test` (fuzz.test.ts: a few thousand).
//
// The API runs as a child process on its embedded PostgreSQL (api-process.ts), with ADMIN_TOKEN,
// HINTS_PUSH_TOKEN and METRICS_AUTH set so that every route is live, and the janitor slowed to an hour so
// that nothing leaves the tables during the run. Eight keep-alive lanes send a seeded mix: every route with
// right and wrong methods; valid NIP-98 tokens and broken ones (u, method, payload, created_at, kind,
// signature, base64, replayed); bodies with wrong types, unknown fields, huge values, NUL, lone surrogates
// and invalid base64; path and query parameters with %00, %ED%A0%80 and very long values; admin and push
// routes with right and wrong tokens and malformed envelopes; and over raw sockets declared giant bodies,
// oversized headers, bad chunked framing and other requests Node's parser refuses. Checks: the process
// never exits; no 5xx; every answer is JSON (`{error:{code,message}}` from 400 up) except the text of
// /healthz, /readyz and /metrics and a 204; broken credentials never get a 2xx; and, read from PostgreSQL
// at the end, the mailboxes hold exactly the deposits answered 201 and not acknowledged, the group registry
// only groups an admin upsert or a well-formed hint created, the DM hints only well-formed hints'; the API's
// anonymous memory after forced garbage collections grows by at most `maxGrowthMiB` (memory.ts). Failures
// are reported by method, path and status (never bodies). Bounded: a fixed number of requests, loopback
// only, a time cap.
import { createHash } from 'node:crypto'
import { Agent, request, type IncomingHttpHeaders } from 'node:http'
import { connect } from 'node:net'
import { fileURLToPath } from 'node:url'
import pg from 'pg'
import {
  clip, Counter, Findings, fuzzRow, hostileText, isAlive, loadSigner, printFindings, sec, seededRandom, stopOnInterrupt,
  wrongValue, type Memory, type Random, type Signer, type Stopped,
} from '@msr/bench'
import { startApiProcess, type ApiProcess } from './api-process.js'
import { clientAddress } from './http-client.js'

/**
 * Default of `--max-growth-mib`: the API's anonymous RSS (after forced garbage collections) grew 38–48 MiB
 * in 2,500 requests and 50 MiB in 10,000 (15 MiB in 2,500 with MEASURED_MALLOC_ENV, as the fuzzer now runs
 * it), a plateau; 128 leaves room for noise (README, Reliability).
 */
export const DEFAULT_MAX_GROWTH_MIB = 128

/** The compiled CLI of this checkout. */
export const CLI = fileURLToPath(new URL('../src/cli.js', import.meta.url))
const LANES = 8
const TIMEOUT_MS = 20_000
const RAW_TIMEOUT_MS = 5_000
/** The API's per-IP and per-pubkey budgets (its defaults are 1200 and 600 per minute). */
const RATE_LIMIT = 1200
/** MAILBOX_MAX_ARTIFACT_BYTES by default, and the body limit derived from it (app.ts). */
const MAX_ARTIFACT = 262_144
const BODY_LIMIT = 2 * Math.ceil(MAX_ARTIFACT / 3) * 4 + 64 * 1024
const PUSH_LIMIT = 1024 * 1024
// The embedded server's fixed loopback credentials (src/db/database.ts; pg-stats.ts reads them too).
const EMBEDDED = { host: '127.0.0.1', user: 'postgres', password: 'embedded-mailbox', database: 'mailbox' }
const TEXT_ROUTES = /^\/(healthz|readyz|metrics)(\?|$)/

interface Key {
  secret: Buffer
  pubkey: string
}

/** What a 2xx answer to a request means for the tables, checked against PostgreSQL at the end. */
type Effect =
  | { deposit: 'keypackages' | 'welcomes' }
  | { ack: 'keypackages' | 'welcomes'; id: string }
  | { group: string }
  | { hint: { group?: string; dm?: string; wellFormed: boolean } }
  | { pickup: string }

/** One request: over the keep-alive client, or (`raw`) as bytes on a socket of its own. */
interface Req {
  /** Its category, for the report. */
  kind: string
  method: string
  path: string
  headers: Record<string, string>
  body?: Buffer
  /** NIP-98, signed just before sending (created_at is checked against now); `broken` spoils it. */
  nip98?: { key: Key; broken?: Breakage }
  /** Credentials are wrong: a 2xx is a failure. */
  mustRefuse?: boolean
  effect?: Effect
  /** Sent a second time with the same Authorization: that one must be refused (NIP-98 replay). */
  replay?: boolean
  raw?: { chunks: Buffer[]; answer: 'required' | 'optional'; endWrite?: boolean }
}

/** An answer (status 0: none, `error` says why). */
interface Res {
  status: number
  headers: IncomingHttpHeaders
  body: Buffer
  error?: string
}

/** What the generators draw from. */
interface Gen {
  random: Random
  signer: Signer
  keys: readonly Key[]
  publicUrl: string
  adminToken: string
  pushToken: string
  metricsKey: string
  /** Item ids a recipient may acknowledge (from pickups), by table and recipient. */
  items: Map<string, string[]>
  /** Next-page cursors seen, by table and recipient. */
  cursors: Map<string, string>
  /** Group ids an admin upsert or a hint created. */
  groups: string[]
  serial(): number
}

// ---------------------------------------------------------------------------------------------------
// NIP-98
// ---------------------------------------------------------------------------------------------------

const now = (): number => Math.floor(Date.now() / 1000)
const sha256 = (data: Buffer | string): string => createHash('sha256').update(data).digest('hex')

/** A NIP-98 event before it is encoded: what a breakage may change. */
interface Nip98Spec {
  key: Key
  url: string
  method: string
  payload: string | undefined
  createdAt: number
  kind: number
}

type Event = Record<string, unknown>

/** A way to spoil a NIP-98 header: before signing (spec), after signing (event), or in the encoding. */
interface Breakage {
  name: string
  spec?: (s: Nip98Spec, g: Gen) => void
  event?: (e: Event, g: Gen) => void
  encode?: (json: string, g: Gen) => string
  /** Breaks only a request with a body. */
  needsBody?: boolean
}

const signEvent = (signer: Signer, key: Key, t: { kind: number; tags: string[][]; content: string; created_at: number }): Event => {
  const id = sha256(JSON.stringify([0, key.pubkey, t.created_at, t.kind, t.tags, t.content]))
  return { id, pubkey: key.pubkey, created_at: t.created_at, kind: t.kind, tags: t.tags, content: t.content, sig: signer.sign(Buffer.from(id, 'hex'), key.secret) }
}

const flipHex = (hex: unknown): string => {
  const text = String(hex)
  return text.slice(0, -1) + (text.endsWith('0') ? '1' : '0')
}

/** Replaces a field by a value of another type (drawn again while it serializes as the old one, e.g. '' for '' content). */
const replaceField = (e: Event, field: string, g: Gen): void => {
  const old = JSON.stringify(e[field])
  do e[field] = wrongValue(g.random)
  while (JSON.stringify(e[field]) === old)
}

const BREAKAGES: Breakage[] = [
  { name: 'u: other path', spec: s => void (s.url = s.url.replace(/\/[^/?]*(\?|$)/, '/other$1')) },
  { name: 'u: without query', spec: s => void (s.url = s.url.replace(/\?.*$/, '') + (s.url.includes('?') ? '' : '?x=1')) },
  { name: 'u: other origin', spec: (s, g) => void (s.url = s.url.replace(/^http:\/\/[^/]+/, g.random.pick(['https://127.0.0.1', 'http://localhost', 'http://127.0.0.1:1', 'HTTP://127.0.0.1']))) },
  { name: 'u: trailing slash', spec: s => void (s.url = `${s.url}/`) },
  { name: 'u: hostile', spec: (s, g) => void (s.url = `${s.url}${hostileText(g.random, 300)}`) },
  { name: 'method', spec: (s, g) => void (s.method = g.random.pick(['GET', 'POST', 'PUT', 'DELETE', '', 'POST ', 'GET\0'].filter(m => m !== s.method.toUpperCase()))) },
  { name: 'payload: wrong hash', spec: (s, g) => void (s.payload = g.random.hex(32)) },
  { name: 'payload: missing', spec: s => void (s.payload = undefined), needsBody: true },
  { name: 'payload: uppercase', spec: s => void (s.payload = s.payload?.toUpperCase() ?? 'A'.repeat(64)) },
  { name: 'created_at', spec: (s, g) => void (s.createdAt = now() + g.random.pick([-61, 61, -3600, 86_400])) },
  { name: 'created_at out of range', event: (e, g) => void (e.created_at = g.random.pick([-1, 2 ** 32, 1e21, 1.5, '1'])) },
  { name: 'kind', spec: (s, g) => void (s.kind = g.random.pick([1, 22242, 27234, 0])) },
  { name: 'signature', event: e => void (e.sig = flipHex(e.sig)) },
  { name: 'signature of another key', event: (e, g) => void ((e.pubkey = g.random.pick(g.keys.filter(k => k.pubkey !== e.pubkey)).pubkey), (e.id = sha256(JSON.stringify([0, e.pubkey, e.created_at, e.kind, e.tags, e.content])))) },
  { name: 'id', event: e => void (e.id = flipHex(e.id)) },
  { name: 'extra field', event: (e, g) => void (e[g.random.pick(['extra', 'ID', 'relay'])] = wrongValue(g.random)) },
  { name: 'field of a wrong type', event: (e, g) => void replaceField(e, g.random.pick(['id', 'pubkey', 'sig', 'kind', 'tags', 'content']), g) },
  { name: 'bad base64', encode: (_json, g) => `Nostr ${g.random.pick(['!!!!', 'abc', '====', 'YQ', '%00', 'Zm9v\tYmFy', '😀'])}` },
  { name: 'base64 of not JSON', encode: (_json, g) => `Nostr ${Buffer.from(g.random.pick(['nope', '[1,2]', 'null', '{"id":', '\ud800'])).toString('base64')}` },
  { name: 'scheme', encode: (json, g) => `${g.random.pick(['Bearer', 'Nostr:', '', 'Basic', 'Nostr98', 'Nost'])} ${Buffer.from(json).toString('base64')}` },
  { name: 'missing', encode: () => '' },
  { name: 'huge', encode: json => `Nostr ${'A'.repeat(12_000)}${Buffer.from(json).toString('base64')}` },
]

/** The Authorization header of a request, signed now (broken as `broken` says). */
const nip98Header = (g: Gen, req: Req, key: Key, broken?: Breakage): string => {
  const spec: Nip98Spec = {
    key,
    url: g.publicUrl + req.path,
    method: req.method,
    payload: req.body && req.body.length > 0 ? sha256(req.body) : undefined,
    createdAt: now(),
    kind: 27235,
  }
  broken?.spec?.(spec, g)
  const tags = [['u', spec.url], ['method', spec.method], ...(spec.payload === undefined ? [] : [['payload', spec.payload]])]
  const event = signEvent(g.signer, key, { kind: spec.kind, tags, content: '', created_at: spec.createdAt })
  broken?.event?.(event, g)
  const json = JSON.stringify(event)
  return broken?.encode ? broken.encode(json, g) : `Nostr ${Buffer.from(json).toString('base64')}`
}

// ---------------------------------------------------------------------------------------------------
// Request generators
// ---------------------------------------------------------------------------------------------------

const jsonBody = (value: unknown): { body: Buffer; headers: Record<string, string> } => ({
  body: Buffer.from(JSON.stringify(value)),
  headers: { 'Content-Type': 'application/json' },
})

/** Valid padded base64 whose bytes are unique to this run's request. */
const artifact = (g: Gen): string => Buffer.from(`fz:${g.serial()}:${g.random.hex(6)}`).toString('base64')
const recipient = (g: Gen): Key => g.random.pick(g.keys.slice(0, 4))
const sender = (g: Gen): Key => g.random.pick(g.keys)
const uuid = (g: Gen): string => {
  const h = g.random.hex(16)
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-a${h.slice(17, 20)}-${h.slice(20, 32)}`
}
const itemKey = (table: string, pubkey: string): string => `${table}:${pubkey}`

/** Hostile values of path and query parameters, already percent-encoded. */
const ENCODED = ['%00', '%ED%A0%80', '%E0%A4%A', '%ZZ', '%', '%C0%80', '%FF', '..%2F..%2Fhealthz', 'a%2Fb', '%F0%9F%98%80', '%20', '+', '%C3%A9', '%0D%0ASet-Cookie:x=1']
const encoded = (g: Gen): string =>
  g.random.weighted<() => string>([
    [4, () => g.random.pick(ENCODED)],
    [1, () => 'x'.repeat(g.random.pick([64, 65, 256, 257, 4000, 8000]))],
    [1, () => encodeURIComponent(hostileText(g.random, 300).replace(/[\ud800-\udfff]/g, 'x'))],
  ])()

/** A deposit body, then (mostly) one thing wrong with it. */
const DEPOSIT_MUTATIONS: Array<[string, (b: Record<string, unknown>, g: Gen, artifactField: string) => void]> = [
  ['recipient', (b, g) => void (b.recipient = g.random.pick([String(b.recipient).toUpperCase(), String(b.recipient).slice(1), 'npub1xyz', wrongValue(g.random), hostileText(g.random, 200)]))],
  ['sender of another', (b, g) => void (b.sender = g.random.pick(g.keys).pubkey)],
  ['sender wrong type', (b, g) => void (b.sender = wrongValue(g.random))],
  ['artifact not base64', (b, g, f) => void (b[f] = g.random.pick(['abc', '====', 'YWJj\n', 'YW Jj', '-_-_', 'é', '\0', '\ud800', 'YWJj====', '', 'YQ=', 'Y===']))],
  ['artifact over the cap', (b, _g, f) => void (b[f] = 'A'.repeat(349_528))],
  ['artifact at the cap', (b, _g, f) => void (b[f] = `${'A'.repeat(349_524)}AA==`)],
  ['artifact over the body limit', (b, _g, f) => void (b[f] = 'A'.repeat(BODY_LIMIT + 4))],
  ['artifact wrong type', (b, g, f) => void (b[f] = wrongValue(g.random))],
  ['ttl_seconds', (b, g) => void (b.ttl_seconds = g.random.pick([0, -1, 1.5, '60', 1e12, 2 ** 53, 1e308, null, 2_592_000, 2_592_001, 1]))],
  ['tags', (b, g) => void (b.tags = g.random.pick([wrongValue(g.random), Array.from({ length: 65 }, () => ['t']), [Array.from({ length: 17 }, () => 'v')], [['x'.repeat(1025)]], [['\0']], [['\ud800']], [[]], []]))],
  ['unknown field', (b, g) => void Object.defineProperty(b, g.random.pick(['extra', '__proto__', 'constructor', 'toString', 'Recipient', 'id', 'created_at']), { value: wrongValue(g.random), enumerable: true, writable: true, configurable: true })],
  ['group_id', (b, g) => void (b.group_id = g.random.pick(['', 'x'.repeat(257), 'g\0', '\ud800', wrongValue(g.random), hostileText(g.random, 256)]))],
  ['ratchet_tree_b64', (b, g) => void (b.ratchet_tree_b64 = g.random.pick(['abc', '', wrongValue(g.random), 'A'.repeat(349_528)]))],
  ['missing field', (b, g) => void delete b[g.random.pick(['recipient', 'content_b64', 'welcome_b64', 'group_id'])]],
]

const depositBody = (g: Gen, table: 'keypackages' | 'welcomes', to: Key): Record<string, unknown> => {
  const ttl = g.random.chance(0.2) ? { ttl_seconds: g.random.pick([60, 3600, 86_400]) } : {}
  if (table === 'keypackages') return { recipient: to.pubkey, content_b64: artifact(g), ...(g.random.chance(0.5) && { tags: [['mls_protocol_version', '1.0']] }), ...ttl }
  return { recipient: to.pubkey, group_id: `group-${g.random.hex(4)}`, welcome_b64: artifact(g), ...(g.random.chance(0.3) && { ratchet_tree_b64: artifact(g) }), ...ttl }
}

const deposit = (g: Gen): Req => {
  const table = g.random.pick(['keypackages', 'welcomes'] as const)
  const from = sender(g)
  const body = depositBody(g, table, recipient(g))
  const field = table === 'keypackages' ? 'content_b64' : 'welcome_b64'
  let name = 'valid'
  if (g.random.chance(0.6)) {
    const [mutation, apply] = g.random.pick(DEPOSIT_MUTATIONS)
    apply(body, g, field)
    name = mutation
  }
  if (body.sender === undefined && g.random.chance(0.1)) body.sender = from.pubkey
  const raw = g.random.chance(0.05) ? rawJson(g, body) : undefined
  const { headers, body: bytes } = raw ?? jsonBody(body)
  return { kind: `deposit: ${name}`, method: 'POST', path: `/api/v1/${table === 'keypackages' ? 'keypackages' : 'welcome'}`, headers, body: bytes, nip98: { key: from }, effect: { deposit: table } }
}

/** A body as text JSON.stringify would not write: a whole body of the wrong type, duplicate keys, deep nesting, a BOM. */
const rawJson = (g: Gen, body: Record<string, unknown>): { body: Buffer; headers: Record<string, string> } => {
  const text = JSON.stringify(body)
  const variants = [
    () => JSON.stringify(wrongValue(g.random)),
    () => text.replace(/^\{/, '{"recipient":"x",'),
    () => `{"recipient":${'['.repeat(20_000)}${']'.repeat(20_000)}}`,
    () => `\ufeff${text}`,
    () => text.slice(0, g.random.below(text.length)),
    () => `${text}${text}`,
    () => '',
  ]
  return { body: Buffer.from(g.random.pick(variants)()), headers: { 'Content-Type': 'application/json' } }
}

/** A request of a user route with a broken NIP-98 header: must be refused. */
const brokenAuth = (g: Gen): Req => {
  const broken = g.random.pick(BREAKAGES)
  const base = (broken.needsBody ? deposit : g.random.pick([deposit, pickup, ack, groupGet, dmHints]))(g)
  return { ...base, kind: `nip98 broken: ${broken.name}`, nip98: { key: base.nip98?.key ?? sender(g), broken }, mustRefuse: true }
}

/** The same request twice with one Authorization: the second must be refused. */
const replayed = (g: Gen): Req => ({ ...g.random.pick([deposit, pickup, dmHints])(g), kind: 'nip98 replayed', replay: true })

const pickupQuery = (g: Gen, table: string, who: Key): string => {
  const parts = [`recipient=${who.pubkey}`]
  const cursor = g.cursors.get(itemKey(table, who.pubkey))
  if (g.random.chance(0.5)) parts.push(`limit=${g.random.pick(['1', '50', '100', '0', '101', 'abc', '1e2', '-1', '%205', ''])}`)
  if (cursor && g.random.chance(0.3)) parts.push(`cursor=${cursor}`)
  if (g.random.chance(0.3)) {
    const junk = [`cursor=${encoded(g)}`, `cursor=${Buffer.from(g.random.pick(['s:99999999999999999999', 's:-1', 's:1', 'x'])).toString('base64url')}`, `recipient=${encoded(g)}`, `${encoded(g)}=1`, 'recipient=a&recipient=b', 'since=1', `limit=${encoded(g)}`]
    parts.push(g.random.pick(junk))
  }
  return parts.join('&')
}

const pickup = (g: Gen): Req => {
  const table = g.random.pick(['keypackages', 'welcomes'])
  const who = recipient(g)
  const asOther = g.random.chance(0.1)
  return {
    kind: asOther ? 'pickup: of another' : 'pickup',
    method: 'GET',
    path: `/api/v1/${table === 'keypackages' ? 'keypackages' : 'welcome'}?${pickupQuery(g, table, who)}`,
    headers: {},
    nip98: { key: asOther ? g.keys[(g.keys.indexOf(who) + 1) % g.keys.length] as Key : who },
    effect: { pickup: itemKey(table, who.pubkey) },
  }
}

const ack = (g: Gen): Req => {
  const table = g.random.pick(['keypackages', 'welcomes'] as const)
  const who = recipient(g)
  const mine = g.items.get(itemKey(table, who.pubkey)) ?? []
  const id = mine.length > 0 && g.random.chance(0.6) ? (mine.splice(g.random.below(mine.length), 1)[0] as string) : g.random.chance(0.5) ? uuid(g) : encoded(g)
  const bodyCase = g.random.pick([undefined, undefined, '{}', '{"a":1}', '[]', 'null', '""'])
  return {
    kind: `ack${bodyCase ? ' with a body' : ''}`,
    method: 'POST',
    path: `/api/v1/${table === 'keypackages' ? 'keypackages' : 'welcome'}/${id}/ack`,
    headers: bodyCase ? { 'Content-Type': 'application/json' } : {},
    ...(bodyCase && { body: Buffer.from(bodyCase) }),
    nip98: { key: g.random.chance(0.9) ? who : sender(g) },
    effect: { ack: table, id },
  }
}

const groupGet = (g: Gen): Req => {
  const id = g.groups.length > 0 && g.random.chance(0.4) ? encodeURIComponent(g.random.pick(g.groups)) : g.random.chance(0.3) ? 'group-a' : encoded(g)
  return { kind: 'group get', method: 'GET', path: `/api/v1/groups/${id}`, headers: {}, nip98: { key: sender(g) } }
}

const dmHints = (g: Gen): Req => {
  const who = recipient(g)
  const extra = g.random.pick(['', `&since=${g.random.pick(['0', '-1', 'abc', '99999999999', '1.5'])}`, `&limit=${g.random.pick(['0', '500', '501'])}`, `&cursor=${encoded(g)}`, `&${encoded(g)}=x`])
  return { kind: 'dm-hints', method: 'GET', path: `/api/v1/dm-hints?recipient=${g.random.chance(0.9) ? who.pubkey : encoded(g)}${extra}`, headers: {}, nip98: { key: g.random.chance(0.9) ? who : sender(g) } }
}

/** `Authorization` for the admin routes: right (some spellings the API accepts), or wrong. */
const adminAuth = (g: Gen): { header: string | undefined; right: boolean } => {
  const t = g.adminToken
  const header = g.random.weighted<string | undefined>([
    [6, `Bearer ${t}`],
    [1, `bearer ${t}`],
    [1, `Bearer   ${t}  `],
    [1, `Bearer ${t}x`],
    [1, `Bearer ${t.slice(0, -1)}`],
    [1, t],
    [1, `Basic ${Buffer.from(`admin:${t}`).toString('base64')}`],
    [1, 'Bearer '],
    [1, undefined],
    [1, `Bearer ${hostileText(g.random, 100).replace(/[^\x20-\x7e]/g, 'x')}`],
  ])
  return { header, right: /^Bearer\s+(.+)$/i.exec(header ?? '')?.[1]?.trim() === t }
}

const GROUP_MUTATIONS: Array<(b: Record<string, unknown>, g: Gen) => void> = [
  (b, g) => void (b.group_id = g.random.pick(['', 'x'.repeat(257), 'g\0x', '\ud800', wrongValue(g.random), `fz-adm-${hostileText(g.random, 200)}`])),
  (b, g) => void (b.display_name = g.random.pick(['name', '\0', '\ud800', 'x'.repeat(257), null, wrongValue(g.random)])),
  (b, g) => void (b.avatar_url = g.random.pick(['https://example.com/a.png', 'javascript:alert(1)', 'not a url', 'http://[::1', '', null, `https://x/${'a'.repeat(2100)}`, 'https://x/\0'])),
  (b, g) => void (b.owner_pubkey = g.random.pick([g.random.pick(g.keys).pubkey, 'npub1', 'x', null, wrongValue(g.random)])),
  (b, g) => void (b.relays = g.random.pick([['wss://r.example'], ['http://x'], Array.from({ length: 17 }, () => 'wss://r'), ['wss://\0'], 'wss://x', [wrongValue(g.random)]])),
  (b, g) => void (b[g.random.pick(['extra', 'last_epoch', 'created_at', '__proto__'])] = wrongValue(g.random)),
]

const admin = (g: Gen): Req => {
  const { header, right } = adminAuth(g)
  const headers: Record<string, string> = header === undefined ? {} : { Authorization: header }
  if (g.random.chance(0.4)) {
    const query = g.random.pick(['', '?limit=1', '?limit=500', '?limit=501', '?limit=0', `?cursor=${encoded(g)}`, `?limit=${encoded(g)}`, `?${encoded(g)}=1`])
    return { kind: 'admin list', method: 'GET', path: `/api/v1/groups${query}`, headers, mustRefuse: !right }
  }
  const body: Record<string, unknown> = { group_id: `fz-adm-${g.serial()}` }
  if (g.random.chance(0.7)) g.random.pick(GROUP_MUTATIONS)(body, g)
  const { body: bytes, headers: json } = jsonBody(body)
  return { kind: 'admin upsert', method: 'POST', path: '/api/v1/groups', headers: { ...headers, ...json }, body: bytes, mustRefuse: !right, ...(typeof body.group_id === 'string' && { effect: { group: body.group_id } }) }
}

/** A routing hint, well-formed or not (a malformed one's group starts with `fz-bad-`, so the database check can find it). */
const hint = (g: Gen): { value: unknown; group?: string; dm?: string; wellFormed: boolean } => {
  const base = { v: 1, id: g.random.hex(32), pubkey: g.random.pick(g.keys).pubkey, created_at: now() }
  if (g.random.chance(0.5)) {
    const group = `fz-hint-${g.serial()}`
    return { value: { ...base, kind: 445, group, epoch: g.random.between(0, 1000) }, group, wellFormed: true }
  }
  if (g.random.chance(0.5)) return { value: { ...base, kind: 446, recipients: [recipient(g).pubkey] }, dm: base.id, wellFormed: true }
  const group = `fz-bad-${g.serial()}${g.random.pick(['\0', '\ud800', 'x'.repeat(256)])}`
  const bad = g.random.pick<Record<string, unknown>>([
    { ...base, kind: 445, group },
    { ...base, kind: 445, group, recipients: [base.pubkey] },
    { ...base, kind: 446, recipients: [] },
    { ...base, kind: 446, recipients: Array.from({ length: 65 }, () => base.pubkey) },
    { ...base, kind: 1, group },
    { ...base, v: 2, kind: 445, group },
    { ...base, kind: 445, group, epoch: 2 ** 53 },
    { ...base, kind: 445, group, created_at: -1 },
    { ...base, kind: 445, group, extra: 1 },
  ])
  return { value: bad, group, wellFormed: false }
}

/** A push envelope around a hint, or something that is not one. */
const envelope = (g: Gen, h: ReturnType<typeof hint>): Buffer => {
  const data = Buffer.from(JSON.stringify(h.value)).toString('base64')
  const message = { data, messageId: String(g.serial()), publishTime: new Date().toISOString() }
  const shapes: Array<[number, () => unknown]> = [
    [8, () => ({ message, subscription: 'projects/p/subscriptions/s' })],
    [1, () => ({ message: { ...message, data: g.random.pick(['!!!', '', 'e30', Buffer.from('not json').toString('base64')]) } })],
    [1, () => ({ message: { ...message, attributes: wrongValue(g.random) } })],
    [1, () => ({ message: wrongValue(g.random) })],
    [1, () => wrongValue(g.random)],
    [1, () => ({ message: { ...message, data: Buffer.from('x'.repeat(900_000)).toString('base64') } })],
  ]
  const value = g.random.weighted(shapes)()
  return g.random.chance(0.05) ? Buffer.from(g.random.pick(['not json', '', '{"message":', '\0'])) : Buffer.from(JSON.stringify(value) ?? '')
}

const push = (g: Gen): Req => {
  const h = hint(g)
  const body = envelope(g, h)
  const how = g.random.weighted<'bearer' | 'query' | 'wrong' | 'none' | 'jwt'>([[6, 'bearer'], [2, 'query'], [2, 'wrong'], [1, 'none'], [1, 'jwt']])
  const headers: Record<string, string> = { 'Content-Type': g.random.pick(['application/json', 'application/json', 'text/plain', 'application/octet-stream']) }
  if (how === 'bearer') headers.Authorization = `Bearer ${g.pushToken}`
  if (how === 'wrong') headers.Authorization = g.random.pick([`Bearer ${g.pushToken}x`, 'Bearer x', `Bearer ${g.pushToken} extra`, g.pushToken])
  if (how === 'jwt') headers.Authorization = `Bearer ${g.random.pick(['a.b.c', 'eyJhbGciOiJub25lIn0.eyJlbWFpbCI6IngifQ.', '..'])}`
  const query = how === 'query' ? `?token=${encodeURIComponent(g.pushToken)}` : how === 'wrong' && g.random.chance(0.3) ? `?token=${encoded(g)}` : ''
  const right = how === 'bearer' || how === 'query'
  return { kind: `push: ${how}`, method: 'POST', path: `/internal/pubsub/push${query}`, headers, body, mustRefuse: !right, effect: { hint: { group: h.group, dm: h.dm, wellFormed: h.wellFormed } } }
}

const ROUTES: Array<{ path: (g: Gen) => string; methods: string[]; auth: 'nip98' | 'admin' | 'push' | 'none' }> = [
  { path: () => '/api/v1/keypackages', methods: ['GET', 'POST'], auth: 'nip98' },
  { path: () => '/api/v1/welcome', methods: ['GET', 'POST'], auth: 'nip98' },
  { path: g => `/api/v1/keypackages/${uuid(g)}/ack`, methods: ['POST'], auth: 'nip98' },
  { path: g => `/api/v1/welcome/${uuid(g)}/ack`, methods: ['POST'], auth: 'nip98' },
  { path: () => '/api/v1/dm-hints', methods: ['GET'], auth: 'nip98' },
  { path: () => '/api/v1/groups/group-a', methods: ['GET'], auth: 'nip98' },
  { path: () => '/api/v1/groups', methods: ['GET', 'POST'], auth: 'admin' },
  { path: () => '/internal/pubsub/push', methods: ['POST'], auth: 'push' },
  { path: () => '/healthz', methods: ['GET'], auth: 'none' },
  { path: () => '/readyz', methods: ['GET'], auth: 'none' },
  { path: () => '/metrics', methods: ['GET'], auth: 'none' },
  { path: () => '/api/v1/openapi.json', methods: ['GET'], auth: 'none' },
]

/** A route with a method it does not serve (with the credentials it would take, half the time). */
const wrongMethod = (g: Gen): Req => {
  const route = g.random.pick(ROUTES)
  const method = g.random.pick(['GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'HEAD', 'PROPFIND', 'FOO'].filter(m => !route.methods.includes(m)))
  // HEAD is served by GET routes, and OPTIONS only lists methods: neither may be refused.
  const served = method === 'OPTIONS' || (method === 'HEAD' && route.methods.includes('GET'))
  const req: Req = { kind: `wrong method: ${method}`, method, path: route.path(g), headers: {}, mustRefuse: !served }
  if (g.random.chance(0.5)) {
    if (route.auth === 'nip98') req.nip98 = { key: sender(g) }
    if (route.auth === 'admin') req.headers.Authorization = `Bearer ${g.adminToken}`
    if (route.auth === 'push') req.headers.Authorization = `Bearer ${g.pushToken}`
  }
  if (g.random.chance(0.3) && method !== 'HEAD') Object.assign(req, jsonBody({ a: 1 }))
  return req
}

/** Paths: the public ones, the unknown, the long, the badly encoded. */
const otherPath = (g: Gen): Req => {
  const paths = [
    '/', '/healthz', '/readyz', '/metrics', `/metrics?auth=${g.metricsKey}`, `/metrics?auth=${encoded(g)}`, '/api/v1/openapi.json', '/api/v1', '/api/v1/', '/api/v2/x',
    '/api/v1/keypackages/', '//api/v1/keypackages', '/api/v1/../healthz', `/${encoded(g)}`, `/api/v1/groups/${encoded(g)}`, `/api/v1/keypackages/${encoded(g)}/ack`,
    `/api/v1/${'a'.repeat(g.random.pick([1000, 8000]))}`, `/healthz?${Array.from({ length: 1000 }, (_, i) => `p${i}=1`).join('&')}`, '/api/v1/openapi.json?x=%00', '/*',
  ]
  const path = g.random.pick(paths)
  const headers: Record<string, string> = path === '/metrics' && g.random.chance(0.5) ? { Authorization: g.random.pick([`Bearer ${g.metricsKey}`, 'Bearer wrong']) } : {}
  return { kind: 'path', method: g.random.pick(['GET', 'GET', 'HEAD']), path, headers }
}

/** A valid deposit with a content type or encoding the API does not read. */
const contentType = (g: Gen): Req => {
  const base = deposit(g)
  const variants: Array<Record<string, string>> = [
    {},
    { 'Content-Type': 'text/plain' },
    { 'Content-Type': 'application/json; charset=latin1' },
    { 'Content-Type': 'application/json; charset=utf-16' },
    { 'Content-Type': 'application/x-www-form-urlencoded' },
    { 'Content-Type': 'application/vnd.api+json' },
    { 'Content-Type': 'application/json', 'Content-Encoding': g.random.pick(['gzip', 'deflate', 'br', 'identity', 'x-unknown']) },
    { 'Content-Type': 'multipart/form-data; boundary=x' },
  ]
  const headers = g.random.pick(variants)
  return { ...base, kind: `content type: ${Object.values(headers).join(' + ') || 'none'}`, headers }
}

const rawRequest = (kind: string, text: string | Buffer[], answer: 'required' | 'optional' = 'required', endWrite = false): Req => ({
  kind: `raw: ${kind}`,
  method: 'RAW',
  path: kind,
  headers: {},
  raw: { chunks: typeof text === 'string' ? [Buffer.from(text, 'latin1')] : text, answer, endWrite },
})

const H = 'Host: 127.0.0.1\r\n'
const CLOSE = 'Connection: close\r\n'

/** What Node's HTTP parser or the body-size guard refuses, sent as bytes. */
const raw = (g: Gen): Req => {
  const post = (path: string, headers: string, body = '{}') => `POST ${path} HTTP/1.1\r\n${H}${CLOSE}${headers}\r\n${body}`
  const cases: Array<() => Req> = [
    () => rawRequest('declared huge Content-Length', post('/api/v1/keypackages', `Content-Type: application/json\r\nContent-Length: ${g.random.pick([BODY_LIMIT + 1, 1e9, 2 ** 53])}\r\n`)),
    () => rawRequest('declared huge Content-Length (push)', post('/internal/pubsub/push', `Authorization: Bearer ${g.pushToken}\r\nContent-Length: ${PUSH_LIMIT + 1}\r\n`)),
    () => rawRequest('Content-Length not a number', post('/api/v1/keypackages', `Content-Length: ${g.random.pick(['abc', '-1', '1e3', '1, 2', '0x10', ' '])}\r\n`)),
    () => rawRequest('two Content-Lengths', post('/api/v1/keypackages', 'Content-Length: 2\r\nContent-Length: 3\r\n')),
    () => rawRequest('oversized header', `GET /healthz HTTP/1.1\r\n${H}${CLOSE}X-Big: ${'a'.repeat(g.random.pick([17_000, 40_000]))}\r\n\r\n`),
    () => rawRequest('many headers', `GET /healthz HTTP/1.1\r\n${H}${CLOSE}${'X-N: v\r\n'.repeat(3000)}\r\n`),
    () => rawRequest('long request line', `GET /api/v1/${'a'.repeat(20_000)} HTTP/1.1\r\n${H}${CLOSE}\r\n`),
    () => rawRequest('bad chunk size', post('/api/v1/keypackages', 'Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n', 'zz\r\nabc\r\n0\r\n\r\n')),
    () => rawRequest('chunk size overflow', post('/api/v1/keypackages', 'Transfer-Encoding: chunked\r\n', 'fffffffffffffffffffff\r\nx\r\n0\r\n\r\n')),
    () => rawRequest('chunk extensions overflow', post('/api/v1/keypackages', 'Transfer-Encoding: chunked\r\n', `1;${'a=b;'.repeat(5000)}\r\nx\r\n0\r\n\r\n`)),
    () => rawRequest('chunk without CRLF', post('/internal/pubsub/push', `Authorization: Bearer ${g.pushToken}\r\nTransfer-Encoding: chunked\r\n`, '2\r\n{}0\r\n\r\n')),
    () => rawRequest('Content-Length and Transfer-Encoding', post('/api/v1/keypackages', 'Content-Length: 5\r\nTransfer-Encoding: chunked\r\n', '0\r\n\r\n')),
    () => rawRequest('Transfer-Encoding not chunked last', post('/api/v1/keypackages', `Transfer-Encoding: ${g.random.pick(['chunked, gzip', 'gzip', 'chunked, identity', 'xchunked'])}\r\n`, '0\r\n\r\n')),
    () => rawRequest('obs-fold header', `GET /healthz HTTP/1.1\r\n${H}${CLOSE}X-A: a\r\n b\r\n\r\n`),
    () => rawRequest('header name with a space', `GET /healthz HTTP/1.1\r\n${H}${CLOSE}Bad Header: x\r\n\r\n`),
    () => rawRequest('NUL in a header', `GET /healthz HTTP/1.1\r\n${H}${CLOSE}X-A: a\0b\r\n\r\n`),
    () => rawRequest('space before colon', `GET /healthz HTTP/1.1\r\nHost : x\r\n${CLOSE}\r\n`),
    () => rawRequest('garbage request line', `${g.random.bytes(g.random.between(1, 200)).toString('latin1')}\r\n\r\n`),
    () => rawRequest('lowercase method', `get /healthz HTTP/1.1\r\n${H}${CLOSE}\r\n`),
    () => rawRequest('HTTP/2 preface', 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'),
    () => rawRequest('no Host header', `GET /api/v1/openapi.json HTTP/1.1\r\n${CLOSE}\r\n`),
    () => rawRequest('absolute-form target', `GET http://evil.example/api/v1/openapi.json HTTP/1.1\r\n${H}${CLOSE}\r\n`),
    () => rawRequest('HTTP/1.0', 'GET /api/v1/openapi.json HTTP/1.0\r\n\r\n'),
    () => rawRequest('HTTP/9.9', `GET /healthz HTTP/9.9\r\n${H}${CLOSE}\r\n`),
    () => rawRequest('bare LF', `GET /healthz HTTP/1.1\n${H.trim()}\n${CLOSE.trim()}\n\n`),
    () => rawRequest('raw UTF-8 and NUL in the path', [Buffer.from('GET /api/v1/groups/'), Buffer.from([0xed, 0xa0, 0x80, 0x00, 0xff]), Buffer.from(` HTTP/1.1\r\n${H}${CLOSE}\r\n`)]),
    () => rawRequest('truncated body, then half-close', post('/api/v1/keypackages', 'Content-Type: application/json\r\nContent-Length: 100\r\n', '{"a":'), 'optional', true),
    () => rawRequest('pipelined', `GET /healthz HTTP/1.1\r\n${H}\r\nGET /nope HTTP/1.1\r\n${H}\r\nGET /x HTTP/1.1\r\n${H}${CLOSE}Content-Length: z\r\n\r\n`),
  ]
  return g.random.pick(cases)()
}

/** The mix, by weight. */
const GENERATORS: ReadonlyArray<readonly [number, (g: Gen) => Req]> = [
  [12, deposit],
  [12, brokenAuth],
  [3, replayed],
  [8, pickup],
  [6, ack],
  [4, groupGet],
  [4, dmHints],
  [8, admin],
  [9, push],
  [7, wrongMethod],
  [6, otherPath],
  [5, contentType],
  [6, raw],
]

// ---------------------------------------------------------------------------------------------------
// Sending
// ---------------------------------------------------------------------------------------------------

/**
 * Sends one request. A keep-alive socket the server closed while it sat idle fails at once with ECONNRESET
 * before the server saw anything (Node's documented race): that one attempt is repeated on a new socket.
 */
const send = async (agent: Agent, port: number, req: Req, headers: Record<string, string>): Promise<Res> => {
  const first = await sendOnce(agent, port, req, headers)
  return first.error === 'ECONNRESET (reused socket)' ? sendOnce(agent, port, req, headers) : first
}

const sendOnce = (agent: Agent, port: number, req: Req, headers: Record<string, string>): Promise<Res> =>
  new Promise(resolve => {
    const failed = (error: Error) => resolve({ status: 0, headers: {}, body: Buffer.alloc(0), error: (error as { code?: string }).code ?? error.message })
    let outgoing: ReturnType<typeof request>
    try {
      outgoing = request({ host: '127.0.0.1', port, method: req.method, path: req.path, agent, headers, timeout: TIMEOUT_MS }, res => {
        const chunks: Buffer[] = []
        res.on('data', (chunk: Buffer) => chunks.push(chunk))
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }))
        res.on('error', failed)
      })
    } catch (error) {
      return resolve({ status: -1, headers: {}, body: Buffer.alloc(0), error: (error as Error).message })
    }
    outgoing.on('error', error => {
      const reset = (error as { code?: string }).code === 'ECONNRESET' && outgoing.reusedSocket
      failed(reset ? new Error('ECONNRESET (reused socket)') : error)
    })
    outgoing.on('timeout', () => outgoing.destroy(new Error(`no answer within ${TIMEOUT_MS / 1000} s`)))
    outgoing.end(req.body)
  })

/** Responses parsed from a raw socket's bytes (Content-Length or chunked bodies, else to the end). */
const parseResponses = (data: Buffer): Res[] => {
  const out: Res[] = []
  let at = 0
  while (at < data.length) {
    const headEnd = data.indexOf('\r\n\r\n', at)
    if (headEnd < 0) break
    const [statusLine = '', ...lines] = data.toString('latin1', at, headEnd).split('\r\n')
    const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(statusLine)?.[1] ?? 0)
    const headers: IncomingHttpHeaders = {}
    for (const line of lines) {
      const colon = line.indexOf(':')
      if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim()
    }
    const length = headers['content-length'] === undefined ? data.length - headEnd - 4 : Number(headers['content-length'])
    out.push({ status, headers, body: data.subarray(headEnd + 4, headEnd + 4 + length) })
    at = headEnd + 4 + length
  }
  return out
}

/** Writes the bytes on a fresh socket; everything the server answers until it closes (or the time runs out). */
const sendRaw = (port: number, raw: NonNullable<Req['raw']>): Promise<{ responses: Res[]; closed: boolean }> =>
  new Promise(resolve => {
    const socket = connect({ host: '127.0.0.1', port })
    const chunks: Buffer[] = []
    const done = (closed: boolean) => {
      clearTimeout(timer)
      socket.destroy()
      resolve({ responses: parseResponses(Buffer.concat(chunks)), closed })
    }
    const timer = setTimeout(() => done(false), RAW_TIMEOUT_MS)
    socket.on('data', (chunk: Buffer) => chunks.push(chunk))
    socket.on('error', () => undefined)
    socket.on('close', () => done(true))
    socket.on('connect', () => {
      for (const chunk of raw.chunks) socket.write(chunk)
      if (raw.endWrite) socket.end()
    })
  })

// ---------------------------------------------------------------------------------------------------
// Checks
// ---------------------------------------------------------------------------------------------------

/** What a run reports into. */
interface RunState {
  findings: Findings
  kinds: Counter
  statuses: Counter
  raw: Counter
  /** Item ids answered 201, by table; ids acknowledged (200). */
  deposited: Map<string, Set<string>>
  acked: Set<string>
  /** Deposits that got no answer (could be stored or not). */
  unanswered: number
  groupsCreated: Set<string>
  groupsRefused: Set<string>
  wellFormedHints: { groups: Set<string>; dms: Set<string> }
}

/** A path for a report: the query cut, ids blanked. */
const route = (path: string): string => clip(path.replace(/\?.*$/, '?…').replace(/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/gi, ':uuid'), 100).slice(1, -1)

const errorBodyProblem = (body: Buffer): string | undefined => {
  try {
    const parsed = JSON.parse(body.toString('utf8')) as { error?: { code?: unknown; message?: unknown } }
    const e = parsed?.error
    return typeof e?.code === 'string' && typeof e.message === 'string' ? undefined : 'body is not {error:{code,message}}'
  } catch {
    return 'body is not JSON'
  }
}

/** Why an answer is ill-formed, if it is. */
const problemOf = (req: Req, res: Res): string | undefined => {
  const type = String(res.headers['content-type'] ?? '')
  const text = TEXT_ROUTES.test(req.path) && (res.status < 400 || (req.path.startsWith('/readyz') && res.status === 503))
  if (res.status === 204 || (res.status === 304 && req.method === 'HEAD')) return undefined
  if (text) return /^text\/plain/.test(type) ? undefined : `Content-Type ${clip(type, 40)} (text expected)`
  if (!/^application\/json/.test(type)) return `Content-Type ${clip(type || '(none)', 60)}, not application/json`
  if (req.method === 'HEAD') return undefined
  if (res.status >= 400) return errorBodyProblem(res.body)
  try {
    JSON.parse(res.body.toString('utf8'))
    return undefined
  } catch {
    return 'body is not JSON'
  }
}

const codeOf = (res: Res): string => {
  try {
    return String((JSON.parse(res.body.toString('utf8')) as { error?: { code?: string } }).error?.code ?? '')
  } catch {
    return ''
  }
}

/** Checks one answer; records what it says about the tables. */
const check = (run: RunState, g: Gen, req: Req, res: Res, mustRefuse: boolean): void => {
  const where = `${req.method} ${route(req.path)}`
  const size = req.path.length + (req.body?.length ?? 0)
  if (res.status === -1) return void run.statuses.add('not sent (Node refused the request)')
  if (res.status === 0) run.statuses.add(`no answer (${res.error ?? '?'})`)
  else run.statuses.add(req.method === 'HEAD' ? `${res.status} (HEAD)` : `${res.status}${res.status >= 400 ? ` ${codeOf(res)}` : ''}`)
  if (res.status <= 0) return noAnswer(run, req, res, where, size)
  if (res.status >= 500) run.findings.add(`${res.status} ${codeOf(res)}: ${req.kind}`, size, `${where} → ${res.status}`)
  const problem = problemOf(req, res)
  if (problem) run.findings.add(`ill-formed answer: ${problem} (${req.kind})`, size, `${where} → ${res.status}`)
  if (mustRefuse && res.status < 400) run.findings.add(`accepted with wrong credentials or method: ${req.kind}`, size, `${where} → ${res.status}`)
  record(run, g, req, res)
}

const noAnswer = (run: RunState, req: Req, res: Res, where: string, size: number): void => {
  if (req.effect && 'deposit' in req.effect) run.unanswered++
  // A body the server refuses before reading may be cut off while still being written (EPIPE/ECONNRESET).
  if (res.status === -1 || ((req.body?.length ?? 0) > 64 * 1024 && /EPIPE|ECONNRESET/.test(res.error ?? ''))) return
  run.findings.add(`no answer (${res.error ?? '?'}): ${req.kind}`, size, where)
}

/** A group an admin upsert or a well-formed hint created: the database may hold it, later requests ask for it. */
const created = (run: RunState, g: Gen, group: string, by: 'admin' | 'hint' = 'admin'): void => {
  const seen = by === 'admin' ? run.groupsCreated : run.wellFormedHints.groups
  seen.add(group)
  if (g.groups.length < 1000) g.groups.push(group)
}

/** What a 2xx changed: deposits, acks, groups, cursors and item ids for later requests. */
const record = (run: RunState, g: Gen, req: Req, res: Res): void => {
  const effect = req.effect
  if (!effect) return
  const ok = res.status >= 200 && res.status < 300
  if ('group' in effect) return ok ? created(run, g, effect.group) : void run.groupsRefused.add(effect.group)
  if ('hint' in effect && ok && effect.hint.wellFormed) {
    if (effect.hint.group) created(run, g, effect.hint.group, 'hint')
    if (effect.hint.dm) run.wellFormedHints.dms.add(effect.hint.dm)
  }
  if (!ok) return
  const body = JSON.parse(res.body.toString('utf8') || '{}') as { id?: string; items?: Array<{ id: string }>; next_cursor?: string }
  if ('deposit' in effect && res.status === 201 && body.id) run.deposited.get(effect.deposit)?.add(body.id)
  if ('ack' in effect) run.acked.add(effect.id)
  if ('pickup' in effect) {
    const ids = g.items.get(effect.pickup) ?? []
    g.items.set(effect.pickup, [...ids, ...(body.items ?? []).map(i => i.id)].slice(-200))
    if (body.next_cursor) g.cursors.set(effect.pickup, body.next_cursor)
    else g.cursors.delete(effect.pickup)
  }
}

/** Sends one generated request (a replay: twice) and checks the answers. */
const fire = async (run: RunState, g: Gen, agent: Agent, api: ApiProcess, req: Req, lane: number): Promise<void> => {
  run.kinds.add(req.kind.replace(/:.*/, ''))
  if (req.raw) return fireRaw(run, api, req)
  const headers: Record<string, string> = { 'X-Forwarded-For': clientAddress(lane * 1000 + g.random.below(32)), ...req.headers }
  if (req.nip98) {
    const authorization = nip98Header(g, req, req.nip98.key, req.nip98.broken)
    if (authorization) headers.Authorization = authorization
  }
  check(run, g, req, await send(agent, api.port, req, headers), req.mustRefuse === true)
  if (req.replay) check(run, g, { ...req, kind: `${req.kind} (second use)`, effect: undefined }, await send(agent, api.port, req, headers), true)
}

const fireRaw = async (run: RunState, api: ApiProcess, req: Req): Promise<void> => {
  const raw = req.raw as NonNullable<Req['raw']>
  const { responses } = await sendRaw(api.port, raw)
  const size = raw.chunks.reduce((n, c) => n + c.length, 0)
  if (responses.length === 0) run.raw.add(raw.answer === 'required' ? 'NO ANSWER' : 'no answer (none owed)')
  for (const res of responses) run.raw.add(`${res.status} ${codeOf(res) || `(${String(res.headers['content-type'] ?? 'no Content-Type')})`}`)
  if (responses.length === 0 && raw.answer === 'required') run.findings.add(`no answer to a raw request: ${req.kind}`, size, req.kind)
  for (const res of responses) {
    if (res.status >= 500 || res.status === 0) run.findings.add(`${res.status || 'unparsable status line'}: ${req.kind}`, size, req.kind)
    const problem = res.status < 400 ? undefined : /^application\/json/.test(String(res.headers['content-type'] ?? '')) ? errorBodyProblem(res.body) : `Content-Type ${clip(String(res.headers['content-type'] ?? '(none)'), 40)}`
    if (problem) run.findings.add(`ill-formed answer to a raw request: ${problem}`, size, `${req.kind} → ${res.status}`)
  }
}

// ---------------------------------------------------------------------------------------------------
// The database check
// ---------------------------------------------------------------------------------------------------

/** Compares the tables with what the answers said; returns the report line. */
const checkTables = async (run: RunState, api: ApiProcess): Promise<string> => {
  const client = new pg.Client({ ...EMBEDDED, port: api.pgPort })
  await client.connect()
  try {
    const ids = async (sql: string): Promise<string[]> => (await client.query<{ v: string }>(sql)).rows.map(r => r.v)
    const parts: string[] = []
    for (const [table, sqlTable] of [['keypackages', 'mail_keypackages'], ['welcomes', 'mail_welcomes']] as const) {
      const stored = new Set(await ids(`SELECT id AS v FROM ${sqlTable}`))
      const accepted = run.deposited.get(table) ?? new Set()
      const extra = [...stored].filter(id => !accepted.has(id))
      const missing = [...accepted].filter(id => !run.acked.has(id) && !stored.has(id))
      if (extra.length > run.unanswered) run.findings.add(`${table}: ${extra.length} rows no 201 answered (refused deposits stored?)`, 0, clip(extra.slice(0, 3).join(', ')))
      if (missing.length > 0) run.findings.add(`${table}: ${missing.length} deposits answered 201 and never acknowledged are missing`, 0, clip(missing.slice(0, 3).join(', ')))
      parts.push(`${table} ${stored.size} rows (${accepted.size} answered 201, ${[...accepted].filter(id => run.acked.has(id)).length} acknowledged)`)
    }
    const groups = await ids('SELECT group_id AS v FROM groups')
    const strayGroups = groups.filter(id => !run.groupsCreated.has(id) && !run.wellFormedHints.groups.has(id))
    if (strayGroups.length > 0) run.findings.add(`groups: ${strayGroups.length} rows no admin upsert or well-formed hint created`, 0, clip(strayGroups.slice(0, 3).join(', ')))
    const dms = await ids('SELECT DISTINCT event_id AS v FROM dm_hints')
    const strayDms = dms.filter(id => !run.wellFormedHints.dms.has(id))
    if (strayDms.length > 0) run.findings.add(`dm_hints: ${strayDms.length} event ids no well-formed hint carried`, 0, clip(strayDms.slice(0, 3).join(', ')))
    parts.push(`groups ${groups.length} (${run.groupsCreated.size} upserts answered 200, ${run.groupsRefused.size} refused, ${run.wellFormedHints.groups.size} from hints)`, `dm hints for ${dms.length} events`)
    return parts.join('; ')
  } finally {
    await client.end()
  }
}

// ---------------------------------------------------------------------------------------------------
// The run
// ---------------------------------------------------------------------------------------------------

const mib = (n: number | undefined): string => (n === undefined || Number.isNaN(n) ? '-' : `${n.toFixed(0)} MiB`)

/** One lane: its own random source and keep-alive socket, requests until its share is sent or time is up. */
const lane = async (run: RunState, g: Gen, api: ApiProcess, index: number, share: number, deadline: number): Promise<number> => {
  const agent = new Agent({ keepAlive: true, maxSockets: 1 })
  let sent = 0
  try {
    for (; sent < share && performance.now() < deadline; sent++) {
      if (sent % 50 === 0 && !isAlive(api.pid)) break
      await fire(run, g, agent, api, g.random.weighted(GENERATORS)(g), index)
    }
  } finally {
    agent.destroy()
  }
  return sent
}

/** What `fuzzMailbox` takes. */
export interface MailboxFuzzOptions {
  seed: number
  requests: number
  /** Time cap: a run that does not send every request within it fails. */
  maxSeconds: number
  /** The compiled CLI under test (CLI: this checkout's). */
  cli: string
  /** Most the API's anonymous RSS may grow over the run, measured after forced garbage collections (memory.ts). */
  maxGrowthMiB: number
}

/** What a run found. */
export interface MailboxFuzzResult {
  requests: number
  /** Each kind of failure with its count and smallest input; empty when the run passed. */
  failures: string[]
  /** Anonymous RSS growth after forced garbage collections, MiB (undefined when not measured). */
  growthMiB: number | undefined
}

const newRun = (): RunState => ({
  findings: new Findings(), kinds: new Counter(), statuses: new Counter(), raw: new Counter(),
  deposited: new Map([['keypackages', new Set()], ['welcomes', new Set()]]), acked: new Set(), unanswered: 0,
  groupsCreated: new Set(), groupsRefused: new Set(), wellFormedHints: { groups: new Set(), dms: new Set() },
})

/** The lanes side by side, sharing what the API gave out (item ids, cursors, groups). */
const fuzzLanes = async (run: RunState, api: ApiProcess, opts: MailboxFuzzOptions, secrets: { admin: string; push: string; metrics: string }): Promise<number> => {
  const random = seededRandom(opts.seed)
  const signer = loadSigner()
  const keys = Array.from({ length: 8 }, () => {
    const secret = random.bytes(32)
    return { secret, pubkey: signer.publicKey(secret) }
  })
  const shared = { items: new Map<string, string[]>(), cursors: new Map<string, string>(), groups: [] as string[] }
  const deadline = performance.now() + opts.maxSeconds * 1000
  const sent = await Promise.all(
    Array.from({ length: LANES }, (_, i) => {
      let serial = 0
      const g: Gen = { random: random.fork(), signer, keys, publicUrl: api.url, adminToken: secrets.admin, pushToken: secrets.push, metricsKey: secrets.metrics, ...shared, serial: () => ++serial * LANES + i }
      return lane(run, g, api, i, Math.floor(opts.requests / LANES) + (i < opts.requests % LANES ? 1 : 0), deadline)
    }),
  )
  return sent.reduce((a, b) => a + b, 0)
}

const printRun = (run: RunState, api: ApiProcess, o: { total: number; seconds: number; memory: Array<Memory | undefined>; maxGrowthMiB: number; tables: string; stop: Stopped }): number => {
  fuzzRow('sent', `${o.total.toLocaleString('en-US')} requests in ${sec(o.seconds)}: ${run.kinds.text()}`)
  fuzzRow('answers', run.statuses.text(40))
  fuzzRow('raw', `answers on raw sockets: ${run.raw.text()}`)
  fuzzRow('stored', o.tables)
  const [before, after] = o.memory
  fuzzRow('memory', `anonymous RSS after forced GC: before ${mib(before?.anon)}, after ${mib(after?.anon)}, growth ${mib(after && before ? after.anon - before.anon : undefined)} (bound ${o.maxGrowthMiB} MiB); RSS after ${mib(after?.rss)}, peak ${mib(after?.peak)}`)
  const logged = [...new Set(api.warnings.filter(w => !w.atShutdown).map(w => `${w.severity} ${clip(w.message, 100)}`))].slice(0, 5).join(' | ')
  fuzzRow('api log', `${api.warningCount} lines at WARN or above${logged ? `: ${logged}` : ''}`)
  fuzzRow('stopped', `exit ${o.stop.code ?? o.stop.signal} in ${sec(o.stop.seconds)}`)
  return printFindings(run.findings, `${o.total.toLocaleString('en-US')} hostile requests, 0 crashes, no 5xx, every answer well-formed, nothing refused was stored, memory within bound`)
}

/** The memory check: growth past the bound, or no measurement of a live API, is a finding. */
const checkMemory = (run: RunState, before: Memory | undefined, after: Memory | undefined, maxGrowthMiB: number): number | undefined => {
  if (!before || !after) return void run.findings.add('memory not measured (no /proc, or the forced garbage collection did not answer)', 0, '(memory)')
  const growth = after.anon - before.anon
  if (growth > maxGrowthMiB) run.findings.add(`memory: anonymous RSS grew by more than ${maxGrowthMiB} MiB over the run`, 0, '(memory)', `${before.anon.toFixed(0)} → ${after.anon.toFixed(0)} MiB after forced garbage collections`)
  return growth
}

/** Fuzzes the API (every route live: admin, push and metrics secrets set) and checks its tables and memory after. */
export const fuzzMailbox = async (opts: MailboxFuzzOptions): Promise<MailboxFuzzResult> => {
  const random = seededRandom(opts.seed ^ 0x5eed)
  const secrets = { admin: `fuzz-admin-${random.hex(12)}`, push: `fuzz-push-${random.hex(12)}`, metrics: `fuzz-metrics-${random.hex(12)}` }
  const env = { ADMIN_TOKEN: secrets.admin, HINTS_PUSH_TOKEN: secrets.push, METRICS_AUTH: secrets.metrics, MAILBOX_JANITOR_INTERVAL: '1h' }
  const api = await startApiProcess({ cli: opts.cli, env: { ...process.env, ...env }, logLevel: 'warn', rateLimit: RATE_LIMIT, gc: true })
  const offInterrupt = stopOnInterrupt(api.stop)
  let stop: Stopped | undefined
  try {
    const run = newRun()
    console.log()
    console.log(`mailbox fuzz: seed ${opts.seed}, ${opts.requests.toLocaleString('en-US')} requests over ${LANES} keep-alive connections and raw sockets, cap ${opts.maxSeconds} s`)
    fuzzRow('api', `pid ${api.pid}, ${api.url}, embedded PostgreSQL on port ${api.pgPort}`)
    fuzzRow('config', `ADMIN_TOKEN, HINTS_PUSH_TOKEN, METRICS_AUTH set; MAILBOX_JANITOR_INTERVAL=1h; rate limits ${RATE_LIMIT}/min per IP and per pubkey (X-Forwarded-For spread over ${LANES * 32} addresses)`)
    const before = await api.settledMemory()
    const started = performance.now()
    const total = await fuzzLanes(run, api, opts, secrets)
    const seconds = (performance.now() - started) / 1000
    const alive = isAlive(api.pid)
    if (!alive) run.findings.add('the API process exited', 0, '(see the requests above)')
    if (alive && total < opts.requests) run.findings.add(`time cap: ${total} of ${opts.requests} requests sent in ${opts.maxSeconds} s`, 0, '(throughput)')
    const after = alive ? await api.settledMemory() : undefined
    const growthMiB = alive ? checkMemory(run, before, after, opts.maxGrowthMiB) : undefined
    const tables = alive ? await checkTables(run, api) : 'not checked (API gone)'
    const errors = api.warnings.filter(w => !w.atShutdown && !/^WARN/i.test(w.severity))
    if (errors.length > 0) run.findings.add(`API logged ${errors.length} lines at ERROR or above (or not as JSON)`, 0, clip(errors[0]?.message ?? '', 200))
    stop = await api.stop()
    printRun(run, api, { total, seconds, memory: [before, after], maxGrowthMiB: opts.maxGrowthMiB, tables, stop })
    const failures = run.findings.entries().map(([kind, f]) => `${f.count} × ${kind}: ${f.input}${f.detail ? ` (${f.detail})` : ''}`)
    return { requests: total, failures, growthMiB }
  } finally {
    offInterrupt()
    if (!stop) await api.stop()
  }
}
