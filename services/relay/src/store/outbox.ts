import type { Database } from 'lmdb'
import { decodeHint, encodeHint, hintFromEvent, type Hint, type HintSource } from '@msr/hints'

/** One hint waiting to be published: its outbox key (the order it was written in) and the hint. */
export interface OutboxEntry {
  key: Buffer
  hint: Hint
}

const keyOf = (seq: bigint): Buffer => {
  const key = Buffer.alloc(8)
  key.writeBigUInt64BE(seq)
  return key
}

/**
 * The hint outbox: an LMDB database of `sequence (u64 BE) → hint JSON`. Entries are written inside the
 * event's own write transaction (so a committed 445/446 always has its hint, and a crash before the
 * publish only delays it) and removed by the drainer once the bus has them.
 */
export class Outbox {
  private next: bigint

  constructor(private readonly db: Database<Buffer, Buffer>) {
    const [last] = db.getKeys({ reverse: true, limit: 1 })
    this.next = last ? (last as Buffer).readBigUInt64BE(0) + 1n : 1n
  }

  /** Inside a write transaction: queues the event's hint, if it routes anywhere. */
  add(event: HintSource): void {
    const hint = hintFromEvent(event)
    if (hint) this.put(hint)
  }

  /** Inside a write transaction: queues a hint as it is (one a snapshot held: see backup/outbox-records.ts). */
  put(hint: Hint): void {
    this.db.putSync(keyOf(this.next), encodeHint(hint))
    this.next++
  }

  /** Inside a write transaction: removes published entries. */
  remove(keys: Buffer[]): void {
    for (const key of keys) this.db.removeSync(key)
  }

  /**
   * The oldest `limit` entries. An entry that no longer parses (written by another version) is
   * returned with `hint` undefined so the drainer can drop it instead of stalling behind it.
   */
  peek(limit: number): { key: Buffer; hint: Hint | undefined }[] {
    const entries: { key: Buffer; hint: Hint | undefined }[] = []
    for (const { key, value } of this.db.getRange({ limit })) {
      const decoded = decodeHint(value)
      entries.push({ key: Buffer.from(key), hint: decoded.ok ? decoded.hint : undefined })
    }
    return entries
  }

  /** Every waiting hint, oldest first, from one read snapshot (entries that no longer parse left out). */
  *all(): Generator<Hint> {
    for (const { value } of this.db.getRange({ snapshot: true })) {
      const decoded = decodeHint(value)
      if (decoded.ok) yield decoded.hint
    }
  }

  /** Entries waiting. */
  size(): number {
    return (this.db.getStats() as { entryCount: number }).entryCount
  }
}
