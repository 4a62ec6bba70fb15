// What a query worker does (query-worker.ts), as functions of a store and the slab arena: REQ backfills
// framed straight from the store's bytes, and NIP-45 counts.
import { compileFilter, type Filter, type NostrEvent } from '@msr/nostr'
import { visibleTo } from '../policies/access.js'
import type { EventStore, Visit } from '../store/event-store.js'
import { readHead, storedCreatedAt, storedKind, storedPubkey, type StoredHead } from '../store/stored-json.js'
import type { Answer } from '@msr/workers'
import { claimSlab, releaseSlab, slabBuffer, type SlabArena } from './slabs.js'

/** A REQ backfill: each filter's newest `limits[i]` events, each once, framed with `prefix`. */
export interface BackfillRequest {
  op: 'req'
  filters: Filter[]
  limits: number[]
  prefix: string
  now: number
  timeoutMs: number
  /** Also write each frame's WebSocket header, so the whole answer is wire bytes for one socket write. */
  wire: boolean
  /** The pubkeys the connection authenticated as, and the kinds only their author or recipients may read. */
  viewer: string[]
  privateKinds: number[]
  /**
   * Per filter, whether it is read in pages (a history filter). Given, every filter that stops at its
   * limit reports its cursor, and the page ends where a paged one does: the filters after it wait for the
   * next page, so that each filter's events go out before the next filter's (README, REQ).
   */
  paged?: boolean[]
  /** Per filter, ids already sent (a history page's boundary): skipped, not counted against the limit. */
  skip?: string[][]
  /** What earlier pages of the same REQ sent: events they hold are skipped (and counted against the limit). */
  sentBefore?: SentBefore[]
}

/**
 * Events an earlier page sent, described by the filter that sent them rather than by their ids (a history
 * can be up to max_history events; this stays one entry per filter): every match of `filter`, or with
 * `cursor`, only those down to where it stopped (newer than its created_at, or at it among its ids).
 */
export interface SentBefore {
  filter: Filter
  cursor?: PageCursor | undefined
}

/** A NIP-45 count over the filters. */
export interface CountRequest {
  op: 'count'
  filters: Filter[]
  now: number
  timeoutMs: number
  viewer: string[]
  privateKinds: number[]
}

/**
 * The frames back to back, then the 32-byte ids, then where each frame ends (u32 LE), in a slab of the
 * shared arena (`slab` ≥ 0) or, when none was free or the answer outgrew it, in the transferred `bytes`.
 * The message itself stays small (no per-event array to clone). With `wire`, each frame carries its
 * WebSocket header, so the frames are ready for the socket as they are.
 */
export interface BackfillResponse {
  slab: number
  bytes: Uint8Array | undefined
  /** How many frames (events) the answer holds. */
  frames: number
  /** Where the last frame ends: the ids start here, the frame ends 32 bytes per frame later. */
  framesEnd: number
  timedOut: boolean
  wire: boolean
  /** Set when the event loop scanned it (QueryPool.backfill); absent from a worker's answer. */
  inline?: true
  /**
   * Per filter that stopped at its limit (more may match): the created_at of its last (oldest) event and
   * the ids sent at that created_at, where the next page starts (`until` it, skipping those).
   */
  cursors: (PageCursor | undefined)[]
}

/** Where a filter's next page starts. */
export interface PageCursor {
  createdAt: number
  ids: string[]
}

/** The count, or how far it got before the deadline. */
export interface CountResponse {
  count: number
  timedOut: boolean
}

export type QueryRequest = BackfillRequest | CountRequest
export type QueryResponse = BackfillResponse | CountResponse

const CLOSE = 0x5d // ']'

/** Bytes of the header of an unmasked server frame with this payload length (RFC 6455 §5.2). */
const headerBytes = (length: number): number => (length < 126 ? 2 : length < 65536 ? 4 : 10)

/**
 * Where a backfill is written: a slab of the shared arena while it fits, else a private buffer that
 * grows by doubling (its ArrayBuffer is its own, so it can be transferred).
 */
class Output {
  slab: number
  bytes: Buffer
  at = 0

  constructor(private readonly arena: SlabArena) {
    this.slab = claimSlab(arena)
    this.bytes = this.slab >= 0 ? slabBuffer(arena, this.slab) : Buffer.allocUnsafeSlow(1 << 16)
  }

  reserve(n: number): void {
    if (this.at + n <= this.bytes.length) return
    let size = this.bytes.length * 2
    while (size < this.at + n) size *= 2
    const grown = Buffer.allocUnsafeSlow(size)
    this.bytes.copy(grown, 0, 0, this.at)
    this.bytes = grown
    if (this.slab >= 0) releaseSlab(this.arena, this.slab)
    this.slab = -1
  }
}

/**
 * Copies `bytes` into `target` at `at`; returns where they end. TypedArray's set: Buffer's copy goes
 * through JavaScript checks to a native call, which costs more than the copy of one event.
 */
