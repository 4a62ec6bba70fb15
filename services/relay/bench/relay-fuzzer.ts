// The relay fuzzer (`fuzzRelay`), run by the tool (fuzz.ts: `npm run fuzz -w services/relay`, 10,000 frames)
// and by `npm test` (fuzz.test.ts: a few thousand).
//
// The relay runs as a child process on loopback (relay-process.ts), once with its defaults (permissive) and
// once hardened (NIP-42 auth enabled and required, rate limiter on), unless `setups` picks one. Over four
// connections (hardened: two of them authenticated) it sends a seeded mix of hostile frames in windows of
// 1-12, each closed by a sync frame (`["FUZZ-SYNC"]`) whose NOTICE shows the window was read. An oracle
// (the NIP-01 rules the relay's parser follows) says what each frame is owed: OK for an EVENT or AUTH with a
// readable id, EOSE/COUNT/CLOSED for a REQ or COUNT, NOTICE otherwise, a close for a frame past maxPayload
// (1009) or of invalid UTF-8 (1007). Checks: the relay never exits; every answer is UTF-8 JSON of a known
// verb and shape; every OK/CLOSED/NOTICE message carries a NIP-01 prefix (or is OK true with ''); no
// `error:` answer; every owed answer arrives, nothing unowed does; the relay closes a connection only where
// the oracle says so; nothing is logged at ERROR; no event answered OK false (but `duplicate:`) is in the
// store (read from its LMDB at the end); a probe connection of its own, doing EVENT→OK true and REQ→that
// event + EOSE round trips the whole time, gets every answer right; the relay's anonymous memory after forced
// garbage collections grows by at most `maxGrowthMiB` over the run (memory.ts: LMDB's mapped pages are not
// counted; read halfway too, to show the plateau); at the end a fresh connection gets EOSE and OK true. A
// failure is reported with the smallest frame that showed it (content clipped), replayed alone on a fresh
// connection. Bounded: a fixed number of frames, loopback only, a time cap per configuration.
import { createHash } from 'node:crypto'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { NostrEvent } from '@msr/nostr'
import WebSocket from 'ws'
import {
  clip, Counter, Findings, freePort, fuzzRow, hostileText, isAlive, loadSigner, ms, printFindings, sec, seededRandom, summarize,
  stopOnInterrupt, wrongValue, type Memory, type Random, type Signer, type Stopped,
} from '@msr/bench'
import { EventStore } from '../src/store/event-store.js'
import { startRelayProcess, type RelayProcess } from './relay-process.js'


/** The relay's answer to a scan its db_query_timeout stopped (README: Operations, Queries). */
const QUERY_TIMEOUT = /^error: the (query|count) took too long \(db_query_timeout\)/
/**
 * Default of `--max-growth-mib`: the relay's anonymous RSS warms up to a plateau (checkMemory), measured at
 * 71–175 MiB after 2,000 frames and 96–108 after 10,000; 320 leaves room for the machine's noise, and a leak
 * of ~25 KiB per frame fails a 10,000-frame run, one of ~100 KiB the 2,000 of `npm test` (README, Reliability).
 */
export const DEFAULT_MAX_GROWTH_MIB = 320

/** The compiled CLI of this checkout. */
export const CLI = fileURLToPath(new URL('../src/cli.js', import.meta.url))
const LANES = 4
/** Hardened: lanes 0 and 1 authenticate (NIP-42) on every connect; the others stay anonymous. */
const AUTHED_LANES = 2
const MAX_WINDOW = 12
const WINDOW_TIMEOUT_MS = 15_000
const SYNC = Buffer.from('["FUZZ-SYNC"]')
const SYNC_NOTICE = 'invalid: unknown message type "FUZZ-SYNC"'
const PREFIX = /^(duplicate|pow|blocked|rate-limited|invalid|restricted|auth-required|error):/
const HEX64 = /^[0-9a-f]{64}$/
const HEX64_ANY_CASE = /^[0-9a-fA-F]{64}$/
const HEX128 = /^[0-9a-f]{128}$/
// The relay's own rule for the id of a frame too long to parse (pipeline/parse.ts).
const ID_IN_TEXT = /(?<!\\)"id"\s*:\s*"([0-9a-fA-F]{64})"/
const utf8 = new TextDecoder('utf-8', { fatal: true })
/** auth.private_kinds by default: served only to a connection authenticated as the author or a p-tagged recipient. */
const PRIVATE_KINDS = new Set([446, 1059, 444])

interface Key {
  secret: Buffer
  pubkey: string
}


/** One input: a WebSocket message (text unless `binary`), or a burst of `pings`. */
interface Frame {
  /** Its category, for the report (`event: sig flipped`). */
  kind: string
  data: Buffer
  binary?: boolean
  pings?: number
  /** A valid AUTH: the key the connection is then authenticated as. */
  authAs?: Key
}

/** What the relay announces (NIP-11) and derives: the largest message parsed, the largest frame read at all. */
interface Limits {
  maxMessage: number
  maxPayload: number
}

/** What the frame generators draw from; `lane` is the connection's own state. */
interface Gen {
  random: Random
  signer: Signer
  keys: readonly Key[]
  /** Ids the relay stored (any connection), for deletions, reactions and filters. */
  stored: string[]
  limits: Limits
  publicUrl: string
  lane: LaneState
  serial(): number
}

/** A connection's state as the generators see it. */
interface LaneState {
  challenge: string | undefined
  authed: Key | undefined
  /** Every pubkey the connection proved (a later valid AUTH adds one). */
  proved: Set<string>
  /** Subscription ids answered EOSE and not closed since. */
  open: Set<string>
}

// ---------------------------------------------------------------------------------------------------
// Frame generators
// ---------------------------------------------------------------------------------------------------

type Template = { kind: number; tags?: string[][]; content?: string; created_at?: number }

const now = (): number => Math.floor(Date.now() / 1000)
const sha256 = (text: string): string => createHash('sha256').update(text).digest('hex')

/** Signs a template by `key`: the id over the NIP-01 serialization, a BIP-340 signature of it. */
const signWith = (signer: Signer, key: Key, t: Template): NostrEvent => {
  const body = { pubkey: key.pubkey, created_at: t.created_at ?? now(), kind: t.kind, tags: t.tags ?? [], content: t.content ?? '' }
  const id = sha256(JSON.stringify([0, body.pubkey, body.created_at, body.kind, body.tags, body.content]))
  return { id, ...body, sig: signer.sign(Buffer.from(id, 'hex'), key.secret) }
}

const sign = (g: Gen, key: Key, t: Template): NostrEvent => signWith(g.signer, key, t)

const json = (kind: string, value: unknown): Frame => ({ kind, data: Buffer.from(JSON.stringify(value)) })
const raw = (kind: string, text: string | Buffer): Frame => ({ kind, data: typeof text === 'string' ? Buffer.from(text) : text })
const author = (g: Gen): Key => (g.lane.authed && g.random.chance(0.6) ? g.lane.authed : g.random.pick(g.keys))
const someId = (g: Gen): string => (g.stored.length > 0 && g.random.chance(0.6) ? g.random.pick(g.stored) : g.random.hex(32))
/** A mutated field as text, whatever it became (an object without a prototype has no toString). */
const asText = (value: unknown): string => (typeof value === 'string' ? value : String(JSON.stringify(value)))
const flipHex = (hex: string): string => hex.slice(0, -1) + (hex.endsWith('0') ? '1' : '0')
const smallEvent = (g: Gen): NostrEvent => sign(g, author(g), { kind: 1, content: `fuzz ${g.serial()}` })

/** NIP-09 deletion tags: stored ids (anyone's), random ids, addresses, kinds, some malformed. */
const deletionTags = (g: Gen): string[][] => {
  const key = g.random.pick(g.keys).pubkey
  const tags: string[][] = Array.from({ length: g.random.between(1, 5) }, () => ['e', someId(g)])
  if (g.random.chance(0.3)) tags.push(['a', `30023:${key}:${g.random.pick(['article', '', hostileText(g.random, 100)])}`], ['a', `0:${key}:`])
  if (g.random.chance(0.2)) tags.push(['a', g.random.pick(['::', '30023:zz:', '99999999999:x:y', hostileText(g.random, 200)])])
  if (g.random.chance(0.2)) tags.push(['k', g.random.pick(['1', '30023', 'x'])])
  if (g.random.chance(0.05)) tags.push(...Array.from({ length: 1000 }, () => ['e', g.random.hex(32)]))
  return tags
}

const p = (g: Gen): string[] => ['p', g.random.pick(g.keys).pubkey]

