import { compileFilter, type Filter, type FilterMatcher, type NostrEvent } from '@msr/nostr'
import type { Subscription } from './subscription.js'

/** One filter of one subscription, as registered in the index. */
interface Entry {
  subscription: Subscription
  filter: Filter
  /** The filter compiled once: testing an event costs the same whatever its number of values. */
  matches: FilterMatcher
}

/**
 * Filters by key: an id, author or tag letter + value (strings), or a kind (numbers). A key most often has
 * one filter, kept as it is; a Set only once it has several (a REQ of 500 ids files 500 keys, and made and
 * dropped 500 Sets when every key had one: most of the event loop's garbage under a REQ load).
 */
type Bucket = Map<string | number, Entry | Set<Entry>>

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
    for (const entry of entries) this.file(entry, addTo)
  }

  /** Unregisters a subscription. */
  remove(subscription: Subscription): void {
    for (const entry of this.entries.get(subscription) ?? []) this.file(entry, removeFrom)
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
  private visit(slot: Entry | Set<Entry> | undefined, event: NostrEvent, stamp: number, out: Subscription[]): void {
    if (slot === undefined) return
    if (!(slot instanceof Set)) {
      this.tested++
      return deliver(slot, event, stamp, out)
    }
    this.tested += slot.size
    for (const entry of slot) deliver(entry, event, stamp, out)
  }

  /** Files (or unfiles) a filter under every value of its most selective field (an event reaches it through any one). */
  private file(entry: Entry, action: (bucket: Bucket | Set<Entry>, key: string | number, entry: Entry) => void): void {
    const { filter } = entry
    if (filter.ids) for (const id of filter.ids) action(this.byId, id, entry)
    else if (filter.authors) for (const author of filter.authors) action(this.byAuthor, author, entry)
    else if (filter.tags && Object.keys(filter.tags).length > 0) {
      const [letter, values] = Object.entries(filter.tags).reduce((a, b) => (b[1].length < a[1].length ? b : a))
      for (const value of values) action(this.byTag, letter + value, entry)
    } else if (filter.kinds) for (const kind of filter.kinds) action(this.byKind, kind, entry)
    else action(this.catchAll, '', entry)
  }
}

const deliver = ({ subscription, matches }: Entry, event: NostrEvent, stamp: number, out: Subscription[]): void => {
  if (subscription.lastDelivery === stamp || !matches(event)) return
  subscription.lastDelivery = stamp
  out.push(subscription)
}

const addTo = (bucket: Bucket | Set<Entry>, key: string | number, entry: Entry): void => {
  if (bucket instanceof Set) return void bucket.add(entry)
  const slot = bucket.get(key)
  if (slot === undefined) bucket.set(key, entry)
  else if (slot instanceof Set) slot.add(entry)
  else if (slot !== entry) bucket.set(key, new Set([slot, entry]))
}

const removeFrom = (bucket: Bucket | Set<Entry>, key: string | number, entry: Entry): void => {
  if (bucket instanceof Set) return void bucket.delete(entry)
  const slot = bucket.get(key)
  if (slot === entry) bucket.delete(key)
  else if (slot instanceof Set && slot.delete(entry) && slot.size === 1) bucket.set(key, slot.values().next().value as Entry)
}
