import { compileFilter, type Filter, type FilterMatcher, type NostrEvent } from '@msr/nostr'
import { KeyedFilings, type Filing, type Slot } from './keyed-filings.js'
import type { Subscription } from './subscription.js'

/** One filter of one subscription, as registered in the index. */
interface Entry {
  subscription: Subscription
  filter: Filter
  /** The filter compiled once: testing an event costs the same whatever its number of values. */
  matches: FilterMatcher
  /** Where it is filed by id, author or tag value (keyed-filings.ts), to unfile it. */
  keyed: KeyedFilings<Entry> | undefined
  filings: Filing<Entry>[]
}

/**
 * Filters by kind. A kind most often has one filter, kept as it is; a Set only once it has several. Ids,
 * authors and tag values, which a REQ may hold hundreds of, are filed in KeyedFilings instead of a Map
 * (see there why).
 */
type KindBucket = Map<number, Entry | Set<Entry>>

/**
 * The live subscriptions, indexed so that an event is tested only against filters that could
 * match it: each filter is filed under its most selective field (id, author, tag value, kind),
 * or in the catch-all list when it has none.
 */
export class LiveIndex {
  private readonly byId = new KeyedFilings<Entry>()
  private readonly byAuthor = new KeyedFilings<Entry>()
  /** Per tag letter (made on first use, kept): the event's tag values are looked up as they are. */
  private readonly byTag = new Map<string, KeyedFilings<Entry>>()
  private readonly byKind: KindBucket = new Map()
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
    const entries = subscription.filters.map(filter => ({ subscription, filter, matches: compileFilter(filter), keyed: undefined, filings: [] }))
    this.entries.set(subscription, entries)
    for (const entry of entries) this.file(entry)
  }

  /** Unregisters a subscription. */
  remove(subscription: Subscription): void {
    for (const entry of this.entries.get(subscription) ?? []) this.unfile(entry)
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
    if (this.byId.size > 0) this.visitKey(this.byId, event.id, event, stamp, out)
    if (this.byAuthor.size > 0) this.visitKey(this.byAuthor, event.pubkey, event, stamp, out)
    this.visit(this.byKind.get(event.kind), event, stamp, out)
    if (this.byTag.size > 0)
      for (const tag of event.tags) {
        const filings = tag[0]?.length === 1 && tag[1] !== undefined ? this.byTag.get(tag[0]) : undefined
        if (filings !== undefined && filings.size > 0) this.visitKey(filings, tag[1] as string, event, stamp, out)
      }
    if (this.catchAll.size > 0) this.visit(this.catchAll, event, stamp, out)
    return out
  }

  /** Adds the subscriptions of the filters filed under `key` that match the event (filings of other keys sharing its slot are skipped). */
  private visitKey(filings: KeyedFilings<Entry>, key: string, event: NostrEvent, stamp: number, out: Subscription[]): void {
    const slot: Slot<Entry> = filings.slotOf(key)
    if (slot === undefined) return
    if (!Array.isArray(slot)) {
      if (slot.key !== key) return
      this.tested++
      return deliver(slot.value, event, stamp, out)
    }
    for (const filing of slot) {
      if (filing.key !== key) continue
      this.tested++
      deliver(filing.value, event, stamp, out)
    }
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

  /** Files a filter under every value of its most selective field (an event reaches it through any one). */
  private file(entry: Entry): void {
    const { filter } = entry
    if (filter.ids) this.fileKeyed(entry, this.byId, filter.ids)
    else if (filter.authors) this.fileKeyed(entry, this.byAuthor, filter.authors)
    else if (filter.tags && Object.keys(filter.tags).length > 0) {
      const [letter, values] = Object.entries(filter.tags).reduce((a, b) => (b[1].length < a[1].length ? b : a))
      let byValue = this.byTag.get(letter)
      if (byValue === undefined) this.byTag.set(letter, (byValue = new KeyedFilings<Entry>()))
      this.fileKeyed(entry, byValue, values)
    } else if (filter.kinds) for (const kind of filter.kinds) addTo(this.byKind, kind, entry)
    else this.catchAll.add(entry)
  }

  private fileKeyed(entry: Entry, keyed: KeyedFilings<Entry>, keys: readonly string[]): void {
    entry.keyed = keyed
    for (const key of keys) entry.filings.push(keyed.add(key, entry))
  }

  /** Undoes `file`. */
  private unfile(entry: Entry): void {
    const { filter, keyed, filings } = entry
    if (keyed !== undefined) {
      for (const filing of filings) keyed.remove(filing)
      entry.keyed = undefined
      filings.length = 0
    } else if (filter.kinds) for (const kind of filter.kinds) removeFrom(this.byKind, kind, entry)
    else this.catchAll.delete(entry)
  }
}

const deliver = ({ subscription, matches }: Entry, event: NostrEvent, stamp: number, out: Subscription[]): void => {
  if (subscription.lastDelivery === stamp || !matches(event)) return
  subscription.lastDelivery = stamp
  out.push(subscription)
}

const addTo = (bucket: KindBucket, key: number, entry: Entry): void => {
  const slot = bucket.get(key)
  if (slot === undefined) bucket.set(key, entry)
  else if (slot instanceof Set) slot.add(entry)
  else if (slot !== entry) bucket.set(key, new Set([slot, entry]))
}

const removeFrom = (bucket: KindBucket, key: number, entry: Entry): void => {
  const slot = bucket.get(key)
  if (slot === entry) bucket.delete(key)
  else if (slot instanceof Set && slot.delete(entry) && slot.size === 1) bucket.set(key, slot.values().next().value as Entry)
}
