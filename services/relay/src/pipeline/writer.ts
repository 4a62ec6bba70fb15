import { statfsSync } from 'node:fs'
import type { Hint } from '@msr/hints'
import type { VerifiedEvent } from '@msr/nostr'
import type { Span } from '@opentelemetry/api'
import { STORE_FULL } from '../store/capacity.js'
import type { BookkeepingRecord, EventSource, EventStore, StoreOutcome } from '../store/event-store.js'
import { writerThread } from './writer-thread.js'

/** One event waiting for the writer. */
export interface Pending {
  event: VerifiedEvent
  json: Buffer
  span: Span | undefined
  source: EventSource
  resolve: (outcome: StoreOutcome) => void
}

/** An event that has just been committed, handed to fan-out in commit order (with its EVENT's span, if traced). */
export interface Committed {
  event: VerifiedEvent
  json: Buffer
  span?: Span | undefined
  /** A client's event (the default) or one applied from another replica. */
  source?: EventSource
}

/** Observes each committed batch, in commit order (fan-out, the hint drainer's wake-up, snapshots). */
export type CommitListener = (batch: Committed[]) => void

/** What the writer reports when a batch could not be stored, or a listener threw. */
export type WriteErrorHandler = (error: unknown, context: { events: number; firstId?: string }) => void

/** The answer every event of a batch gets when its transaction failed: nothing of it was stored. */
export const WRITE_FAILED = 'error: the event could not be stored; try again'

/** The answer instead when the store could not grow: the disk, LMDB's map or `data.max_size` is full. Reads go on. */
export { STORE_FULL }

/** Free bytes below which a failed write is put down to a full disk (a full disk may also fail a flush with EIO). */
const NEARLY_FULL_BYTES = 16 * 1024 * 1024

/** Whether a failed write came from a full store: the error says so, or the store's filesystem has (almost) no room left. */
const isStoreFull = (error: unknown, path: string): boolean => {
  if (/no space left on device|ENOSPC|MDB_MAP_FULL/i.test(error instanceof Error ? error.message : String(error))) return true
  try {
    const { bavail, bsize } = statfsSync(path)
    return bavail * bsize < NEARLY_FULL_BYTES
  } catch {
    return false
  }
}

const MAX_BATCH = 2000
/**
 * Transactions in flight at once. Each costs LMDB a commit and a sync whatever its size, and is answered
 * only after its own: more in flight means more, smaller ones, each OK waiting behind those before it.
 * With this bound, what arrives while they are on their way is committed together next.
 */
const MAX_COMMITTING = 2

/**
 * Where the writer's transactions run, each resolved once committed and on disk: on the event loop
 * (`inProcess`) or on the writer thread (writer-thread.ts), which takes LMDB's write encoding off the loop.
 */
export interface Transactions {
  /** Stores a batch; once the store uses `maxBytes` or more (0: no cap), refuses all but deletions (store/capacity.ts). */
  apply(batch: readonly Pending[], maxBytes?: number): Promise<StoreOutcome[]>
  deleteExpired(now: number, max: number): Promise<number>
  removeHints(keys: Buffer[]): Promise<void>
  removeReplicated(keys: Buffer[]): Promise<void>
  queueHints(hints: readonly Hint[]): Promise<void>
  queueReplication(ids: readonly string[]): Promise<number>
  applyRecords(records: readonly BookkeepingRecord[]): Promise<void>
  /** Ends the thread, if any, once its transactions are done. */
  close(): Promise<void>
}

/** Transactions on this thread, through `EventStore.write`. */
export const inProcess = (store: EventStore): Transactions => ({
  apply: (batch, maxBytes = 0) => store.write(tx => tx.applyAll(batch, maxBytes, i => batch[i]?.span, i => batch[i]?.source ?? 'client')),
  deleteExpired: (now, max) => store.write(tx => tx.deleteExpired(now, max)),
  removeHints: keys => store.write(tx => tx.removeHints(keys)),
  removeReplicated: keys => store.write(tx => tx.removeReplicated(keys)),
  queueHints: hints => store.write(tx => tx.queueHints(hints)),
  queueReplication: ids => store.write(tx => tx.queueReplication(ids)),
  applyRecords: records => store.write(tx => tx.applyRecords(records)),
  close: async () => undefined,
})

/** Runs a transaction; one that throws before it even starts becomes a rejection like any other failure. */
const attempt = async <T>(run: () => Promise<T>): Promise<T> => run()

/**
 * The single writer: queues verified events, commits them in arrival order in batched LMDB
 * transactions, resolves each event's outcome only once its transaction is on disk (committed and
 * synced), then hands the stored events to the commit listeners in the same order. `submit` never
 * rejects: a failed batch answers each of its events with `error:`.
 */
export class Writer {
  private queue: Pending[] = []
  private scheduled = false
  /** Transactions asked for and not yet answered (at most MAX_COMMITTING). */
  private committing = 0
  private readonly inFlight = new Set<Promise<void>>()
  private readonly listeners: CommitListener[] = []
  /** Settling is chained so that outcomes and listeners follow commit order whatever order the answers come in. */
  private settled: Promise<void> = Promise.resolve()

  /** A writer whose transactions run on this thread (the CLI's import, tests); the relay uses `Writer.threaded`. */
  constructor(
    private readonly store: EventStore,
    private readonly onError: WriteErrorHandler,
    private readonly transactions: Transactions = inProcess(store),
    /** `data.max_size` in force (0: no cap), read for each transaction (a reload changes it). */
    private readonly maxBytes: () => number = () => 0,
  ) {}