/** Valid signed events of many kinds (some refused by policy: 22242 as EVENT, time window, NIP-40, NIP-70, tag count). */
const VALID: Array<[string, (g: Gen) => Template]> = [
  ['note', g => ({ kind: 1, content: `fuzz note ${g.serial()}` })],
  ['hostile text', g => ({ kind: 1, content: hostileText(g.random, 20_000), tags: [['t', hostileText(g.random, 300)], [hostileText(g.random, 50), hostileText(g.random, 50)]] })],
  ['metadata (0)', g => ({ kind: 0, content: JSON.stringify({ name: hostileText(g.random, 100) }) })],
  ['contacts (3)', g => ({ kind: 3, tags: Array.from({ length: g.random.between(0, 50) }, () => p(g)) })],
  ['relay list (10002)', g => ({ kind: 10002, tags: [['r', 'wss://relay.example.com'], ['r', hostileText(g.random, 200)]] })],
  ['addressable (30023)', g => ({ kind: 30023, tags: [['d', g.random.chance(0.5) ? 'article' : hostileText(g.random, 300)]], content: 'article' })],
  ['reaction (7)', g => ({ kind: 7, content: '+', tags: [['e', someId(g)], p(g)] })],
  ['deletion (5)', g => ({ kind: 5, tags: deletionTags(g) })],
  ['group message (445)', g => ({ kind: 445, tags: [['h', g.random.pick(['group-a', 'group-b', hostileText(g.random, 300)])], ['k', String(g.random.between(0, 1000))]], content: g.random.bytes(64).toString('base64') })],
  ['dm (446)', g => ({ kind: 446, tags: [p(g)], content: g.random.bytes(64).toString('base64') })],
  ['gift wrap (1059)', g => ({ kind: 1059, tags: [p(g)], content: g.random.bytes(200).toString('base64') })],
  ['welcome (444)', g => ({ kind: 444, tags: [p(g)], content: 'welcome' })],
  ['ephemeral', g => ({ kind: g.random.pick([20000, 20001, 24133, 29999]), content: 'ephemeral' })],
  ['auth kind as EVENT (22242)', g => ({ kind: 22242, tags: [['relay', g.publicUrl], ['challenge', g.lane.challenge ?? 'none']] })],
  ['http auth (27235)', () => ({ kind: 27235, tags: [['u', 'http://127.0.0.1/'], ['method', 'GET']] })],
  ['created_at edge', g => ({ kind: 1, created_at: now() + g.random.pick([0, 899, 901, 100_000]) - g.random.pick([0, 94_607_000, 94_608_100]), content: 'edge' })],
  ['expiration (NIP-40)', g => ({ kind: 1, tags: [['expiration', g.random.pick([String(now() - 10), String(now() + 3600), 'soon', '99999999999999999999', ''])]] })],
  ['protected (NIP-70)', () => ({ kind: 1, tags: [['-']], content: 'protected' })],
  ['any kind', g => ({ kind: g.random.between(0, 65535) })],
  ['tag count edge', g => ({ kind: 1, tags: Array.from({ length: g.random.pick([4999, 5000, 5001]) }, (_, i) => ['t', `t${i}`]) })],
  ['tag of 10,000 values', () => ({ kind: 1, tags: [Array.from({ length: 10_000 }, (_, i) => `v${i}`)] })],
  ['huge tag value', g => ({ kind: 1, tags: [['t', 'x'.repeat(g.random.pick([1000, 100_000, 500_000]))]] })],
]

const validEvent = (g: Gen): Frame => {
  const [name, template] = g.random.pick(VALID)
  return json(`event ok: ${name}`, ['EVENT', sign(g, author(g), template(g))])
}

type Mutable = Record<string, unknown>
const FIELDS = ['id', 'pubkey', 'created_at', 'kind', 'tags', 'content', 'sig']

/** Re-derives the id after a field changed, keeping the old signature (so only the signature is wrong). */
const rehash = (e: Mutable): void => void (e.id = sha256(JSON.stringify([0, e.pubkey, e.created_at, e.kind, e.tags, e.content])))

/** Ways to break an event, each leaving the rest valid. */
const MUTATIONS: Array<[string, (e: Mutable, g: Gen) => void]> = [
  ['id mismatch', e => (e.id = flipHex(asText(e.id)))],
  ['id uppercase', e => (e.id = asText(e.id).toUpperCase())],
  ['id short', e => (e.id = asText(e.id).slice(1))],
  ['id wrong type', (e, g) => (e.id = wrongValue(g.random))],
  ['sig flipped', e => (e.sig = flipHex(asText(e.sig)))],
  ['sig zero', e => (e.sig = '0'.repeat(128))],
  ['sig uppercase', e => (e.sig = asText(e.sig).toUpperCase())],
  ['sig wrong type', (e, g) => (e.sig = wrongValue(g.random))],
  ['pubkey off curve', (e, g) => ((e.pubkey = g.random.pick(['f'.repeat(64), '0'.repeat(64), 'ff'.repeat(31) + '00'])), rehash(e))],
  ['pubkey of another', (e, g) => ((e.pubkey = g.random.pick(g.keys).pubkey), rehash(e))],
  ['created_at wrong', (e, g) => (e.created_at = g.random.pick([-1, 1.5, '1', null, 2 ** 32, 1e21, 2 ** 53]))],
  ['kind wrong', (e, g) => (e.kind = g.random.pick([-1, 65536, 1.5, '1', null, 1e21]))],
  ['tags wrong', (e, g) => (e.tags = g.random.pick([{}, 'x', [[1]], [null], [['a', null]], [['a', ['b']]], [[]], [['']], null]))],
  ['content wrong', (e, g) => (e.content = g.random.pick([1, null, {}, [], true]))],
  ['extra field', (e, g) => Object.defineProperty(e, g.random.pick(['extra', 'ID', '__proto__', 'id ', '', 'sig2']), { value: wrongValue(g.random), enumerable: true, writable: true, configurable: true })],
  ['missing field', (e, g) => delete e[g.random.pick(FIELDS)]],
]

const invalidEvent = (g: Gen): Frame => {
  const event = smallEvent(g) as unknown as Mutable
  const rounds = g.random.chance(0.15) ? 3 : 1
  const names: string[] = []
  for (let i = 0; i < rounds; i++) {
    const [name, mutate] = g.random.pick(MUTATIONS)
    mutate(event, g)
    names.push(name)
  }
  return json(`event bad: ${rounds > 1 ? 'several' : names[0]}`, ['EVENT', event])
}

/** A subscription id: mostly fresh, sometimes long, hostile, empty or one already open. */
const subId = (g: Gen): string =>
  g.random.weighted<() => string>([
    [10, () => `s${g.serial()}`],
    [1, () => `s${g.serial()}-`.padEnd(g.random.pick([99, 100, 101, 65_536]), 'x')],
    [1, () => `s${g.serial()}${hostileText(g.random, 200)}`],
    [1, () => (g.lane.open.size > 0 ? g.random.pick([...g.lane.open]) : `s${g.serial()}`)],
    [0.3, () => ''],
  ])()

const UNKNOWN_FIELDS = ['search', 'foo', '#', '#ab', '#é', '', '__proto__', 'constructor', 'ids ', 'LIMIT']

/** Filters: ordinary, empty lists, edge limits and times, unknown fields, private kinds, large lists. */
const FILTERS: Array<(g: Gen) => Mutable> = [
  () => ({}),
  g => ({ ids: [someId(g)] }),
  g => ({ authors: [g.random.pick(g.keys).pubkey], kinds: [1, 7], limit: 10 }),
  g => ({ [g.random.pick(['ids', 'authors', 'kinds', '#t', '#e'])]: [] }),
  g => ({ limit: g.random.pick([0, 1, 1000, 1001, 1e15, 2 ** 53, -1, 1.5, '10', null]) }),
  g => ({ since: g.random.pick([10, 2 ** 32 + 5, -1, now()]), until: g.random.pick([5, 0, 2 ** 53, now() - 10]) }),
  g => ({ [g.random.pick(UNKNOWN_FIELDS)]: wrongValue(g.random) }),
  g => ({ '#e': [g.random.pick(['x', 'A'.repeat(64), someId(g)])] }),
  g => ({ '#p': [g.random.pick(g.keys).pubkey.toUpperCase()] }),
  g => ({ '#t': Array.from({ length: g.random.between(1, 5) }, () => hostileText(g.random, 500)) }),
  () => ({ '#h': ['group-a'], kinds: [445] }),
  g => ({ kinds: [g.random.pick([446, 1059, 444])], '#p': [g.random.pick(g.keys).pubkey] }),
  () => ({ kinds: Array.from({ length: 1000 }, (_, i) => i) }),
  g => ({ authors: Array.from({ length: g.random.pick([300, 9999, 10_001]) }, () => g.random.hex(32)) }),
  g => ({ kinds: [g.random.pick([-1, 65536, 1.5, '1', null])] }),
  g => ({ [g.random.pick(['ids', 'authors', 'kinds', 'since', 'until', 'limit', '#t', '#e'])]: wrongValue(g.random) }),
]

