import { compileFilter, isEmptyFilter, MAX_CREATED_AT, type Filter, type NostrEvent } from '@msr/nostr'
import type { Database } from 'lmdb'
import type { Databases } from './databases.js'
import { authorKindPrefix, hexBytes, isHashedValueKey, kindBytes, rangeEnd, rangeStart, SUFFIX_BYTES, tagPrefix } from './keys.js'
import { mergeBySuffix } from './merge.js'
import { readHead, storedPubkey, type StoredHead } from './stored-json.js'

/** The index a filter is answered from, and what it leaves to check on each candidate. */
export interface Plan {
  index: 'ids' | 'author_kind' | 'tag' | 'author' | 'kind' | 'time'
  /**
   * Range prefixes in the chosen index (unused for ids). An `author` plan (authors without kinds) is read
   * from `by_author_kind`: its prefixes are the pubkeys until `choosePlan` turns each into pubkey + kind,
   * one for every kind that author has stored.
   */
  prefixes: Buffer[]
  /** True when the index decides the whole filter, so stored JSON need not be read. */
  exact: boolean
  /**
   * The conditions left: authors, kinds and since/until are read from the stored bytes (stored-json.ts);
   * `parse` (a tag condition the index did not decide) parses each candidate and checks the whole filter.
   */
  check: { authors: boolean; kinds: boolean; time: boolean; parse: boolean }
}

/** A stored event, copied out of the store: its id and canonical JSON. */
export interface StoredEvent {
  id: string
  json: string
}

/**
 * Called for each matching event, newest first. `id` (32 bytes) and `json` (the stored bytes) are only
 * valid during the call (the id is refilled for the next candidate; the bytes may be LMDB's shared read
 * buffer): copy them to keep them. Return false to stop.
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

/** Ranges a plan may open (an author+kind plan's pairs; an author plan's authors, and then its authors' kinds). */
const MAX_PREFIXES = 4096
const CHECK_EVERY = 64
/** A range shorter than this is counted when estimating which plan scans least; a longer one is "large". */
const ESTIMATE_CAP = 512
/** Plans with more prefixes than this are not estimated (each prefix costs two native calls): taken as large. */
const ESTIMATE_PREFIXES = 16
/** A candidate parsed (a tag left to check) costs about this many read from its bytes. */
const PARSE_COST = 4

/** A plan for `index` with its prefixes, and what it leaves of `filter` to check on each candidate. */
const planOf = (filter: Filter, index: Plan['index'], prefixes: Buffer[], tagDecided = false): Plan => {
  const tagsLeft = Object.keys(filter.tags ?? {}).length > (tagDecided ? 1 : 0)
  const check = {
    authors: filter.authors !== undefined && index !== 'author_kind' && index !== 'author',
    kinds: filter.kinds !== undefined && index !== 'author_kind' && index !== 'kind',
    time: index === 'ids' && (filter.since !== undefined || filter.until !== undefined),
    parse: tagsLeft,
  }
  const exact = !check.authors && !check.kinds && !check.time && !check.parse
  return { index, prefixes, exact, check }
}

/**
 * Every index that can answer a filter, in the order used when the store cannot tell them apart: ids alone;
 * else first those that leave no tag to parse, and within each group author+kind, each tag letter (fewest
 * values first), author (only without author+kind: it reads the same index with every kind), kind; time
 * when none applies.
 */
export const planOptions = (filter: Filter): Plan[] => {
  const { authors, kinds } = filter
  if (filter.ids) return [planOf(filter, 'ids', [])]
  const plans: Plan[] = []
  const authorKind = authors && kinds && authors.length * kinds.length <= MAX_PREFIXES
  if (authorKind) plans.push(planOf(filter, 'author_kind', authors.flatMap(a => kinds.map(k => authorKindPrefix(a, k)))))
  const tagEntries = Object.entries(filter.tags ?? {}).sort((a, b) => a[1].length - b[1].length)
  for (const [letter, values] of tagEntries) {
    const prefixes = values.map(v => tagPrefix(letter, v))
    // A hashed value key matches every value with that hash: the event itself must confirm it.
    plans.push(planOf(filter, 'tag', prefixes, !prefixes.some(p => isHashedValueKey(p.subarray(1)))))
  }
  if (authors && !authorKind) plans.push(planOf(filter, 'author', authors.map(hexBytes)))
  if (kinds) plans.push(planOf(filter, 'kind', kinds.map(kindBytes)))
  if (plans.length === 0) plans.push(planOf(filter, 'time', [Buffer.alloc(0)]))
  // Stable: the order above holds within each group.
  return plans.sort((a, b) => Number(a.check.parse) - Number(b.check.parse))
}

