import type { Hint } from '@msr/hints'
import type { VerifiedEvent } from '@msr/nostr'
import type { EventStore, StoreOutcome } from '../store/event-store.js'

/** One event waiting for the writer. */
interface Pending {
  event: VerifiedEvent
  json: Buffer
  resolve: (outcome: StoreOutcome) => void
}

/** An event that has just been committed, handed to fan-out in commit order. */
export interface Committed {
  event: VerifiedEvent
  json: Buffer
}

const MAX_BATCH = 2000

/**
 * The single writer: queues verified events, commits them in arrival order in batched LMDB
 * transactions, resolves each event's outcome only after its transaction committed, then hands
 * the stored events to `onCommitted` (fan-out) in the same order.
 */
export class Writer {
  private queue: Pending[] = []
  private scheduled = false
  private inFlight = new Set<Promise<void>>()

  constructor(
    private readonly store: EventStore,
    private readonly onCommitted: (batch: Committed[]) => void,
    private readonly onError: (error: unknown) => void,
  ) {}

  /** Queues an event; resolves with what the store did once that is durable. */
  submit(event: VerifiedEvent, json: Buffer): Promise<StoreOutcome> {
    return new Promise(resolve => {
      this.queue.push({ event, json, resolve })
      if (!this.scheduled) {
        this.scheduled = true
        setImmediate(() => this.flush())
      }
    })
  }

  /** Events queued or being committed. */
  get depth(): number {
    return this.queue.length
  }

  private flush(): void {
    this.scheduled = false
    while (this.queue.length > 0) this.commit(this.queue.splice(0, MAX_BATCH))
  }

  private commit(batch: Pending[]): void {
    const done = this.store
      .write(tx => batch.map(p => tx.apply(p.event, p.json)))
      .then(
        outcomes => this.settle(batch, outcomes),
        error => {
          this.onError(error)
          for (const p of batch) p.resolve({ status: 'rejected', reason: 'error: the event could not be stored; try again' })
        },
      )
      .finally(() => this.inFlight.delete(done))
    this.inFlight.add(done)
  }

  private settle(batch: Pending[], outcomes: StoreOutcome[]): void {
    const stored: Committed[] = []
    batch.forEach((p, i) => {
      const outcome = outcomes[i] as StoreOutcome
      if (outcome.status === 'stored') stored.push({ event: p.event, json: p.json })
      p.resolve(outcome)
    })
    if (stored.length > 0) this.onCommitted(stored)
  }

  /** Deletes events whose NIP-40 expiration has passed, in batches; resolves with how many. */
  async sweepExpired(now: number, batch = 1000): Promise<number> {
    let total = 0
    for (;;) {
      const deleted = await this.store.write(tx => tx.deleteExpired(now, batch))
      total += deleted
      if (deleted < batch) return total
    }
  }

  /** Removes hints the bus has confirmed from the outbox (through the one writer, like every write). */
  removeHints(keys: Buffer[]): Promise<void> {
    return this.store.write(tx => tx.removeHints(keys))
  }

  /** Queues hints in the outbox as they are (a restore puts back those a snapshot held). */
  queueHints(hints: readonly Hint[]): Promise<void> {
    return this.store.write(tx => tx.queueHints(hints))
  }

  /** Resolves once everything submitted so far has been committed (graceful shutdown). */
  async drain(): Promise<void> {
    while (this.queue.length > 0 || this.scheduled || this.inFlight.size > 0) {
      if (this.scheduled || this.queue.length > 0) this.flush()
      await Promise.all([...this.inFlight])
    }
  }
}