const filters = (g: Gen): unknown[] => {
  const n = g.random.weighted([[14, 1], [4, 2], [1, 3], [0.5, 20], [0.5, 21], [0.2, 200]])
  return Array.from({ length: n }, () => (g.random.chance(0.03) ? wrongValue(g.random) : g.random.pick(FILTERS)(g)))
}

const request = (g: Gen): Frame => {
  if (g.lane.open.size > 40 || g.random.chance(0.2)) {
    const id = g.lane.open.size > 0 && g.random.chance(0.8) ? g.random.pick([...g.lane.open]) : g.random.chance(0.5) ? `gone${g.serial()}` : wrongValue(g.random)
    return json('close', ['CLOSE', id])
  }
  const verb = g.random.chance(0.75) ? 'REQ' : 'COUNT'
  return json(verb.toLowerCase(), [verb, subId(g), ...filters(g)])
}

/** NIP-42 AUTH: garbage, wrong challenge, relay, kind or time, bad signature; on an authenticated lane also a valid one. */
const auth = (g: Gen): Frame => {
  const key = g.random.pick(g.keys)
  const tags = (challenge: string, relay = g.publicUrl) => [['relay', relay], ['challenge', challenge]]
  const good = g.lane.challenge
  const cases: Array<[string, () => unknown]> = [
    ['garbage', () => wrongValue(g.random)],
    ['wrong challenge', () => sign(g, key, { kind: 22242, tags: tags(g.random.hex(32)) })],
    ['no challenge', () => sign(g, key, { kind: 22242, tags: [['relay', g.publicUrl]] })],
    ['wrong relay', () => sign(g, key, { kind: 22242, tags: tags(good ?? 'x', g.random.pick(['ws://evil.example', 'wss://127.0.0.1', '', hostileText(g.random, 100)])) })],
    ['old', () => sign(g, key, { kind: 22242, tags: tags(good ?? 'x'), created_at: now() - 700 })],
    ['kind 1', () => sign(g, key, { kind: 1, tags: tags(good ?? 'x') })],
    ['bad sig', () => ({ ...sign(g, key, { kind: 22242, tags: tags(good ?? 'x') }), sig: '0'.repeat(128) })],
  ]
  if (good) cases.push(['valid', () => sign(g, key, { kind: 22242, tags: tags(good) })])
  const [name, make] = g.random.pick(cases)
  const event = make()
  return { ...json(`auth: ${name}`, ['AUTH', event]), ...(name === 'valid' && { authAs: key }) }
}

/** Wrong JSON types at every position of each message. */
const wrongTypes = (g: Gen): Frame => {
  const messages: unknown[][] = [['EVENT', smallEvent(g)], ['REQ', `s${g.serial()}`, {}], ['COUNT', `s${g.serial()}`, { kinds: [1] }], ['CLOSE', 'x'], ['AUTH', smallEvent(g)]]
  const message = g.random.pick(messages)
  const verb = message[0] as string
  const at = g.random.below(message.length)
  message[at] = wrongValue(g.random)
  return json(`wrong type: ${verb}[${at}]`, message)
}

const malformed = (g: Gen): Frame => {
  const valid = JSON.stringify(['EVENT', smallEvent(g)])
  const cases: Array<() => string | Buffer> = [
    () => valid.slice(0, g.random.below(valid.length)),
    () => Buffer.from(Array.from({ length: g.random.between(1, 200) }, () => g.random.between(32, 126))),
    () => g.random.pick(['', ' ', '[', ']', '{}', 'null', '"EVENT"', '[,]', '[1,]', '["EVENT",]', '["REQ","a",{]', 'NaN', '[Infinity]', '[1e999]', "['EVENT']", '["EVENT" "x"]']),
    () => `\ufeff${valid}`,
    () => `${valid}${g.random.pick([' x', ']', ',', '\0'])}`,
    () => valid.replace('"kind":1', '"kind":1,"kind":7'),
    () => `/* c */${valid}`,
    () => '['.repeat(g.random.pick([1000, 100_000])),
    () => `["EVENT",${'['.repeat(20_000)}${']'.repeat(20_000)}]`,
    () => `["REQ","deep",{"#t":${'['.repeat(20_000)}${']'.repeat(20_000)}}]`,
  ]
  return raw('malformed JSON', g.random.pick(cases)())
}

const unknownVerb = (g: Gen): Frame => {
  const verb = g.random.pick(['event', 'Event', 'EVENTS', 'EVENT\0', 'REQ ', ' REQ', 'NOTICE', 'OK', 'EOSE', 'CLOSED', 'AUTH2', '', '__proto__', 'constructor', 'toString', 'X'.repeat(10_000), hostileText(g.random, 100)])
  return json('unknown verb', [verb, ...Array.from({ length: g.random.below(3) }, () => wrongValue(g.random))])
}

/** Empty and huge arrays, wrong arity. */
const arity = (g: Gen): Frame => {
  const e = smallEvent(g)
  const cases: Array<() => unknown[]> = [
    () => [],
    () => [g.random.pick(['EVENT', 'REQ', 'COUNT', 'CLOSE', 'AUTH'])],
    () => ['REQ', `s${g.serial()}`],
    () => ['CLOSE', 'a', 'b'],
    () => ['AUTH', e, e],
    () => ['EVENT', e, e],
    () => ['EVENT', e, ...new Array(1000).fill(null)],
    () => ['REQ', `s${g.serial()}`, ...new Array(g.random.pick([21, 1000])).fill({})],
    () => ['EVENT', ...new Array(100_000).fill(0)],
    () => new Array(100_000).fill('REQ'),
  ]
  return json('arity', g.random.pick(cases)())
}

/** An EVENT frame of `target` bytes (padding in the content), validly signed. */
const sizedEvent = (g: Gen, target: number): Frame => {
  const key = author(g)
  const created_at = now()
  const overhead = Buffer.byteLength(JSON.stringify(['EVENT', sign(g, key, { kind: 1, content: '', created_at })]))
  return json(`size: ${target - g.limits.maxMessage >= 0 ? '+' : ''}${target - g.limits.maxMessage} vs max_message_length`, [
    'EVENT',
    sign(g, key, { kind: 1, content: 'x'.repeat(Math.max(0, target - overhead)), created_at }),
  ])
}

const nearMax = (g: Gen): Frame => {
  if (g.random.chance(0.15)) return sizedEvent(g, g.limits.maxPayload + 1)
  if (g.random.chance(0.2)) {
    const values = Math.floor(g.limits.maxMessage / 12)
    return json('size: REQ near max_message_length', ['REQ', `s${g.serial()}`, { '#t': Array.from({ length: values }, (_, i) => `t-${i}`) }])
  }
  return sizedEvent(g, g.limits.maxMessage + g.random.pick([-100, -1, 0, 1, 100]))
}

const binary = (g: Gen): Frame => {
  const data = g.random.chance(0.5) ? g.random.bytes(g.random.between(1, 1000)) : Buffer.from(JSON.stringify(['EVENT', smallEvent(g)]))
  return { kind: 'binary frame', data, binary: true }
}

/** Text frames that are not UTF-8: a lone surrogate in CESU-8, 0xFF, an overlong NUL. */
const invalidUtf8 = (g: Gen): Frame => {
  const bad = g.random.pick([[0xed, 0xa0, 0x80], [0xff], [0xc0, 0x80], [0xe2, 0x82]])
  return raw('invalid UTF-8', Buffer.concat([Buffer.from('["EVENT","'), Buffer.from(bad), Buffer.from('"]')]))
}

const pingBurst = (): Frame => ({ kind: 'ping burst', data: Buffer.alloc(0), pings: 200 })

/** The mix, by weight. */
const GENERATORS: ReadonlyArray<readonly [number, (g: Gen) => Frame]> = [
  [8, malformed],
  [10, wrongTypes],
  [3, unknownVerb],
  [5, arity],
  [18, invalidEvent],
  [20, validEvent],
  [26, request],
  [6, auth],
  [2, binary],
  [0.4, nearMax],
  [0.2, invalidUtf8],
  [0.3, pingBurst],
]

// ---------------------------------------------------------------------------------------------------
// The oracle: what the relay owes each frame
// ---------------------------------------------------------------------------------------------------

/** An answer keyed by event id (`ok:<id>`) or subscription id (`sub:<id>`); a NOTICE; a close; nothing. */
type Owed = { key: string; cancels?: string } | { notice: true } | { closes: number } | { none: true; cancels?: string }

const readableId = (value: unknown): string | undefined => {
  if (typeof value !== 'object' || value === null) return undefined
  const id = (value as { id?: unknown }).id
  return typeof id === 'string' && HEX64_ANY_CASE.test(id) ? id : undefined
}

const isUtf8 = (data: Buffer): boolean => {
  try {
    utf8.decode(data)
    return true
  } catch {
    return false
  }
}

