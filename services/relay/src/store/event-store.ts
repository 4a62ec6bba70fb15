import type { Hint } from '@msr/hints'
import type { Filter, VerifiedEvent } from '@msr/nostr'
import type { TraceCarrier } from '@msr/telemetry'
import type { Span } from '@opentelemetry/api'
import { applyEvent, applyRecord, bookkeepingOf, loadEvent, removeEvent, type BookkeepingRecord, type EventSource, type StoreOutcome } from './apply.js'
import { isFull, mapRoomShort, STORE_FULL, storedWhenFull, usedBytes } from './capacity.js'
import { openDatabases, type Databases, type OpenOptions } from './databases.js'
import { migrate } from './migrate.js'
import { Outbox } from './outbox.js'
import { ReplicationOutbox } from './replication-outbox.js'
import { choosePlan, countFilters, queryFilter, scanFilter, type Plan, type QueryBounds, type QueryResult, type Visit } from './query.js'

export type { BookkeepingRecord, EventSource, StoreOutcome } from './apply.js'
export type { OutboxEntry } from './outbox.js'
export type { ReplicationEntry } from './replication-outbox.js'
export type { Plan, QueryBounds, QueryResult, StoredEvent, Visit } from './query.js'

/**
 * The LMDB event store. Reads are synchronous and may happen anywhere; every write goes through
 * `write()`, which only the writer stage calls, so there is exactly one writer.
 */
export class EventStore {
  /** The hint outbox (read by the drainer; written only inside `write()`). */
  readonly outbox: Outbox
  /** The replication outbox (read by the replication drainer; written only inside `write()`). */
  readonly replication: ReplicationOutbox
  /** Whether events stored for a client queue a replication entry (`[replication] topic` set). */
  replicating = false

  private constructor(
    private readonly dbs: Databases,
    private hints: boolean,
    /** The directory of the LMDB environment (the writer and query threads open it too). */
    readonly path: string,
    /** How it was opened: the writer and query threads open it the same way. */
    readonly openOptions: OpenOptions,
  ) {
    this.outbox = new Outbox(dbs.outbox)
    this.replication = new ReplicationOutbox(dbs.replication)
  }

  /** Whether stored 445/446 events queue a hint (off while a snapshot is restored: those were published before). */
  set hintsEnabled(on: boolean) {
    this.hints = on
  }

  get hintsEnabled(): boolean {
    return this.hints
  }

  /**
   * Opens or creates the store under `path`, first bringing an older layout up to date (migrate.ts); with
   * `hints`, stored 445/446 events queue a hint in the outbox; `writeMap` as in OpenOptions.
   */
  static open(path: string, opts: { hints?: boolean } & OpenOptions = {}): EventStore {
    const openOptions: OpenOptions = { writeMap: opts.writeMap === true }
    const dbs = openDatabases(path, openOptions)
    migrate(dbs)
    return new EventStore(dbs, opts.hints ?? false, path, openOptions)
  }

  /**
   * Runs `fn` inside one write transaction and commits it synchronously: LMDB writes the transaction's pages,
   * syncs them, then writes the meta page through its O_DSYNC handle, so when this resolves the transaction
   * is on disk, and readers see it only from then on. With `writeMap` (tmpfs only: memory, which outlives
   * the process) the pages are changed in the mapped file instead, and the meta page that makes them the
   * store is still written last. When `fn` throws, or the commit fails, nothing of the transaction is stored
   * and the promise rejects. It blocks its thread for the whole commit: the relay calls it on the writer
   * thread (writer-thread.ts), the CLI's import and tests on theirs.
   */
  write<T>(fn: (tx: StoreTransaction) => T): Promise<T> {
    return new Promise<T>(resolve => resolve(this.dbs.root.transactionSync(() => fn(this.tx))))
  }

  private readonly tx: StoreTransaction = {
    apply: (event, json, trace, source = 'client') => {
      const outcome = applyEvent(this.dbs, event, json, source)
      // Same transaction as the event: both commit, or neither does.
      if (outcome.status === 'stored' && this.hints) this.outbox.add(event, trace)
      if (outcome.status === 'stored' && this.replicating && source === 'client') this.replication.add(event, json, trace)
      return outcome
    },
    applyAll: (events, maxBytes, trace, source = () => 'client') => {
      const full = isFull(this.dbs, maxBytes) || (this.openOptions.writeMap === true && mapRoomShort(this.path))
      return events.map(({ event, json }, i) => (full && !storedWhenFull(event) ? FULL : this.tx.apply(event, json, trace(i), source(i))))
    },
    deleteExpired: (now, max) => this.deleteExpired(now, max),
    removeHints: keys => this.outbox.remove(keys),
    removeReplicated: keys => this.replication.remove(keys),
    queueHints: hints => hints.forEach(hint => this.outbox.put(hint)),
    queueReplication: ids => ids.filter(id => this.requeue(id)).length,
    applyRecords: records => records.forEach(record => applyRecord(this.dbs, record)),
  }

  /** Queues a stored event's replication entry again (a restore); false when the event is not stored. */
  private requeue(id: string): boolean {
    const json = this.dbs.events.get(Buffer.from(id, 'hex'))
    if (json === undefined) return false
    this.replication.add({ id, kind: (JSON.parse(json.toString('utf8')) as { kind: number }).kind }, json)
    return true
  }

  /** The canonical JSON of a stored event. */
  get(id: string): string | undefined {
    return this.dbs.events.get(Buffer.from(id, 'hex'))?.toString('utf8')
  }