const put = (target: Buffer, bytes: Uint8Array, at: number): number => {
  target.set(bytes, at)
  return at + bytes.length
}

/** Writes a FIN text-frame header for `length` payload bytes (RFC 6455 §5.2, unmasked). */
const writeHeader = (out: Output, length: number): void => {
  const b = out.bytes
  b[out.at] = 0x81
  if (length < 126) {
    b[out.at + 1] = length
    out.at += 2
  } else if (length < 65536) {
    b[out.at + 1] = 126
    b.writeUInt16BE(length, out.at + 2)
    out.at += 4
  } else {
    b[out.at + 1] = 127
    b.writeBigUInt64BE(BigInt(length), out.at + 2)
    out.at += 10
  }
}

/**
 * A visit wrapper that skips private-kind events the viewer may not read. Filters that cannot match a
 * private kind skip the check; otherwise only private-kind candidates are parsed.
 */
const visibleOnly = (filter: Filter, request: { viewer: string[]; privateKinds: number[] }, visit: Visit): Visit => {
  const privateKinds = new Set(request.privateKinds)
  if (privateKinds.size === 0 || (filter.kinds && !filter.kinds.some(k => privateKinds.has(k)))) return visit
  const viewer = new Set(request.viewer)
  return (id, json) => {
    if (!privateKinds.has(storedKind(json))) return visit(id, json)
    const event = JSON.parse(json.toString('utf8')) as NostrEvent
    return visibleTo(privateKinds, viewer, event) ? visit(id, json) : true
  }
}

/**
 * The ids of the frames written so far, 32 bytes each (a scan's id is only valid during its visit), in one
 * buffer that every backfill of this thread reuses: a scan runs to its end synchronously.
 */
class FrameIds {
  private static bytes = Buffer.allocUnsafeSlow(32 * 512)
  count = 0

  add(id: Uint8Array): void {
    const at = 32 * this.count
    if (at + 32 > FrameIds.bytes.length) {
      const grown = Buffer.allocUnsafeSlow(2 * FrameIds.bytes.length)
      FrameIds.bytes.copy(grown, 0, 0, at)
      FrameIds.bytes = grown
    }
    FrameIds.bytes.set(id, at)
    this.count++
  }

  /** Copies the ids into `target` at `at`; returns where they end. */
  copyTo(target: Buffer, at: number): number {
    return put(target, FrameIds.bytes.subarray(0, 32 * this.count), at)
  }
}

/** Frames each event straight from the store's read buffer into one output, then appends the ids and frame ends. */
const backfill = (store: EventStore, arena: SlabArena, request: BackfillRequest): Answer<QueryResponse> => {
  const out = new Output(arena)
  const ids = new FrameIds()
  const ends: number[] = []
  const cursors: (PageCursor | undefined)[] = []
  let timedOut = false
  try {
    timedOut = scanInto(store, request, out, ids, ends, cursors)
  } catch (error) {
    // The worker dies of this (the pool answers the REQ and starts another); its slab must not die with it.
    if (out.slab >= 0) releaseSlab(arena, out.slab)
    throw error
  }
  const framesEnd = out.at
  out.reserve(36 * ids.count)
  out.at = ids.copyTo(out.bytes, out.at)
  for (const end of ends) out.at = out.bytes.writeUInt32LE(end, out.at)
  const bytes = out.slab >= 0 ? undefined : new Uint8Array(out.bytes.buffer, out.bytes.byteOffset, out.at)
  const body: BackfillResponse = { slab: out.slab, bytes, frames: ids.count, framesEnd, timedOut, wire: request.wire, cursors }
  return { body, transfer: bytes ? [bytes.buffer as ArrayBuffer] : [] }
}

/**
 * Each filter's events framed into `out` (ids and frame ends recorded, and where a filter that reached
 * its limit would go on), in request order, each event once; true when the deadline stopped it. With
 * `paged`, the page ends at the first paged filter that reached its limit.
 */