/** What the relay owes a frame, by the rules of NIP-01 as its parser applies them (pipeline/parse.ts, relay.ts). */
const owedBy = (frame: Frame, limits: Limits): Owed => {
  if (frame.pings) return { none: true }
  if (frame.data.length > limits.maxPayload) return { closes: 1009 }
  if (frame.binary) return { notice: true }
  if (!isUtf8(frame.data)) return { closes: 1007 }
  if (frame.data.length > limits.maxMessage) {
    const text = frame.data.toString('utf8', 0, Math.min(frame.data.length, 4 * limits.maxMessage))
    const id = /^\s*\[\s*"(?:EVENT|AUTH)"/.test(text) ? ID_IN_TEXT.exec(text)?.[1] : undefined
    return id ? { key: `ok:${id}` } : { notice: true }
  }
  let value: unknown
  try {
    value = JSON.parse(frame.data.toString('utf8'))
  } catch {
    return { notice: true }
  }
  if (!Array.isArray(value) || value.length === 0 || typeof value[0] !== 'string') return { notice: true }
  const [verb, ...args] = value as [string, ...unknown[]]
  return owedByVerb(verb, args)
}

const owedByVerb = (verb: string, args: unknown[]): Owed => {
  switch (verb) {
    // NIP-42 answers AUTH like EVENT: OK whenever the (first) event's id can be read, whatever follows it.
    case 'EVENT':
    case 'AUTH': {
      const id = readableId(args[0])
      return id ? { key: `ok:${id}` } : { notice: true }
    }
    case 'REQ':
    case 'COUNT': {
      const [id, ...rest] = args
      if (typeof id !== 'string' || id === '') return { notice: true }
      // A REQ with filters replaces (or, refused, closes) an earlier subscription of that id.
      return verb === 'REQ' && rest.length > 0 ? { key: `sub:${id}`, cancels: id } : { key: `sub:${id}` }
    }
    case 'CLOSE':
      return args.length === 1 && typeof args[0] === 'string' ? { none: true, cancels: args[0] } : { notice: true }
    default:
      return { notice: true }
  }
}

// ---------------------------------------------------------------------------------------------------
// Answers: shape checks
// ---------------------------------------------------------------------------------------------------

type Answer = { verb: string; parts: unknown[] } | { malformed: string }

const isEventShape = (e: unknown): boolean => {
  if (typeof e !== 'object' || e === null || Array.isArray(e)) return false
  const v = e as Record<string, unknown>
  return (
    Object.keys(v).length === 7 &&
    typeof v.id === 'string' && HEX64.test(v.id) &&
    typeof v.pubkey === 'string' && HEX64.test(v.pubkey) &&
    typeof v.sig === 'string' && HEX128.test(v.sig) &&
    Number.isInteger(v.created_at) && Number.isInteger(v.kind) &&
    typeof v.content === 'string' && Array.isArray(v.tags)
  )
}

const SHAPES: Record<string, (parts: unknown[]) => string | undefined> = {
  OK: ([id, accepted, message, ...rest]) => {
    if (typeof id !== 'string' || !HEX64_ANY_CASE.test(id) || typeof accepted !== 'boolean' || typeof message !== 'string' || rest.length > 0) return 'OK is not [OK, id, bool, string]'
    if (accepted && message === '') return undefined
    return PREFIX.test(message) ? undefined : `OK ${accepted} message without a NIP-01 prefix`
  },
  CLOSED: ([id, message, ...rest]) =>
    typeof id !== 'string' || typeof message !== 'string' || rest.length > 0 ? 'CLOSED is not [CLOSED, id, string]' : PREFIX.test(message) ? undefined : 'CLOSED message without a NIP-01 prefix',
  NOTICE: ([message, ...rest]) =>
    typeof message !== 'string' || rest.length > 0 ? 'NOTICE is not [NOTICE, string]' : PREFIX.test(message) ? undefined : 'NOTICE message without a NIP-01 prefix',
  EOSE: ([id, ...rest]) => (typeof id === 'string' && rest.length === 0 ? undefined : 'EOSE is not [EOSE, id]'),
  COUNT: ([id, body, ...rest]) => {
    const n = (body as { count?: unknown } | null)?.count
    return typeof id === 'string' && Number.isSafeInteger(n) && (n as number) >= 0 && rest.length === 0 ? undefined : 'COUNT is not [COUNT, id, {count}]'
  },
  EVENT: ([id, event, ...rest]) => (typeof id === 'string' && isEventShape(event) && rest.length === 0 ? undefined : 'EVENT is not [EVENT, id, event]'),
  AUTH: ([challenge, ...rest]) => (typeof challenge === 'string' && rest.length === 0 ? undefined : 'AUTH is not [AUTH, challenge]'),
}

/** Parses and checks one relay frame. */
const readAnswer = (data: Buffer, isBinary: boolean): Answer => {
  if (isBinary) return { malformed: 'a binary frame' }
  let value: unknown
  try {
    value = JSON.parse(utf8.decode(data))
  } catch {
    return { malformed: isUtf8(data) ? 'not JSON' : 'not UTF-8' }
  }
  if (!Array.isArray(value) || typeof value[0] !== 'string') return { malformed: 'not an array starting with a verb' }
  const [verb, ...parts] = value as [string, ...unknown[]]
  const shape = SHAPES[verb]
  if (!shape) return { malformed: `unknown verb ${clip(verb, 20)}` }
  const problem = shape(parts)
  return problem ? { malformed: problem } : { verb, parts }
}

// ---------------------------------------------------------------------------------------------------
// Connections
// ---------------------------------------------------------------------------------------------------

/** What every connection of a run reports into. */
interface RunState {
  url: string
  limits: Limits
  publicUrl: string
  findings: Findings
  /** Frames sent, by category. */
  frames: Counter
  /** Answers by verb and outcome (`OK false invalid`, `CLOSED rate-limited`…). */
  answers: Counter
  closes: Counter
  pongs: { wanted: number; got: number }
  /** Frames that showed each failure kind (the first occurrence's candidates), to be replayed alone. */
  candidates: Map<string, { frames: Frame[]; window: Frame[]; authed: boolean }>
  stored: string[]
  /** Ids any connection got OK true for. */
  acceptedIds: Set<string>
  /** Ids answered OK false (but `duplicate:`) → the frame's category and the answer: none of them may be in the store. */
  refused: Map<string, string>
  /** EVENT ids sent, with how often (any connection): one sent twice may be stored by one sending and refused the other. */
  sentIds: Map<string, number>
  /** Each lane's serial so far (subscription ids, contents): kept across the halves of a run, so none repeats. */
  serials: number[]
  /** Connections the relay dropped as slow readers (1008): its defence against a client that does not keep up, here the fuzzer itself. */
  slowDrops: number
}

interface Entry {
  frame: Frame
  /** From a REQ (cancelled by a later REQ or CLOSE of the same id); a COUNT's answer is always owed. */
  req: boolean
}

/** A window's answers by key (`ok:<event id>`, `sub:<subscription id>`): those owed, and those it may get. */
export type OwedAnswers<E extends { req: boolean }> = Map<string, { required: E[]; optional: E[] }>

/** Finished windows whose superseded REQs may still be answered (see settleAnswer). */
export const LEFTOVER_WINDOWS = 3

/** A later REQ or CLOSE of `subId`: the earlier REQs of it may go unanswered (their backfill is dropped). */
export const supersede = <E extends { req: boolean }>(owed: OwedAnswers<E>, subId: string): void => {
  const entry = owed.get(`sub:${subId}`)
  if (!entry) return
  entry.optional.push(...entry.required.filter(e => e.req))
  entry.required = entry.required.filter(e => !e.req)
}

/**
 * What an answer with this key settles: the window's own entry (owed first, then optional), else an
 * optional one a recent finished window left (`leftovers`, newest first), else undefined (owed by nothing).
 * A superseded REQ's answer shares its key with the REQ that replaced it: when the superseded one was
 * answered first (before its replacement was read), it settled the replacement's entry, and the window
 * could finish before the replacement's own answer came, which then arrives in a later window.
 */
export const settleAnswer = <E extends { req: boolean }>(owed: OwedAnswers<E> | undefined, leftovers: readonly Map<string, E[]>[], key: string): E | undefined => {
  const entry = owed?.get(key)
  const own = entry?.required.shift() ?? entry?.optional.shift()
  if (own) return own
  for (const left of leftovers) {
    const late = left.get(key)?.shift()
    if (late) return late
  }
  return undefined
}

/** The leftovers once a window finishes: its unanswered optional entries first, at most LEFTOVER_WINDOWS windows' worth. */
export const carryOver = <E extends { req: boolean }>(owed: OwedAnswers<E>, leftovers: readonly Map<string, E[]>[]): Map<string, E[]>[] => {
  const left = new Map([...owed].filter(([, e]) => e.optional.length > 0).map(([key, e]) => [key, e.optional]))
  return [left, ...leftovers].slice(0, LEFTOVER_WINDOWS)
}

/** A window in flight: what it still owes, and how to finish it. */
interface Window {
  frames: Frame[]
  owed: OwedAnswers<Entry>
  notices: Frame[]
  noticesSeen: number
  synced: boolean
  pongs: number
  pongsSeen: number
  /** The frame after which the relay should close the connection, and with which code. */
  closing: { frame: Frame; code: number } | undefined
  finish(): void
}

/** A failure's kind, with numbers blanked so that one defect is one kind. */
const kindOf = (text: string): string => text.replace(/\d+/g, 'N').slice(0, 160)

/** The smallest frame of a list (by bytes). */
const smallest = (frames: readonly Frame[]): Frame | undefined => [...frames].sort((a, b) => a.data.length - b.data.length)[0]

/** One fuzzing connection: sends windows of frames and checks what comes back against what they are owed. */
class Lane {
  readonly state: LaneState = { challenge: undefined, authed: undefined, proved: new Set(), open: new Set() }
  /** Event ids answered OK true on this connection (the probe's check). */
  readonly accepted = new Set<string>()
  /** Event ids received, by subscription id (the probe's check). */
  readonly delivered = new Map<string, string[]>()
  private ws: WebSocket | undefined
  private window: Window | undefined
  /** What the last finished windows may still be answered for (carryOver, settleAnswer). */
  private leftovers: Map<string, Entry[]>[] = []

  constructor(
    private readonly run: RunState,
    private readonly signer: Signer,
    /** Authenticate as this key on every connect (hardened lanes). */
    private readonly authKey: Key | undefined,
  ) {}

  get isOpen(): boolean {
    return this.ws?.readyState === WebSocket.OPEN
  }

  /** Opens a fresh connection (and authenticates, when the lane does). */
  async connect(): Promise<void> {
    this.ws?.terminate()
    this.state.challenge = undefined
    this.state.authed = undefined
    this.state.proved.clear()
    this.state.open.clear()
    this.leftovers = []
    const ws = new WebSocket(this.run.url, { perMessageDeflate: false, skipUTF8Validation: true, handshakeTimeout: 10_000 })
    // Listeners first: the relay's AUTH challenge may arrive in the same read as the handshake's answer.
    ws.on('message', (data: Buffer, isBinary) => this.onMessage(data, isBinary))
    ws.on('pong', () => this.onPong())
    ws.on('close', (code, reason) => this.onClose(ws, code, reason.toString('utf8')))
    this.ws = ws
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve())
      ws.once('error', reject)
    })
    ws.on('error', () => undefined) // 'close' follows
    if (this.authKey) await this.authenticate(this.authKey)
  }

  /** Records that the relay, still running, refused a connection. */
  refused(error: string): void {
    this.run.findings.add('the relay refused a connection', 0, '(connect)', clip(error, 200))
  }

  private async authenticate(key: Key): Promise<void> {
    for (let waited = 0; this.state.challenge === undefined && waited < 5000; waited += 20) await new Promise(resolve => setTimeout(resolve, 20))
    const challenge = this.state.challenge
    if (challenge === undefined) return this.run.findings.add('hardened relay sent no AUTH challenge on connect', 0, '(connect)')
    const event = signWith(this.signer, key, { kind: 22242, tags: [['relay', this.run.publicUrl], ['challenge', challenge]] })
    await this.send([{ ...json('handshake: AUTH', ['AUTH', event]), authAs: key }])
    if (this.state.authed !== key) this.run.findings.add('a valid AUTH was not accepted', 0, '(handshake)')
  }

  /** Sends a window of frames and the sync frame; resolves once everything owed has come (or the connection closed, or time ran out). */
  send(frames: Frame[]): Promise<void> {
    const ws = this.ws
    if (!ws) return Promise.resolve()
    const window = this.openWindow(frames)
    return new Promise<void>(resolve => {
      const timer = setTimeout(() => this.timedOut(window), WINDOW_TIMEOUT_MS)
      window.finish = () => {
        clearTimeout(timer)
        if (this.window === window) this.window = undefined
        this.leftovers = carryOver(window.owed, this.leftovers)
        resolve()
      }
      for (const frame of frames) this.transmit(ws, frame)
      if (!window.closing) ws.send(SYNC, { binary: false })
      this.check(window)
    })
  }

  private transmit(ws: WebSocket, frame: Frame): void {
    this.run.frames.add(frame.kind.replace(/:.*/, ''))
    if (frame.pings) {
      this.run.pongs.wanted += frame.pings
      for (let i = 0; i < frame.pings; i++) ws.ping(`fuzz ${i}`)
      return
    }
    ws.send(frame.data, { binary: frame.binary === true })
  }

  private openWindow(frames: Frame[]): Window {
    const window: Window = { frames, owed: new Map(), notices: [], noticesSeen: 0, synced: false, pongs: 0, pongsSeen: 0, closing: undefined, finish: () => undefined }
    for (const frame of frames) {
      window.pongs += frame.pings ?? 0
      const owed = owedBy(frame, this.run.limits)
      if ('closes' in owed) window.closing = { frame, code: owed.closes }
      else if ('notice' in owed) window.notices.push(frame)
      if ('cancels' in owed && owed.cancels !== undefined) this.cancel(window, owed.cancels)
      if ('key' in owed) this.expect(window, owed.key, { frame, req: owed.cancels !== undefined })
      if ('key' in owed && owed.key.startsWith('ok:')) this.run.sentIds.set(owed.key.slice(3).toLowerCase(), (this.run.sentIds.get(owed.key.slice(3).toLowerCase()) ?? 0) + 1)
    }
    this.window = window
    return window
  }

  /** A later REQ or CLOSE of `subId`: an earlier REQ of it may go unanswered (its backfill is dropped). */
  private cancel(window: Window, subId: string): void {
    if (!window.owed.has(`sub:${subId}`)) return
    supersede(window.owed, subId)
    this.state.open.delete(subId)
  }

  private expect(window: Window, key: string, e: Entry): void {
    const entry = window.owed.get(key) ?? { required: [], optional: [] }
    entry.required.push(e)
    window.owed.set(key, entry)
  }

  /** The frame an answer with this key settles, or undefined when nothing owed it. */
  private settle(key: string): Frame | undefined {
    const own = settleAnswer(this.window?.owed, [], key)
    if (own) return own.frame
    const late = settleAnswer(undefined, this.leftovers, key)
    if (late) this.run.answers.add('(late: the answer to a REQ superseded in an earlier window)')
    return late?.frame
  }

  private check(window: Window): void {
    if (window.closing) return // finished by the close
    const owing = [...window.owed.values()].some(e => e.required.length > 0)
    if (window.synced && !owing && window.noticesSeen >= window.notices.length && window.pongsSeen >= window.pongs) window.finish()
  }

  /** Records a failure: its kind, the smallest frame that may have caused it, and the candidates for the replay. */
  private fail(kind: string, frames: readonly Frame[], detail = ''): void {
    const frame = smallest(frames)
    this.run.findings.add(kind, frame?.data.length ?? 0, frame ? `${frame.kind}: ${clip(frame.data, 200)}` : '(no frame)', detail)
    if (!this.run.candidates.has(kind) && frames.length > 0)
      this.run.candidates.set(kind, { frames: [...frames], window: [...(this.window?.frames ?? frames)], authed: this.authKey !== undefined })
  }

  private onMessage(data: Buffer, isBinary: boolean): void {
    const window = this.window
    const answer = readAnswer(data, isBinary)
    if ('malformed' in answer) return this.fail(`malformed answer: ${answer.malformed}`, window?.frames ?? [], `answer: ${clip(data, 200)}`)
    const { verb, parts } = answer
    if (verb === 'AUTH') return void (this.state.challenge = parts[0] as string)
    if (verb === 'EVENT') return this.onEvent(parts[0] as string, parts[1] as NostrEvent, data)
    if (verb === 'NOTICE') return this.onNotice(parts[0] as string)
    const key = verb === 'OK' ? `ok:${parts[0] as string}` : `sub:${parts[0] as string}`
    const frame = this.settle(key)
    const message = verb === 'OK' ? (parts[2] as string) : verb === 'CLOSED' ? (parts[1] as string) : ''
    this.run.answers.add(verb === 'OK' ? `OK ${parts[1] as boolean} ${message.replace(/:[\s\S]*/, '') || '(stored)'}` : verb === 'CLOSED' ? `CLOSED ${message.replace(/:[\s\S]*/, '')}` : verb)
    if (!frame) return this.fail(`${verb} for nothing this connection sent in the window`, window?.frames ?? [], `answer: ${clip(data, 200)}`)
    this.onAnswer(verb, parts, frame, message)
    if (window) this.check(window)
  }

  private onAnswer(verb: string, parts: unknown[], frame: Frame, message: string): void {
    // A scan stopped by db_query_timeout is a documented limit (the stored events found are sent, then
    // CLOSED "error: … narrow the filter"), not a failure: counted among the answers, not failed.
    if (message.startsWith('error:') && !QUERY_TIMEOUT.test(message)) this.fail(`"error:" ${verb}: ${kindOf(message)}`, [frame])
    if (verb === 'EOSE') this.state.open.add(parts[0] as string)
    if (verb === 'CLOSED') this.state.open.delete(parts[0] as string)
    if (verb !== 'OK') return
    const id = (parts[0] as string).toLowerCase()
    if (parts[1] !== true) {
      if (!message.startsWith('duplicate:') && !frame.kind.startsWith('auth') && this.run.refused.size < 50_000) this.run.refused.set(id, `${frame.kind} → ${clip(message, 80)}`)
      return
    }
    this.accepted.add(id)
    this.run.acceptedIds.add(id)
    if (frame.authAs) {
      this.state.authed = frame.authAs
      this.state.proved.add(frame.authAs.pubkey)
    } else if (message === '' && this.run.stored.length < 5000) this.run.stored.push(id)
  }

  /** A private kind (auth.private_kinds' default) goes only to its author or a p-tagged recipient, proved by NIP-42. */
  private onEvent(subId: string, event: NostrEvent, data: Buffer): void {
    this.run.answers.add('EVENT')
    const ids = this.delivered.get(subId)
    if (ids) ids.push(event.id)
    else if (this.delivered.size < 100) this.delivered.set(subId, [event.id])
    if (!PRIVATE_KINDS.has(event.kind)) return
    const proved = this.state.proved
    if (proved.has(event.pubkey) || event.tags.some(t => t[0] === 'p' && proved.has(t[1] ?? ''))) return
    this.fail(`private kind ${event.kind} delivered to a connection not proved as its author or recipient`, this.window?.frames ?? [], `answer: ${clip(data, 200)}`)
  }

  private onNotice(message: string): void {
    const window = this.window
    this.run.answers.add(`NOTICE ${message === SYNC_NOTICE ? '(sync)' : message.replace(/:[\s\S]*/, '')}`)
    if (!window) return this.fail('NOTICE outside any window', [], `answer: ${clip(message)}`)
    if (message === SYNC_NOTICE && !window.synced) {
      window.synced = true
      return this.check(window)
    }
    window.noticesSeen++
    if (window.noticesSeen > window.notices.length) this.fail('NOTICE for nothing this connection sent in the window', window.frames, `answer: ${clip(message)}`)
    else if (message.startsWith('error:')) this.fail(`"error:" NOTICE: ${kindOf(message)}`, window.notices)
    this.check(window)
  }

  private onPong(): void {
    this.run.pongs.got++
    if (!this.window) return
    this.window.pongsSeen++
    this.check(this.window)
  }

  private onClose(ws: WebSocket, code: number, reason: string): void {
    if (ws !== this.ws) return
    this.run.closes.add(String(code))
    const window = this.window
    if (!window) return this.fail(`connection closed by the relay between windows (${code})`, [], reason)
    if (code === 1008 && reason.startsWith('outbound buffer exceeded')) this.run.slowDrops++
    else if (window.closing?.code !== code) this.fail(`connection closed by the relay (${code}${window.closing ? `, expected ${window.closing.code}` : ''})`, window.frames, `reason: ${clip(reason)}`)
    window.finish()
  }

  private timedOut(window: Window): void {
    if (window.closing) this.fail(`connection not closed (expected ${window.closing.code})`, [window.closing.frame])
    else if (!window.synced) this.fail(`window not read within ${WINDOW_TIMEOUT_MS / 1000} s`, window.frames)
    for (const [key, entry] of window.owed)
      if (entry.required.length > 0) this.fail(`no ${key.startsWith('ok:') ? 'OK' : 'EOSE/COUNT/CLOSED'} for ${entry.required[0]?.frame.kind.replace(/:.*/, '')}`, entry.required.map(e => e.frame))
    if (window.noticesSeen < window.notices.length) this.fail('NOTICE owed but not sent', window.notices)
    if (window.pongsSeen < window.pongs) this.fail(`${window.pongs - window.pongsSeen} of ${window.pongs} pings not answered`, window.frames.filter(f => f.pings))
    // The connection may be out of step now (late answers): the next window starts on a fresh one.
    this.ws?.terminate()
    window.finish()
  }

  async close(): Promise<void> {
    const ws = this.ws
    this.ws = undefined
    if (!ws || ws.readyState === WebSocket.CLOSED) return
    await new Promise<void>(resolve => {
      const timer = setTimeout(() => (ws.terminate(), resolve()), 1000)
      ws.once('close', () => (clearTimeout(timer), resolve()))
      ws.close(1000)
    })
  }
}