  /** Visits one filter's events newest first without copying them; true when the deadline stopped it. */
  scan(filter: Filter, bounds: Omit<QueryBounds, 'limit'>, visit: Visit): boolean {
    return scanFilter(this.dbs, filter, bounds, visit)
  }

  /** The index a scan of this filter would use now, chosen by the sizes of its candidate ranges (tests, diagnostics). */
  plan(filter: Filter): Plan {
    return choosePlan(this.dbs, filter)
  }

  /** One filter's events, newest first (NIP-01), honouring the bounds, copied out. */
  query(filter: Filter, bounds: QueryBounds, skip?: Set<string>): QueryResult {
    return queryFilter(this.dbs, filter, bounds, skip)
  }

  /** NIP-45 count of distinct events matching any filter. */
  count(filters: Filter[], bounds: Omit<QueryBounds, 'limit'>): { count: number; timedOut: boolean } {
    return countFilters(this.dbs, filters, bounds)
  }

  /**
   * Every stored event's canonical JSON, in id order, from one read snapshot (an export or backup sees
   * the store as of its start, however long it takes and whatever is written meanwhile).
   */
  *allEvents(): Generator<Buffer> {
    for (const { value } of this.dbs.events.getRange({ snapshot: true })) yield value
  }

  /** Ids of stored events in id order (32 bytes each, valid until the next read), from one read snapshot. */
  *allIds(): Generator<Buffer> {
    for (const key of this.dbs.events.getKeys({ snapshot: true })) yield key
  }

  /**
   * The deletion and version bookkeeping that the stored events do not imply (apply.ts `bookkeepingOf`), read
   * now: a snapshot writes it after its events, so it is at least as recent as they are.
   */
  bookkeeping(): Generator<BookkeepingRecord> {
    return bookkeepingOf(this.dbs)
  }

  /** Whether the event's NIP-40 expiration is at or before `now` (expired events are never served). */
  isExpired(id: Buffer, now: number): boolean {
    const expiration = this.dbs.expiryById.get(id)
    return expiration !== undefined && expiration.readUInt32BE(0) <= now
  }

  /** Number of stored events (for logs and readiness). */
  size(): number {
    return (this.dbs.events.getStats() as { entryCount: number }).entryCount
  }

  /** Bytes of LMDB pages holding data (capacity.ts: what `data.max_size` caps), as of the latest read view. */
  usedBytes(): number {
    return usedBytes(this.dbs)
  }

  /** Makes the next reads see the latest commit (called before fan-out of a committed batch). */
  refresh(): void {
    this.dbs.root.resetReadTxn()
  }

  private deleteExpired(now: number, max: number): number {
    let deleted = 0
    for (const key of this.dbs.expiry.getKeys({ end: expiryEnd(now) })) {
      if (deleted >= max) break
      const event = loadEvent(this.dbs, key.subarray(4))
      if (event) removeEvent(this.dbs, event)
      else this.dbs.expiry.removeSync(key)
      deleted++
    }
    return deleted
  }

  /** Waits for pending writes, then closes LMDB. */
  async close(): Promise<void> {
    await this.dbs.root.flushed
    await this.dbs.root.close()
  }
}

/** An event to store and its canonical JSON. */
export interface Applied {
  event: VerifiedEvent
  json: Buffer
}

const FULL: StoreOutcome = { status: 'rejected', reason: STORE_FULL }

/** The operations available inside a write transaction. */
export interface StoreTransaction {
  /**
   * Stores one verified event under NIP-01/09 rules; a hint it queues carries the trace context of its EVENT
   * (its span, or the span's context as carried to the writer thread). A client's stored event also queues
   * its replication entry when replicating; a replica's (`source = 'replica'`) gets store rules only.
   */
  apply(event: VerifiedEvent, json: Buffer, trace?: Span | TraceCarrier, source?: EventSource): StoreOutcome
  /**
   * Stores events in order as `apply` does, unless the store uses `maxBytes` or more (0: no cap) when the
   * batch starts: then each is refused STORE_FULL but deletions (capacity.ts). `trace(i)`: event i's context;
   * `source(i)`: where it came from (a client, or another replica).
   */
  applyAll(
    events: readonly Applied[],
    maxBytes: number,
    trace: (i: number) => Span | TraceCarrier | undefined,
    source?: (i: number) => EventSource,
  ): StoreOutcome[]
  /** Deletes up to `max` events whose expiration is at or before `now`; returns how many. */
  deleteExpired(now: number, max: number): number
  /** Removes published hints from the outbox. */
  removeHints(keys: Buffer[]): void
  /** Removes replication entries the bus confirmed. */
  removeReplicated(keys: readonly Uint8Array[]): void
  /** Queues hints as they are (a restore puts back those a snapshot held). */
  queueHints(hints: readonly Hint[]): void
  /**
   * Queues a replication entry for each of these events that is stored (a restore puts back those a
   * snapshot's replication outbox held, to be published with this replica as origin); returns how many.
   */
  queueReplication(ids: readonly string[]): number
  /** Applies a snapshot's bookkeeping records under the store's rules (a restore; apply.ts `applyRecord`). */
  applyRecords(records: readonly BookkeepingRecord[]): void
}

const expiryEnd = (now: number): Buffer => {
  const key = Buffer.alloc(4 + 32 + 1, 0xff)
  key.writeUInt32BE(Math.min(now, 0xffffffff), 0)
  return key
}
