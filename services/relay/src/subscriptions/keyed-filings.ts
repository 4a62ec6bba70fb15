import { randomInt } from 'node:crypto'

/** One value filed under one string key; `slot` and `at` say where it is, so it is removed without a search. */
export interface Filing<T> {
  readonly key: string
  readonly value: T
  slot: number
  /** Its index in the slot's array; -1 when it is alone in its slot. */
  at: number
}

/** What a slot holds: nothing, one filing, or an array of several (keys sharing the slot, or one key filed more than once). */
export type Slot<T> = Filing<T> | Filing<T>[] | undefined

const FIRST_SLOTS = 1024

/**
 * A multimap from string keys to values that is not built on Map or Set, for keys filed and unfiled at
 * the rate subscriptions open and close (LiveIndex: ids, authors, tag values).
 *
 * Node 20's V8 rehashes a Map's or Set's table as it grows, shrinks or fills with deleted entries, and
 * the table it replaces keeps a link to the new one and every key and value it held. Once a long-lived
 * Map's table is in the old generation, each later table, its keys and values, and what they reach (a
 * subscription, its filters) survive young collections through that link until the next full one. A
 * 500-id REQ filed and unfiled 500 keys: on a relay answering one client's REQs each young collection
 * promoted about 520 KB (22-25 KB with this), and mark-compacts ran two to three times as often
 * (docs/performance-log.md, sixteenth session).
 *
 * Keys hash (FNV-1a, seeded per process) into a fixed array of slots, doubled when the filings outnumber
 * it and never shrunk. A slot's array is changed in place: a removal moves the last filing into the gap.
 */
export class KeyedFilings<T> {
  private slots: Slot<T>[] = new Array<Slot<T>>(FIRST_SLOTS).fill(undefined)
  private mask = FIRST_SLOTS - 1
  private count = 0
  private readonly seed = randomInt(2 ** 32)

  /** Filings held. */
  get size(): number {
    return this.count
  }

  /** Files `value` under `key`; the filing is what `remove` takes back. */
  add(key: string, value: T): Filing<T> {
    if (this.count >= this.slots.length) this.grow()
    const filing: Filing<T> = { key, value, slot: this.hash(key) & this.mask, at: -1 }
    this.place(filing)
    this.count++
    return filing
  }

  /** Unfiles a filing made by `add` (once). */
  remove(filing: Filing<T>): void {
    const slot = this.slots[filing.slot]
    if (slot === filing) this.slots[filing.slot] = undefined
    else if (Array.isArray(slot) && slot[filing.at] === filing) {
      const last = slot.pop() as Filing<T>
      if (last !== filing) {
        slot[filing.at] = last
        last.at = filing.at
      }
      if (slot.length === 1) {
        const alone = slot.pop() as Filing<T>
        alone.at = -1
        this.slots[filing.slot] = alone
      }
    } else return
    this.count--
  }

  /** The slot `key` hashes to: its filings (of `key`, and of any other key sharing the slot: compare `key`). */
  slotOf(key: string): Slot<T> {
    return this.slots[this.hash(key) & this.mask]
  }

  private place(filing: Filing<T>): void {
    const slot = this.slots[filing.slot]
    if (slot === undefined) {
      filing.at = -1
      this.slots[filing.slot] = filing
    } else if (Array.isArray(slot)) {
      filing.at = slot.length
      slot.push(filing)
    } else {
      slot.at = 0
      filing.at = 1
      this.slots[filing.slot] = [slot, filing]
    }
  }

  private grow(): void {
    const old = this.slots
    this.slots = new Array<Slot<T>>(old.length * 2).fill(undefined)
    this.mask = this.slots.length - 1
    for (const slot of old) {
      for (const filing of Array.isArray(slot) ? slot : slot ? [slot] : []) {
        filing.slot = this.hash(filing.key) & this.mask
        this.place(filing)
      }
    }
  }

  /** FNV-1a over the UTF-16 code units, from a per-process seed (keys come from clients). */
  private hash(key: string): number {
    let h = this.seed ^ 0x811c9dc5
    for (let i = 0; i < key.length; i++) h = Math.imul(h ^ key.charCodeAt(i), 0x01000193)
    return (h ^ (h >>> 16)) >>> 0
  }
}
