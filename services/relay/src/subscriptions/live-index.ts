import { compileFilter, type Filter, type FilterMatcher, type NostrEvent } from '@msr/nostr'
import type { Subscription } from './subscription.js'

/** One filter of one subscription, as registered in the index. */
interface Entry {
  subscription: Subscription
  filter: Filter
  /** The filter compiled once: testing an event costs the same whatever its number of values. */
  matches: FilterMatcher
}

/** Filters by key: an id, author or tag letter + value (strings), or a kind (numbers). */
type Bucket = Map<string | number, Set<Entry>>

/**
 * The live subscriptions, indexed so that an event is tested only against filters that could
 * match it: each filter is filed under its most selective field (id, author, tag value, kind),
 * or in the catch-all list when it has none.
 */
export class LiveIndex {
  private readonly byId: Bucket = new Map()
  private readonly byAuthor: Bucket = new Map()
  private readonly byTag: Bucket = new Map()
  private readonly byKind: Bucket = new Map()
  private readonly catchAll = new Set<Entry>()
  private readonly entries = new Map<Subscription, Entry[]>()
  private stamp = 0
  /** Filters tested for the last event: those filed under its id, author, kind or tag values, and the catch-all. */
  tested = 0

  /** Number of live subscriptions. */
  get size(): number {
    return this.entries.size
  }

  /** Registers every filter of a subscription. */
  add(subscription: Subscription): void {
    const entries = subscription.filters.map(filter => ({ subscription, filter, matches: compileFilter(filter) }))
    this.entries.set(subscription, entries)
    for (const entry of entries) for (const [bucket, key] of this.places(entry.filter)) addTo(bucket, key, entry)
  }

  /** Unregisters a subscription. */
  remove(subscription: Subscription): void {
    for (const entry of this.entries.get(subscription) ?? [])
      for (const [bucket, key] of this.places(entry.filter)) removeFrom(bucket, key, entry)
    this.entries.delete(subscription)
  }

  /**
   * Every subscription with at least one filter matching the event, each once, appended to `out`. Only
   * the buckets of the event's own id, author, kind and tag values are visited (and the catch-all), so
   * subscriptions to other things cost nothing.
   */
  matching(event: NostrEvent, out: Subscription[] = []): Subscription[] {
    const stamp = ++this.stamp
    this.tested = 0
    this.visit(this.byId.get(event.id), event, stamp, out)
    this.visit(this.byAuthor.get(event.pubkey), event, stamp, out)
    this.visit(this.byKind.get(event.kind), event, stamp, out)
    if (this.byTag.size > 0)
      for (const tag of event.tags) if (tag[0]?.length === 1 && tag[1] !== undefined) this.visit(this.byTag.get(tag[0] + tag[1]), event, stamp, out)
    if (this.catchAll.size > 0) this.visit(this.catchAll, event, stamp, out)
    return out
  }

  /** Adds the subscriptions of `entries` that match the event and were not added for it yet (stamp). */
  private visit(entries: Set<Entry> | undefined, event: NostrEvent, stamp: number, out: Subscription[]): void {
    if (!entries) return
    this.tested += entries.size
    for (const { subscription, matches } of entries) {
      if (subscription.lastDelivery === stamp || !matches(event)) continue
      subscription.lastDelivery = stamp
      out.push(subscription)
    }
  }

  /** Where a filter is filed: every value of its most selective field (an event reaches it through any one). */
  private places(filter: Filter): Array<[Bucket | Set<Entry>, string | number]> {
    if (filter.ids) return filter.ids.map(id => [this.byId, id])
    if (filter.authors) return filter.authors.map(a => [this.byAuthor, a])
    const tags = Object.entries(filter.tags ?? {})
    if (tags.length > 0) {
      const [letter, values] = tags.reduce((a, b) => (b[1].length < a[1].length ? b : a))
      return values.map(v => [this.byTag, letter + v])
    }
    if (filter.kinds) return filter.kinds.map(k => [this.byKind, k])
    return [[this.catchAll, '']]
  }
}

const addTo = (bucket: Bucket | Set<Entry>, key: string | number, entry: Entry): void => {
  if (bucket instanceof Set) return void bucket.add(entry)
  let set = bucket.get(key)
  if (!set) bucket.set(key, (set = new Set()))
  set.add(entry)
}

const removeFrom = (bucket: Bucket | Set<Entry>, key: string | number, entry: Entry): void => {
  if (bucket instanceof Set) return void bucket.delete(entry)
  const set = bucket.get(key)
  set?.delete(entry)
  if (set?.size === 0) bucket.delete(key)
}