/** The kinds `author` (32 bytes) has entries of in by_author_kind, ascending: one native seek each, and one more. */
const kindsOf = (dbs: Databases, author: Buffer, max: number): number[] | undefined => {
  const kinds: number[] = []
  const end = Buffer.alloc(author.length + 2 + SUFFIX_BYTES + 1, 0xff)
  author.copy(end, 0)
  let from = author
  for (;;) {
    let next: Buffer | undefined
    for (const key of dbs.byAuthorKind.getKeys({ start: from, end, limit: 1 })) next = key
    if (next === undefined) return kinds
    if (kinds.length === max) return undefined
    const kind = next.readUInt16BE(author.length)
    kinds.push(kind)
    if (kind === 0xffff) return kinds
    from = authorKindPrefix(author, kind + 1)
  }
}

/**
 * An author plan made readable: each pubkey becomes one by_author_kind prefix per kind it has stored (an
 * author with no event gets none). Undefined past MAX_PREFIXES authors or ranges: the plan is not offered.
 */
const authorRanges = (dbs: Databases, plan: Plan): Plan | undefined => {
  if (plan.prefixes.length > MAX_PREFIXES) return undefined
  const prefixes: Buffer[] = []
  for (const author of plan.prefixes) {
    const kinds = kindsOf(dbs, author, MAX_PREFIXES - prefixes.length)
    if (kinds === undefined) return undefined
    for (const kind of kinds) prefixes.push(authorKindPrefix(author, kind))
  }
  return { ...plan, prefixes }
}

/** The plan in the fixed order (planOptions' first), as chosen when the store is not consulted (an author plan still holds pubkeys). */
export const planFilter = (filter: Filter): Plan => planOptions(filter)[0] as Plan

/**
 * Index entries in a plan's ranges when fewer than `cap`, else `cap`. LMDB skips entries natively: one
 * call looks `cap` entries ahead, and only a range found shorter is counted.
 */
const countUpTo = (dbs: Databases, plan: Plan, since: number, until: number, cap: number): number => {
  if (plan.prefixes.length > ESTIMATE_PREFIXES) return cap
  const db = indexDb(dbs, plan.index)
  let count = 0
  for (const prefix of plan.prefixes) {
    const range = { start: rangeStart(prefix, until), end: rangeEnd(prefix, since) }
    for (const _ of db.getKeys({ ...range, offset: cap - count - 1, limit: 1 })) return cap
    count += db.getCount(range)
  }
  return count
}

/**
 * Chooses the plan expected to scan least. When the filter offers several indexes, each one's range is
 * counted up to a cap; a plan that must parse its candidates (a tag left to check) counts PARSE_COST times
 * each. When every range is past the cap, the fixed order of planOptions decides. An author plan that
 * would open too many ranges is dropped; with nothing left, by_time (the authors checked on each event).
 */
export const choosePlan = (dbs: Databases, filter: Filter): Plan => {
  const plans = planOptions(filter).flatMap(plan => (plan.index === 'author' ? (authorRanges(dbs, plan) ?? []) : [plan]))
  if (plans.length === 0) return planOf(filter, 'time', [Buffer.alloc(0)])
  if (plans.length === 1) return plans[0] as Plan
  const { since, until } = timeBounds(filter)
  let best = plans[0] as Plan
  let bestCost = Infinity
  for (const plan of plans) {
    const count = countUpTo(dbs, plan, since, until, ESTIMATE_CAP)
    const cost = count >= ESTIMATE_CAP ? Infinity : count * (plan.check.parse ? PARSE_COST : 1)
    if (cost < bestCost) [best, bestCost] = [plan, cost]
    if (bestCost === 0) break
  }
  return best
}

const timeBounds = (filter: Filter): { since: number; until: number } => ({
  since: filter.since ?? 0,
  until: Math.min(filter.until ?? MAX_CREATED_AT, MAX_CREATED_AT),
})

const indexDb = (dbs: Databases, index: Plan['index']): Database<Buffer, Buffer> =>
  ({ author_kind: dbs.byAuthorKind, tag: dbs.byTag, author: dbs.byAuthorKind, kind: dbs.byKind, time: dbs.byTime, ids: dbs.byTime })[index]

/**
 * The filter's existing events, newest first and ties by lowest id (the created_at read from their bytes):
 * id → a copy of the stored JSON, in serving order. Copying is cheaper than looking each up again.
 */