// ---------------------------------------------------------------------------------------------------
// A run: one relay configuration
// ---------------------------------------------------------------------------------------------------

/** The relay configurations fuzzed: its defaults, or NIP-42 required and the rate limiter on. */
export type SetupName = 'permissive' | 'hardened'

interface Setup {
  name: SetupName
  env: Record<string, string>
  publicUrl: string
}

/** The generator of one lane: its own random source, drawing windows of frames (a closing frame ends its window). */
const windowOf = (g: Gen, size: number): Frame[] => {
  const frames: Frame[] = []
  while (frames.length < size) {
    const frame = g.random.weighted(GENERATORS)(g)
    frames.push(frame)
    if (frame.data.length > g.limits.maxPayload || frame.kind === 'invalid UTF-8') break
  }
  return frames
}

/** Opens the lane's connection; false when that fails (a relay that exited is reported as such after the run). */
const connected = async (lane: Lane, relay: RelayProcess): Promise<boolean> => {
  try {
    await lane.connect()
    return true
  } catch (error) {
    if (isAlive(relay.pid)) lane.refused(String(error))
    return false
  }
}

/** Drives one lane: windows until its share of frames is sent, the relay is gone or time is up. */
const drive = async (lane: Lane, g: Gen, share: number, deadline: number, relay: RelayProcess): Promise<number> => {
  let sent = 0
  while (sent < share && performance.now() < deadline && isAlive(relay.pid)) {
    if (!lane.isOpen && !(await connected(lane, relay))) break
    const frames = windowOf(g, Math.min(share - sent, g.random.between(1, MAX_WINDOW)))
    await lane.send(frames)
    sent += frames.length
  }
  await lane.close()
  return sent
}

