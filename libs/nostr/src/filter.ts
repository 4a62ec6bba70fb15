import { isHex64, MAX_CREATED_AT, type NostrEvent } from './event.js'
import { fail, ok, type Result } from './reason.js'

/** A validated NIP-01 filter. Tag conditions are keyed by their single letter. */
export interface Filter {
  ids?: string[]
  authors?: string[]
  kinds?: number[]
  tags?: Record<string, string[]>
  since?: number
  until?: number
  limit?: number
}

const TAG_KEY = /^#[a-zA-Z]$/
const HEX_TAGS = new Set(['e', 'p'])

/** Validates an untrusted filter object; unknown fields and wrong types are refused with `invalid:`. */
export const parseFilter = (raw: unknown): Result<Filter> => {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return fail('invalid: a filter must be a JSON object')
  const filter: Filter = {}
  for (const [key, value] of Object.entries(raw as Record<string, unknown>)) {
    const error = applyField(filter, key, value)
    if (error) return fail(`invalid: ${error}`)
  }
  return ok(filter)
}

const applyField = (filter: Filter, key: string, value: unknown): string | undefined => {
  switch (key) {
    case 'ids':
    case 'authors':
      if (!Array.isArray(value) || !value.every(isHex64)) return `${key} must be an array of 64-character lowercase hex strings`
      filter[key] = unique(value)
      return undefined
    case 'kinds':
      if (!Array.isArray(value) || !value.every(isKind)) return 'kinds must be an array of integers between 0 and 65535'
      filter.kinds = unique(value)
      return undefined
    case 'since':
    case 'until':
    case 'limit':
      if (!Number.isSafeInteger(value) || (value as number) < 0) return `${key} must be a non-negative integer`
      filter[key] = value as number
      return undefined
    default:
      return applyTag(filter, key, value)
  }
}

const applyTag = (filter: Filter, key: string, value: unknown): string | undefined => {
  if (!TAG_KEY.test(key)) return `unknown filter field "${key.slice(0, 32)}"`
  const letter = key.slice(1)
  const valid = HEX_TAGS.has(letter) ? value instanceof Array && value.every(isHex64) : isStringArray(value)
  if (!valid) return `${key} must be an array of ${HEX_TAGS.has(letter) ? '64-character lowercase hex ' : ''}strings`
  filter.tags = { ...filter.tags, [letter]: unique(value as string[]) }
  return undefined
}

const isKind = (v: unknown): v is number => Number.isInteger(v) && (v as number) >= 0 && (v as number) <= 65535
const isStringArray = (v: unknown): v is string[] => Array.isArray(v) && v.every(x => typeof x === 'string')
const unique = <T>(values: T[]): T[] => [...new Set(values)]

/** True when the event satisfies every condition of the filter (limit is not a condition). */
export const matchFilter = (filter: Filter, event: NostrEvent): boolean => {
  if (filter.ids && !filter.ids.includes(event.id)) return false
  if (filter.authors && !filter.authors.includes(event.pubkey)) return false
  if (filter.kinds && !filter.kinds.includes(event.kind)) return false
  if (filter.since !== undefined && event.created_at < filter.since) return false
  if (filter.until !== undefined && event.created_at > filter.until) return false
  if (filter.tags) {
    for (const [letter, values] of Object.entries(filter.tags)) {
      if (!event.tags.some(tag => tag[0] === letter && tag[1] !== undefined && values.includes(tag[1]))) return false
    }
  }
  return true
}

/** A filter's conditions as one function, for filters tested against many events. */
export type FilterMatcher = (event: NostrEvent) => boolean

/**
 * `matchFilter` with the filter's value lists turned into sets once, so testing an event costs the
 * same whatever the number of values (a filter with a thousand authors or tag values is checked by
 * lookups, not by scanning its lists). Same answers as `matchFilter`.
 */
export const compileFilter = (filter: Filter): FilterMatcher => {
  const ids = filter.ids && new Set(filter.ids)
  const authors = filter.authors && new Set(filter.authors)
  const kinds = filter.kinds && new Set(filter.kinds)
  const tags = Object.entries(filter.tags ?? {}).map(([letter, values]) => [letter, new Set(values)] as const)
  const { since, until } = filter
  const hasTag = (event: NostrEvent, letter: string, values: Set<string>) =>
    event.tags.some(tag => tag[0] === letter && tag[1] !== undefined && values.has(tag[1]))
  return event =>
    (ids === undefined || ids.has(event.id)) &&
    (authors === undefined || authors.has(event.pubkey)) &&
    (kinds === undefined || kinds.has(event.kind)) &&
    (since === undefined || event.created_at >= since) &&
    (until === undefined || event.created_at <= until) &&
    tags.every(([letter, values]) => hasTag(event, letter, values))
}

/** How many values a filter holds (ids, authors, kinds and tag values): what it costs to keep live. */
export const filterValues = (filter: Filter): number =>
  (filter.ids?.length ?? 0) +
  (filter.authors?.length ?? 0) +
  (filter.kinds?.length ?? 0) +
  Object.values(filter.tags ?? {}).reduce((sum, values) => sum + values.length, 0)

/**
 * `filterValues` of filters not yet validated: the lengths of their value lists, counted without
 * looking at the values, so that a request too large to keep is refused before it costs validation.
 */
export const rawFilterValues = (raw: readonly unknown[]): number => {
  let sum = 0
  for (const filter of raw) {
    if (typeof filter !== 'object' || filter === null) continue
    for (const [key, value] of Object.entries(filter)) if (Array.isArray(value) && (key === 'ids' || key === 'authors' || key === 'kinds' || key.startsWith('#'))) sum += value.length
  }
  return sum
}

/** True when the event matches at least one of the filters. */
export const matchFilters = (filters: readonly Filter[], event: NostrEvent): boolean =>
  filters.some(filter => matchFilter(filter, event))

/** True when no event can ever match the filter (an empty list, or since after until). */
export const isEmptyFilter = (filter: Filter): boolean =>
  filter.ids?.length === 0 ||
  filter.authors?.length === 0 ||
  filter.kinds?.length === 0 ||
  Object.values(filter.tags ?? {}).some(values => values.length === 0) ||
  (filter.since !== undefined && filter.until !== undefined && filter.since > filter.until) ||
  (filter.since !== undefined && filter.since > MAX_CREATED_AT)

/** Orders events newest first; ties go to the lowest id (NIP-01). */
export const compareNewestFirst = (a: Pick<NostrEvent, 'created_at' | 'id'>, b: Pick<NostrEvent, 'created_at' | 'id'>): number =>
  b.created_at - a.created_at || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)