const eventsOfIds = (dbs: Databases, ids: readonly string[]): Map<Buffer, Buffer> => {
  const found: Array<{ id: Buffer; createdAt: number; json: Buffer }> = []
  const head: StoredHead = { createdAt: 0, kind: 0 }
  for (const hex of ids) {
    const id = hexBytes(hex)
    const shared = dbs.events.getBinaryFast(id)
    if (shared === undefined) continue
    const json = Buffer.from(shared.subarray(0, shared.length))
    const createdAt = readHead(json, head) ? head.createdAt : (JSON.parse(json.toString('utf8')) as NostrEvent).created_at
    found.push({ id, createdAt, json })
  }
  found.sort((a, b) => b.createdAt - a.createdAt || Buffer.compare(a.id, b.id))
  return new Map(found.map(f => [f.id, f.json]))
}

/**
 * The id of the candidate a scan is at: one buffer per thread, refilled from each index key (a scan runs
 * to its end synchronously). A view of each key's id and a generator's result per candidate were a third
 * of what a REQ allocated, and so of its young-generation collections.
 */
const candidateId = Buffer.alloc(32)

/**
 * Calls `each` with the candidate ids newest first from a plan's index ranges (not for an ids plan), in
 * `candidateId`, until it returns false.
 */
const eachCandidate = (dbs: Databases, filter: Filter, plan: Plan, each: (id: Buffer) => boolean): void => {
  const { since, until } = timeBounds(filter)
  const db = indexDb(dbs, plan.index)
  const ranges = plan.prefixes.map(p => db.getKeys({ start: rangeStart(p, until), end: rangeEnd(p, since) }))
  // One range is already in order: no merge.
  const keys = ranges.length === 1 ? (ranges[0] as Iterable<Buffer>) : mergeBySuffix(ranges, SUFFIX_BYTES)
  for (const key of keys) {
    const from = key.length - 32
    for (let i = 0; i < 32; i++) candidateId[i] = key[from + i] as number
    if (!each(candidateId)) return
  }
}

/** A stored event's JSON as a view of LMDB's shared read buffer (valid until the next read). */
const storedView = (dbs: Databases, id: Buffer): Buffer | undefined => {
  const shared = dbs.events.getBinaryFast(id)
  // lmdb-js reuses one buffer for reads and sets its own `length`; subarray gives a view of just this value.
  return shared && shared.subarray(0, shared.length)
}

/**
 * What a plan leaves of the filter, as a test of a candidate's stored bytes; undefined when the index
 * decided everything. Authors, kinds and since/until are read from the bytes; a tag condition (or bytes
 * not in the canonical layout) parses the event and checks the whole filter.
 */
export const residualMatcher = (filter: Filter, plan: Plan): ((json: Buffer) => boolean) | undefined => {
  if (plan.exact) return undefined
  const whole = compileFilter(filter)
  const parsed = (json: Buffer) => whole(JSON.parse(json.toString('utf8')) as NostrEvent)
  if (plan.check.parse) return parsed
  const authors = plan.check.authors ? new Set(filter.authors) : undefined
  const kinds = plan.check.kinds ? new Set(filter.kinds) : undefined
  const since = filter.since ?? 0
  const until = filter.until ?? Infinity
  const time = plan.check.time
  const head: StoredHead = { createdAt: 0, kind: 0 }
  return json => {
    if (!readHead(json, head)) return parsed(json)
    if (kinds && !kinds.has(head.kind)) return false
    if (time && (head.createdAt < since || head.createdAt > until)) return false
    return authors === undefined || authors.has(storedPubkey(json))
  }
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
  const plan = choosePlan(dbs, filter)
  const matches = residualMatcher(filter, plan)
  // Checked once per scan: most stores hold no expiring event, and then no per-event lookup is needed.
  const anyExpiring = (dbs.expiryById.getStats() as { entryCount: number }).entryCount > 0
  // An ids plan has its events in hand already (ordered, copied); the others read each candidate's.
  const byId = plan.index === 'ids' ? eventsOfIds(dbs, filter.ids ?? []) : undefined
  const read = byId ? (id: Buffer) => byId.get(id) : (id: Buffer) => storedView(dbs, id)
  let steps = 0
  let late = false
  // False to stop: at the deadline (`late`), or when `visit` says so.
  const step = (id: Buffer): boolean => {
    if (++steps % CHECK_EVERY === 0 && bounds.clock() > bounds.deadline) return !(late = true)
    if (anyExpiring && isExpired(dbs, id, bounds.now)) return true
    const json = read(id)
    if (json === undefined) return true
    if (matches && !matches(json)) return true
    return visit(id, json)
  }
  if (byId) {
    for (const id of byId.keys()) if (!step(id)) break
  } else eachCandidate(dbs, filter, plan, step)
  return late
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