/** NIP-11's max_message_length (the relay reads frames up to twice that, at least 64 KiB; main.ts). */
const readLimits = async (relay: RelayProcess): Promise<Limits> => {
  const res = await fetch(`http://127.0.0.1:${relay.port}/`, { headers: { Accept: 'application/nostr+json' } })
  const doc = (await res.json()) as { limitation?: { max_message_length?: number } }
  const maxMessage = doc.limitation?.max_message_length ?? 1_048_576
  return { maxMessage, maxPayload: Math.max(2 * maxMessage, 65_536) }
}

/** A fresh connection gets EOSE for a REQ and OK true for a valid EVENT. */
const probe = async (run: RunState, signer: Signer, key: Key, authenticate: boolean): Promise<string> => {
  const lane = new Lane(run, signer, authenticate ? key : undefined)
  const started = performance.now()
  try {
    await lane.connect()
    const event = signWith(signer, key, { kind: 1, content: `probe ${started}` })
    await lane.send([json('probe REQ', ['REQ', 'probe', { kinds: [1], limit: 5 }]), json('probe EVENT', ['EVENT', event])])
    const ok = lane.state.open.has('probe') && lane.accepted.has(event.id)
    if (!ok) run.findings.add('probe: a fresh connection did not get EOSE and OK true', 0, '(probe)')
    return `${ok ? 'EOSE and OK true' : 'FAILED'} in ${((performance.now() - started) / 1000).toFixed(2)} s`
  } catch (error) {
    run.findings.add('probe: could not connect', 0, '(probe)', String(error))
    return 'FAILED'
  } finally {
    await lane.close()
  }
}

/** What the probe connection saw while the lanes fuzzed: its round trips and how long each took (ms). */
interface ProbeReport {
  rounds: number
  failed: number
  latencies: number[]
}

/** Pause between probe rounds: a client going about its business, not a load of its own. */
const PROBE_PAUSE_MS = 20