const scanInto = (store: EventStore, request: BackfillRequest, out: Output, ids: FrameIds, ends: number[], cursors: (PageCursor | undefined)[]): boolean => {
  const { filters, limits, prefix, now, timeoutMs, wire, paged } = request
  const prefixBytes = Buffer.from(prefix, 'utf8')
  // Within one page, ids; across pages, the earlier filters themselves (sentBefore).
  const sent = filters.length > 1 ? new Set<string>() : undefined
  const bounds = { now, deadline: performance.now() + timeoutMs, clock: () => performance.now() }
  for (let i = 0; i < filters.length; i++) {
    const filter = filters[i] as Filter
    let remaining = limits[i] ?? 0
    if (remaining <= 0) continue
    const skip = request.skip?.[i]?.length ? new Set(request.skip[i]) : undefined
    const sentEarlier = sentEarlierTest(request.sentBefore, filter)
    let cursor: PageCursor | undefined
    const timedOut = store.scan(filter, bounds, visibleOnly(filter, request, (id, json) => {
      const hex = skip || paged || sent || sentEarlier ? id.toString('hex') : ''
      if (skip?.has(hex)) return true
      if (paged) {
        const createdAt = storedCreatedAt(json)
        if (cursor?.createdAt !== createdAt) cursor = { createdAt, ids: [] }
        cursor.ids.push(hex)
      }
      if (sentEarlier?.(hex, json)) return --remaining > 0
      if (sent) {
        if (sent.has(hex)) return --remaining > 0
        sent.add(hex)
      }
      const payload = prefixBytes.length + json.length + 1
      out.reserve(payload + (wire ? headerBytes(payload) : 0))
      if (wire) writeHeader(out, payload)
      out.at = put(out.bytes, prefixBytes, out.at)
      out.at = put(out.bytes, json, out.at)
      out.bytes[out.at++] = CLOSE
      ends.push(out.at)
      ids.add(id)
      return --remaining > 0
    }))
    cursors[i] = remaining <= 0 ? cursor : undefined
    if (timedOut) return true
    if (paged?.[i] && cursors[i]) return false
  }
  return false
}

/**
 * Whether an earlier page sent a candidate of `filter` (by its hex id and stored bytes); undefined when
 * none of those filters can share an event with it. The created_at bound is tested first: a resumed
 * filter is among its own earlier ones, and its candidates are all past its cursor.
 */
const sentEarlierTest = (sentBefore: SentBefore[] | undefined, filter: Filter): ((hex: string, json: Buffer) => boolean) | undefined => {
  const tests = (sentBefore ?? []).filter(s => mayOverlap(s.filter, filter)).map(s => ({ matches: storedMatcher(s.filter), cursor: s.cursor }))
  if (tests.length === 0) return undefined
  return (hex, json) => {
    const createdAt = storedCreatedAt(json)
    for (const { matches, cursor } of tests) {
      const reached = cursor === undefined || createdAt > cursor.createdAt || (createdAt === cursor.createdAt && cursor.ids.includes(hex))
      if (reached && matches(hex, json)) return true
    }
    return false
  }
}

/** False when no event can match both filters (disjoint ids, authors, kinds or time ranges). */
const mayOverlap = (a: Filter, b: Filter): boolean =>
  !disjoint(a.ids, b.ids) &&
  !disjoint(a.authors, b.authors) &&
  !disjoint(a.kinds, b.kinds) &&
  (a.since ?? 0) <= (b.until ?? Infinity) &&
  (b.since ?? 0) <= (a.until ?? Infinity)

const disjoint = <T>(a: T[] | undefined, b: T[] | undefined): boolean => {
  if (a === undefined || b === undefined) return false
  const values = new Set(b)
  return !a.some(v => values.has(v))
}

/**
 * The whole filter as a test of a stored event (hex id, bytes): id, author, kind and created_at read from
 * the bytes, the event parsed only for a tag condition (or bytes not in the canonical layout).
 */
const storedMatcher = (filter: Filter): ((hex: string, json: Buffer) => boolean) => {
  const whole = compileFilter(filter)
  const parsed = (json: Buffer) => whole(JSON.parse(json.toString('utf8')) as NostrEvent)
  const ids = filter.ids && new Set(filter.ids)
  const authors = filter.authors && new Set(filter.authors)
  const kinds = filter.kinds && new Set(filter.kinds)
  const since = filter.since ?? 0
  const until = filter.until ?? Infinity
  const tags = Object.keys(filter.tags ?? {}).length > 0
  const head: StoredHead = { createdAt: 0, kind: 0 }
  return (hex, json) => {
    if (!readHead(json, head)) return parsed(json)
    if (ids && !ids.has(hex)) return false
    if (kinds && !kinds.has(head.kind)) return false
    if (head.createdAt < since || head.createdAt > until) return false
    if (authors && !authors.has(storedPubkey(json))) return false
    return !tags || parsed(json)
  }
}

/** NIP-45: distinct events matching any filter that the viewer may read. */
const count = (store: EventStore, request: CountRequest): CountResponse => {
  const bounds = { now: request.now, deadline: performance.now() + request.timeoutMs, clock: () => performance.now() }
  const seen = new Set<string>()
  for (const filter of request.filters) {
    const timedOut = store.scan(filter, bounds, visibleOnly(filter, request, id => (seen.add(id.toString('hex')), true)))
    if (timedOut) return { count: seen.size, timedOut }
  }
  return { count: seen.size, timedOut: false }
}

/**
 * Answers one query from `store` as of its latest commit: a REQ backfill written into a slab of `arena`
 * (or a transferable buffer), or a count.
 */
export const answerQuery = (store: EventStore, arena: SlabArena, request: QueryRequest): Answer<QueryResponse> => {
  store.refresh() // see every commit made up to now
  if (request.op === 'req') return backfill(store, arena, request)
  return { body: count(store, request) }
}
