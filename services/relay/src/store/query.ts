import { compareNewestFirst, compileFilter, isEmptyFilter, MAX_CREATED_AT, type Filter, type NostrEvent } from '@msr/nostr'
import type { Database } from 'lmdb'
import type { Databases } from './databases.js'
import { authorKindPrefix, hexBytes, isHashedValueKey, kindBytes, rangeEnd, rangeStart, SUFFIX_BYTES, tagPrefix } from './keys.js'
import { mergeBySuffix } from './merge.js'

/** The index a filter is answered from, and whether it alone decides every condition. */
export interface Plan {
  index: 'ids' | 'author_kind' | 'tag' | 'author' | 'kind' | 'time'
  /** Range prefixes in the chosen index (unused for ids). */
  prefixes: Buffer[]
  /** True when the index decides the whole filter, so stored JSON need not be parsed. */
  exact: boolean
}

/** A stored event, copied out of the store: its id and canonical JSON. */
export interface StoredEvent {
  id: string
  json: string
}

/**
 * Called for each matching event, newest first. `json` is the stored bytes and is only valid during
 * the call (it may be LMDB's shared read buffer): copy it to keep it. Return false to stop.
 */
export type Visit = (id: Buffer, json: Buffer) => boolean

/** Bounds on one query: how many events, the NIP-40 clock, and the scan deadline. */
export interface QueryBounds {
  limit: number
  /** Unix seconds; events with an expiration at or before it are not served. */
  now: number
  /** Stop scanning when `clock()` passes this (ms, same clock). */
  deadline: number
  clock: () => number
}

/** Events found, and whether the scan stopped at the deadline. */
export interface QueryResult {
  events: StoredEvent[]
  timedOut: boolean
}

const MAX_PREFIXES = 4096
const CHECK_EVERY = 64

/** Chooses the most selective index for a filter: ids, then author+kind, tag, author, kind, time. */
export const planFilter = (filter: Filter): Plan => {
  const tagEntries = Object.entries(filter.tags ?? {})
  const { authors, kinds } = filter
  if (filter.ids) return { index: 'ids', prefixes: [], exact: false }
  if (authors && kinds && authors.length * kinds.length <= MAX_PREFIXES) {
    const prefixes = authors.flatMap(a => kinds.map(k => authorKindPrefix(a, k)))
    return { index: 'author_kind', prefixes, exact: tagEntries.length === 0 }
  }
  if (tagEntries.length > 0) {
    const [letter, values] = tagEntries.reduce((a, b) => (b[1].length < a[1].length ? b : a))
    const prefixes = values.map(v => tagPrefix(letter, v))
    const exact = !authors && !kinds && tagEntries.length === 1 && !prefixes.some(p => isHashedValueKey(p.subarray(1)))
    return { index: 'tag', prefixes, exact }
  }
  if (authors) return { index: 'author', prefixes: authors.map(hexBytes), exact: !kinds }
  if (kinds) return { index: 'kind', prefixes: kinds.map(kindBytes), exact: true }
  return { index: 'time', prefixes: [Buffer.alloc(0)], exact: true }
}

const indexDb = (dbs: Databases, index: Plan['index']): Database<Buffer, Buffer> =>
  ({ author_kind: dbs.byAuthorKind, tag: dbs.byTag, author: dbs.byAuthor, kind: dbs.byKind, time: dbs.byTime, ids: dbs.byTime })[index]

/** Candidate ids (32 bytes) newest first; for an ids plan, the existing events sorted. */
function* candidates(dbs: Databases, filter: Filter, plan: Plan): Generator<Buffer> {
  const since = filter.since ?? 0
  const until = Math.min(filter.until ?? MAX_CREATED_AT, MAX_CREATED_AT)
  if (plan.index === 'ids') {
    const found = (filter.ids ?? [])
      .map(id => dbs.events.get(hexBytes(id)))
      .filter((json): json is Buffer => json !== undefined)
      .map(json => JSON.parse(json.toString('utf8')) as NostrEvent)
      .sort(compareNewestFirst)
    for (const e of found) yield hexBytes(e.id)
    return
  }
  const db = indexDb(dbs, plan.index)
  const ranges = plan.prefixes.map(p => db.getKeys({ start: rangeStart(p, until), end: rangeEnd(p, since) }))
  if (ranges.length === 1) {
    // One range is already in order: no merge. lmdb-js hands out a fresh Buffer per binary key.
    for (const key of ranges[0] as Iterable<Buffer>) yield key.subarray(key.length - 32)
    return
  }
  for (const suffix of mergeBySuffix(ranges, SUFFIX_BYTES)) yield suffix.subarray(4)
}

/** True when a stored event's NIP-40 expiration has passed. */
export const isExpired = (dbs: Databases, id: Buffer, now: number): boolean => {
  const expiration = dbs.expiryById.get(id)
  return expiration !== undefined && expiration.readUInt32BE(0) <= now
}

/**
 * Walks a filter's matching, unexpired events newest first, without copying them; returns true
 * when the scan stopped at the deadline. The hot path of REQ and COUNT.
 */
export const scanFilter = (dbs: Databases, filter: Filter, bounds: Omit<QueryBounds, 'limit'>, visit: Visit): boolean => {
  if (isEmptyFilter(filter)) return false
  const plan = planFilter(filter)
  const matches = plan.exact ? undefined : compileFilter(filter)
  // Checked once per scan: most stores hold no expiring event, and then no per-event lookup is needed.
  const anyExpiring = (dbs.expiryById.getStats() as { entryCount: number }).entryCount > 0
  let steps = 0
  for (const id of candidates(dbs, filter, plan)) {
    if (++steps % CHECK_EVERY === 0 && bounds.clock() > bounds.deadline) return true
    if (anyExpiring && isExpired(dbs, id, bounds.now)) continue
    const shared = dbs.events.getBinaryFast(id)
    if (shared === undefined) continue
    // lmdb-js reuses one buffer for reads and sets its own `length`; subarray gives a view of just this value.
    const json = shared.subarray(0, shared.length)
    if (matches && !matches(JSON.parse(json.toString('utf8')) as NostrEvent)) continue
    if (!visit(id, json)) return false
  }
  return false
}

/** One filter's stored events, newest first, at most `limit`, skipping ids in `skip` (copied out). */
export const queryFilter = (dbs: Databases, filter: Filter, bounds: QueryBounds, skip?: Set<string>): QueryResult => {
  const events: StoredEvent[] = []
  if (bounds.limit <= 0) return { events, timedOut: false }
  const timedOut = scanFilter(dbs, filter, bounds, (idBytes, json) => {
    const id = idBytes.toString('hex')
    if (skip?.has(id)) return true
    events.push({ id, json: json.toString('utf8') })
    return events.length < bounds.limit
  })
  return { events, timedOut }
}

/** NIP-45: the number of distinct events matching any of the filters. */
export const countFilters = (dbs: Databases, filters: Filter[], bounds: Omit<QueryBounds, 'limit'>): { count: number; timedOut: boolean } => {
  const seen = new Set<string>()
  let count = 0
  for (const filter of filters) {
    const timedOut = scanFilter(dbs, filter, bounds, id => {
      if (filters.length === 1) count++
      else seen.add(id.toString('hex'))
      return true
    })
    if (timedOut) return { count: Math.max(count, seen.size), timedOut }
  }
  return { count: filters.length === 1 ? count : seen.size, timedOut: false }
}