/** One probe round: an EVENT answered OK true, then a REQ for its id answered with it and EOSE, then a CLOSE; what went wrong, if anything. */
const probeRound = async (lane: Lane, signer: Signer, key: Key, n: number): Promise<string | undefined> => {
  const event = signWith(signer, key, { kind: 1, content: `probe round ${n}` })
  const sub = `probe-${n}`
  await lane.send([json('probe EVENT', ['EVENT', event])])
  if (!lane.accepted.has(event.id)) return 'EVENT not answered OK true'
  await lane.send([json('probe REQ', ['REQ', sub, { ids: [event.id] }])])
  const got = lane.delivered.get(sub) ?? []
  lane.delivered.delete(sub)
  if (!lane.state.open.has(sub) || got.length !== 1 || got[0] !== event.id) return `REQ for the event answered with ${got.length} events${lane.state.open.has(sub) ? ' and EOSE' : ', no EOSE'}`
  await lane.send([json('probe CLOSE', ['CLOSE', sub])])
  return undefined
}

/**
 * A connection of its own doing round trips for as long as the lanes fuzz (probeRound): fuzzing the others
 * must not disturb it. A wrong answer, none within the window timeout, or a close is a finding.
 */
const probeDuring = async (run: RunState, signer: Signer, key: Key, authenticate: boolean, fuzzing: () => boolean): Promise<ProbeReport> => {
  const scratch = scratchRun(run)
  const lane = new Lane(scratch, signer, authenticate ? key : undefined)
  const report: ProbeReport = { rounds: 0, failed: 0, latencies: [] }
  const fail = (what: string): void => {
    report.failed++
    run.findings.add(`probe connection: ${kindOf(what)}`, 0, '(a probe round trip during the fuzzing)', clip(what, 200))
  }
  try {
    while (fuzzing()) {
      if (!lane.isOpen) {
        if (report.rounds > 0) fail('its connection was closed')
        await lane.connect()
      }
      const started = performance.now()
      const problem = await probeRound(lane, signer, key, report.rounds++)
      if (problem) fail(problem)
      else report.latencies.push(performance.now() - started)
      await new Promise(resolve => setTimeout(resolve, PROBE_PAUSE_MS))
    }
  } catch (error) {
    fail(`could not connect: ${String(error)}`)
  } finally {
    await lane.close()
  }
  for (const [kind] of scratch.findings.entries()) fail(kind)
  return report
}

/** Looks every refused id up in the store (its LMDB, opened beside the running relay, as its query workers do); none may be there. */
const checkRefused = async (run: RunState, relay: RelayProcess): Promise<string> => {
  const store = EventStore.open(join(relay.dataDir, 'lmdb'))
  let found = 0
  let twice = 0
  try {
    for (const [id, kind] of run.refused) {
      if ((run.sentIds.get(id) ?? 0) > 1) twice++
      if (run.acceptedIds.has(id) || (run.sentIds.get(id) ?? 0) > 1 || store.get(id) === undefined) continue
      found++
      run.findings.add(`an event answered OK false is in the store: ${kind.replace(/ →.*/, '')}`, 0, id, kind)
    }
  } finally {
    await store.close()
  }
  return `${run.refused.size.toLocaleString('en-US')} ids answered OK false (not duplicate) looked up in the store: ${found} found (${twice} sent more than once not counted)`
}

/** Sends `frames` as one window on a fresh connection; the kinds of failure that showed. */
/** A run's state for a connection outside the fuzzing lanes: findings and counters of its own, the rest shared. */
const scratchRun = (run: RunState): RunState => ({ ...run, findings: new Findings(), candidates: new Map(), frames: new Counter(), answers: new Counter(), closes: new Counter(), pongs: { wanted: 0, got: 0 } })

const replayOnce = async (run: RunState, signer: Signer, authKey: Key | undefined, frames: Frame[]): Promise<string[]> => {
  const scratch = scratchRun(run)
  const lane = new Lane(scratch, signer, authKey)
  try {
    await lane.connect()
    await lane.send(frames)
  } catch {
    return []
  } finally {
    await lane.close()
  }
  return scratch.findings.entries().map(([kind]) => kind)
}

/** Replays each failure's frames on a fresh connection (each alone, smallest first, then its whole window); what reproduced, by kind. */
const replay = async (run: RunState, signer: Signer, authKey: Key): Promise<Map<string, string>> => {
  const out = new Map<string, string>()
  for (const [kind, { frames, window, authed }] of run.candidates) {
    const key = authed ? authKey : undefined
    for (const frame of [...frames].sort((a, b) => a.data.length - b.data.length).slice(0, 6)) {
      if (!(await replayOnce(run, signer, key, [frame])).includes(kind)) continue
      out.set(kind, `reproduced alone by ${frame.kind}: ${clip(frame.data, 200)}`)
      break
    }
    if (out.has(kind)) continue
    if (window.length > 1 && (await replayOnce(run, signer, key, window)).includes(kind)) {
      out.set(kind, `reproduced by its window of ${window.length} frames, not by one alone`)
      continue
    }
    // Under load: the smallest frame on LANES fresh connections at once.
    const frame = smallest(frames) as Frame
    const together = await Promise.all(Array.from({ length: LANES }, () => replayOnce(run, signer, key, [frame])))
    out.set(kind, together.some(kinds => kinds.includes(kind))
      ? `reproduced by ${LANES} fresh connections sending it at once (load-dependent): ${frame.kind}: ${clip(frame.data, 200)}`
      : 'not reproduced on a fresh connection (alone, with its window, or 4 at once): depends on earlier frames or on load')
  }
  return out
}

/** Six keys from the seed; lanes 0 and 1 authenticate as keys 0 and 1 (hardened). */
const seededKeys = (random: Random, signer: Signer): Key[] =>
  Array.from({ length: 6 }, () => {
    const secret = random.bytes(32)
    return { secret, pubkey: signer.publicKey(secret) }
  })

/** Runs the lanes side by side, each with its share of the frames and a random source forked from the seed. */
const fuzzLanes = async (run: RunState, relay: RelayProcess, setup: Setup, opts: RelayFuzzOptions & { deadline: number }, keys: Key[], random: Random): Promise<number> => {
  const signer = loadSigner()
  const deadline = opts.deadline
  const lanes = Array.from({ length: LANES }, (_, i) => new Lane(run, signer, setup.name === 'hardened' && i < AUTHED_LANES ? keys[i] : undefined))
  const shares = lanes.map((_, i) => Math.floor(opts.frames / LANES) + (i < opts.frames % LANES ? 1 : 0))
  const sent = await Promise.all(
    lanes.map((lane, i) => {
      const serial = (): number => (run.serials[i] = (run.serials[i] ?? 0) + 1) * LANES + i
      const g: Gen = { random: random.fork(), signer, keys, stored: run.stored, limits: run.limits, publicUrl: setup.publicUrl, lane: lane.state, serial }
      return drive(lane, g, shares[i] as number, deadline, relay)
    }),
  )
  return sent.reduce((a, b) => a + b, 0)
}

/** What a run measured besides its counters. */
interface Outcome {
  total: number
  seconds: number
  memory: { before: Memory | undefined; warm: Memory | undefined; after: Memory | undefined }
  storeMiB: number
  probe: string
  during: ProbeReport
  refused: string
  reproduced: Map<string, string>
  stop: Stopped
}

const mibText = (n: number | undefined): string => (n === undefined || Number.isNaN(n) ? '-' : `${n.toFixed(0)} MiB`)

const printRun = (run: RunState, relay: RelayProcess, o: Outcome, maxGrowthMiB: number): number => {
  fuzzRow('sent', `${o.total.toLocaleString('en-US')} frames in ${sec(o.seconds)}: ${run.frames.text()}`)
  fuzzRow('answers', run.answers.text(40))
  fuzzRow('closes', `${run.closes.text() || 'none'} (expected: 1009 after a frame past maxPayload, 1007 after invalid UTF-8, 1008 when the fuzzer read too slowly: ${run.slowDrops})`)
  fuzzRow('pings', `${run.pongs.got.toLocaleString('en-US')} pongs for ${run.pongs.wanted.toLocaleString('en-US')} pings`)
  const { before, warm, after } = o.memory
  const growth = (a: Memory | undefined, b: Memory | undefined) => mibText(a && b ? b.anon - a.anon : undefined)
  fuzzRow('memory', `anonymous RSS after forced GC: before ${mibText(before?.anon)}, halfway ${mibText(warm?.anon)}, after ${mibText(after?.anon)}: growth ${growth(before, after)} (bound ${maxGrowthMiB} MiB; second half ${growth(warm, after)})`)
  fuzzRow('', `RSS after ${mibText(after?.rss)}, peak ${mibText(after?.peak)}; mapped LMDB pages ${mibText(after?.mapped)} of a ${o.storeMiB.toFixed(0)} MiB store (not counted)`)
  const logged = [...new Set(relay.warnings.map(w => `${w.severity} ${clip(w.message, 100)}`))].slice(0, 5).join(' | ')
  fuzzRow('relay log', `${relay.warningCount} lines at WARN or above${logged ? `: ${logged}` : ''}`)
  const rtt = summarize(o.during.latencies)
  fuzzRow('probe', `during: ${o.during.rounds.toLocaleString('en-US')} round trips (EVENT→OK, REQ→EVENT+EOSE), ${o.during.failed} failed; p50 ${ms(rtt.p50)}, p99 ${ms(rtt.p99)}, max ${ms(rtt.max)}`)
  fuzzRow('', `after: ${o.probe}`)
  fuzzRow('refused', o.refused)
  fuzzRow('stopped', `exit ${o.stop.code ?? o.stop.signal} in ${sec(o.stop.seconds)}`)
  for (const [kind, input] of o.reproduced) {
    fuzzRow('replay', kind)
    fuzzRow('', `  ${input}`)
  }
  return printFindings(run.findings, `${o.total.toLocaleString('en-US')} hostile frames, 0 crashes, every answer well-formed and prefixed, no "error:", nothing refused stored, the probe undisturbed, memory within bound`)
}