  /**
   * A writer whose transactions run on a writer thread of their own (started and ready when this resolves);
   * `module` is the thread's entry (see writerThread).
   */
  static async threaded(store: EventStore, onError: WriteErrorHandler, maxBytes?: () => number, module?: URL): Promise<Writer> {
    return new Writer(store, onError, await writerThread(store, module), maxBytes)
  }

  /** Adds a listener for committed batches (called in the order listeners were added). */
  onCommitted(listener: CommitListener): void {
    this.listeners.push(listener)
  }

  /**
   * Queues an event; resolves with what the store did once that is durable. `span` (its `relay.event`) gives
   * its hint a trace context and is handed on to the commit listeners. `source = 'replica'`: an event another
   * replica admitted, applied under store rules only (replicated apply).
   */
  submit(event: VerifiedEvent, json: Buffer, span?: Span, source: EventSource = 'client'): Promise<StoreOutcome> {
    return new Promise(resolve => {
      this.queue.push({ event, json, span, source, resolve })
      if (!this.scheduled) {
        this.scheduled = true
        setImmediate(() => this.flush())
      }
    })
  }

  /**
   * Resolves once every transaction handed to the store so far has been answered and its listeners called
   * (whatever a reader sees committed now has reached the fan-out by then); undefined when none is in flight.
   */
  get settling(): Promise<void> | undefined {
    return this.inFlight.size > 0 ? this.settled : undefined
  }

  /** Events queued or being committed. */
  get depth(): number {
    return this.queue.length
  }

  private flush(): void {
    this.scheduled = false
    while (this.queue.length > 0 && this.committing < MAX_COMMITTING) this.commit(this.queue.splice(0, MAX_BATCH))
  }

  private commit(batch: Pending[]): void {
    // Handled at once (a failure waiting for its turn is not an unhandled rejection), settled in turn.
    this.committing++
    const outcome = attempt(() => this.transactions.apply(batch, this.maxBytes())).then(
      outcomes => () => this.settle(batch, outcomes),
      (error: unknown) => () => this.fail(batch, error),
    )
    // What queued meanwhile goes as the next transaction, as soon as this one is answered (group commit).
    void outcome.then(() => {
      this.committing--
      if (this.queue.length > 0 && !this.scheduled) {
        this.scheduled = true
        setImmediate(() => this.flush())
      }
    })
    const done = (this.settled = this.settled
      .then(() => outcome)
      .then(settle => settle())
      .catch((error: unknown) => this.onError(error, { events: batch.length, firstId: batch[0]?.event.id })))
    this.inFlight.add(done)
    void done.finally(() => this.inFlight.delete(done))
  }

  private settle(batch: Pending[], outcomes: StoreOutcome[]): void {
    const stored: Committed[] = []
    batch.forEach((p, i) => {
      const outcome = outcomes[i] as StoreOutcome
      if (outcome.status === 'stored') stored.push({ event: p.event, json: p.json, span: p.span, source: p.source })
      p.resolve(outcome)
    })
    if (stored.length === 0) return
    for (const listener of this.listeners) {
      try {
        listener(stored)
      } catch (error) {
        this.onError(error, { events: stored.length, firstId: stored[0]?.event.id })
      }
    }
  }

  private fail(batch: Pending[], error: unknown): void {
    this.onError(error, { events: batch.length, firstId: batch[0]?.event.id })
    const reason = isStoreFull(error, this.store.path) ? STORE_FULL : WRITE_FAILED
    for (const p of batch) p.resolve({ status: 'rejected', reason })
  }

  /** Deletes events whose NIP-40 expiration has passed, in batches; resolves with how many. */
  async sweepExpired(now: number, batch = 1000): Promise<number> {
    let total = 0
    for (;;) {
      const deleted = await attempt(() => this.transactions.deleteExpired(now, batch))
      total += deleted
      if (deleted < batch) return total
    }
  }

  /** Removes hints the bus has confirmed from the outbox (through the one writer, like every write). */
  removeHints(keys: Buffer[]): Promise<void> {
    return attempt(() => this.transactions.removeHints(keys))
  }

  /** Removes replication entries the bus has confirmed (through the one writer, like every write). */
  removeReplicated(keys: Buffer[]): Promise<void> {
    return attempt(() => this.transactions.removeReplicated(keys))
  }

  /** Queues hints in the outbox as they are (a restore puts back those a snapshot held). */
  queueHints(hints: readonly Hint[]): Promise<void> {
    return attempt(() => this.transactions.queueHints(hints))
  }

  /** Queues the replication entries of these stored events again (a restore); resolves with how many were stored. */
  queueReplication(ids: readonly string[]): Promise<number> {
    return attempt(() => this.transactions.queueReplication(ids))
  }

  /** Applies a snapshot's bookkeeping records in one transaction (a restore; through the one writer, like every write). */
  applyRecords(records: readonly BookkeepingRecord[]): Promise<void> {
    return attempt(() => this.transactions.applyRecords(records))
  }

  /** Resolves once everything submitted so far has been committed and answered (graceful shutdown). */
  async drain(): Promise<void> {
    while (this.queue.length > 0 || this.scheduled || this.inFlight.size > 0) {
      if (this.scheduled || this.queue.length > 0) this.flush()
      await Promise.all([...this.inFlight])
    }
  }

  /** Drains, then ends the writer thread (if any): nothing more can be written. */
  async close(): Promise<void> {
    await this.drain()
    await this.transactions.close()
  }
}