/** What `fuzzRelay` takes. */
export interface RelayFuzzOptions {
  seed: number
  /** Frames per configuration. */
  frames: number
  /** Time cap per configuration: a run that does not send every frame within it fails. */
  maxSeconds: number
  /** The compiled CLI under test (CLI: this checkout's). */
  cli: string
  /** Most the relay's anonymous RSS may grow over a run, measured after forced garbage collections (memory.ts). */
  maxGrowthMiB: number
  /** Configurations to run (both by default). */
  setups?: SetupName[]
}

/** What one configuration's run found. */
export interface RelayFuzzResult {
  setup: SetupName
  frames: number
  /** Each kind of failure with its count and smallest input; empty when the run passed. */
  failures: string[]
  /** Anonymous RSS growth after forced garbage collections, MiB (undefined when not measured). */
  growthMiB: number | undefined
  probeRounds: number
}

const newRun = (relay: RelayProcess, limits: Limits, publicUrl: string): RunState => ({
  url: relay.url, limits, publicUrl, findings: new Findings(), frames: new Counter(), answers: new Counter(), closes: new Counter(),
  pongs: { wanted: 0, got: 0 }, candidates: new Map(), stored: [], acceptedIds: new Set(), refused: new Map(), sentIds: new Map(), serials: [], slowDrops: 0,
})

/**
 * The memory check over the whole run. The relay warms up to a plateau (worker threads' heaps, which the
 * forced collection does not reach, the backfill slabs, compiled code; MEASURED_MALLOC_ENV keeps the
 * allocator from holding what large frames used): hence the bound (DEFAULT_MAX_GROWTH_MIB); the reading
 * halfway shows the plateau. Growth past the bound, or no measurement of a live relay, is a finding.
 */
const checkMemory = (run: RunState, before: Memory | undefined, after: Memory | undefined, maxGrowthMiB: number): number | undefined => {
  if (!before || !after) return void run.findings.add('memory not measured (no /proc, or the forced garbage collection did not answer)', 0, '(memory)')
  const growth = after.anon - before.anon
  if (growth > maxGrowthMiB) run.findings.add(`memory: anonymous RSS grew by more than ${maxGrowthMiB} MiB over the run`, 0, '(memory)', `${before.anon.toFixed(0)} → ${after.anon.toFixed(0)} MiB after forced garbage collections`)
  return growth
}

/** Fuzzes `frames` over the lanes with the probe connection beside them; frames sent and the probe's report. */
const fuzzWithProbe = async (run: RunState, relay: RelayProcess, setup: Setup, opts: RelayFuzzOptions & { deadline: number }, frames: number, keys: Key[], random: Random): Promise<[number, ProbeReport]> => {
  let fuzzing = true
  const probing = probeDuring(run, loadSigner(), keys[0] as Key, setup.name === 'hardened', () => fuzzing && isAlive(relay.pid))
  const sent = await fuzzLanes(run, relay, setup, { ...opts, frames }, keys, random).finally(() => (fuzzing = false))
  return [sent, await probing]
}

/** One configuration: start the relay, fuzz it over the lanes with the probe beside them, check, replay the failures, report. */
const fuzzOnce = async (setup: Setup, opts: RelayFuzzOptions): Promise<RelayFuzzResult> => {
  const relay = await startRelayProcess({ cli: opts.cli, env: { ...process.env, ...setup.env }, logLevel: 'warn', gc: true })
  const offInterrupt = stopOnInterrupt(relay.stop)
  let stop: Stopped | undefined
  try {
    const limits = await readLimits(relay)
    const run = newRun(relay, limits, setup.publicUrl)
    const random = seededRandom(opts.seed)
    const signer = loadSigner()
    const keys = seededKeys(random, signer)
    const hardened = setup.name === 'hardened'
    console.log()
    console.log(`relay fuzz (${setup.name}): seed ${opts.seed}, ${opts.frames.toLocaleString('en-US')} frames over ${LANES} connections${hardened ? ` (${AUTHED_LANES} authenticated)` : ''} and a probe, cap ${opts.maxSeconds} s`)
    fuzzRow('relay', `pid ${relay.pid}, ${relay.url}, max_message_length ${limits.maxMessage.toLocaleString('en-US')}`)
    fuzzRow('config', Object.entries(setup.env).map(([k, v]) => `${k}=${v}`).join(' ') || 'defaults (no RELAY_* set by the fuzzer)')
    const before = await relay.settledMemory()
    const started = performance.now()
    const half = Math.ceil(opts.frames / 2)
    const capped = { ...opts, deadline: started + opts.maxSeconds * 1000 }
    const [first, probed1] = await fuzzWithProbe(run, relay, setup, capped, half, keys, random)
    const warm = isAlive(relay.pid) ? await relay.settledMemory() : undefined
    const [second, probed2] = await fuzzWithProbe(run, relay, setup, capped, opts.frames - half, keys, random)
    const total = first + second
    const during: ProbeReport = { rounds: probed1.rounds + probed2.rounds, failed: probed1.failed + probed2.failed, latencies: [...probed1.latencies, ...probed2.latencies] }
    const seconds = (performance.now() - started) / 1000
    const alive = isAlive(relay.pid)
    if (!alive) run.findings.add('the relay process exited', 0, '(see the replayed frames)')
    if (total < opts.frames && alive) run.findings.add(`time cap: ${total} of ${opts.frames} frames sent in ${opts.maxSeconds} s`, 0, '(throughput)')
    const probed = alive ? await probe(run, signer, keys[0] as Key, hardened) : 'skipped (relay gone)'
    const after = alive ? await relay.settledMemory() : undefined
    const growthMiB = alive ? checkMemory(run, before, after, opts.maxGrowthMiB) : undefined
    const reproduced = alive && run.candidates.size > 0 ? await replay(run, signer, keys[0] as Key) : new Map<string, string>()
    const refused = alive ? await checkRefused(run, relay) : 'not checked (relay gone)'
    const errors = relay.warnings.filter(w => !/^WARN/i.test(w.severity))
    if (errors.length > 0) run.findings.add(`relay logged ${errors.length} lines at ERROR or above (or not as JSON)`, 0, clip(errors[0]?.message ?? '', 200))
    const storeMiB = relay.storeMiB()
    stop = await relay.stop()
    printRun(run, relay, { total, seconds, memory: { before, warm, after }, storeMiB, probe: probed, during, refused, reproduced, stop }, opts.maxGrowthMiB)
    const failures = run.findings.entries().map(([kind, f]) => `${f.count} × ${kind}: ${f.input}${f.detail ? ` (${f.detail})` : ''}`)
    return { setup: setup.name, frames: total, failures, growthMiB, probeRounds: during.rounds }
  } finally {
    offInterrupt()
    if (!stop) await relay.stop()
  }
}

/** Fuzzes the relay in each configuration (permissive: its defaults; hardened: NIP-42 required, rate limiter on), one after the other. */
export const fuzzRelay = async (opts: RelayFuzzOptions): Promise<RelayFuzzResult[]> => {
  // relay-process.ts picks the relay's port itself, after the environment is fixed: the public URL names a
  // loopback port of its own (NIP-42 compares the AUTH relay tag with this setting, not with the socket).
  const publicUrl = `ws://127.0.0.1:${await freePort()}`
  const setups: Setup[] = [
    { name: 'permissive', env: {}, publicUrl },
    {
      name: 'hardened',
      env: { RELAY_AUTH__ENABLED: 'true', RELAY_AUTH__REQUIRED: 'true', RELAY_NETWORK__PUBLIC_URL: publicUrl, RELAY_RATE_LIMITER__ENABLED: 'true' },
      publicUrl,
    },
  ]
  const results: RelayFuzzResult[] = []
  for (const setup of setups.filter(s => !opts.setups || opts.setups.includes(s.name))) results.push(await fuzzOnce(setup, opts))
  return results
}
