import { orAfter } from '../deadline.js'

/** Confirmed ids remembered at most (the oldest forgotten first). */
const MAX_CONFIRMED = 10_000

interface Waiting {
  promise: Promise<void>
  resolve: () => void
}

/**
 * Which of this replica's events still wait for the bus's publish acknowledgment. An event is tracked from
 * its commit (or from the outbox, after a restart) until the drainer reports it published; OK, fan-out and a
 * duplicate EVENT of it all wait on the same acknowledgment.
 */
export class PublishAcks {
  private readonly waiting = new Map<string, Waiting>()
  /**
   * Recently confirmed ids. The drainer can read a commit, publish it and have it confirmed before the writer's
   * answer reaches this thread; the commit's `track` then comes after the confirmation and must not wait again
   * (it did: the OK waited for an acknowledgment that had already come, and was refused at ack_timeout).
   */
  private readonly confirmed = new Set<string>()

  /** Starts waiting for this id's acknowledgment (nothing when it is tracked or already confirmed). */
  track(id: string): void {
    if (this.waiting.has(id) || this.confirmed.has(id)) return
    let resolve = (): void => undefined
    const promise = new Promise<void>(r => (resolve = r))
    this.waiting.set(id, { promise, resolve })
  }

  /** The bus confirmed this id. */
  published(id: string): void {
    this.confirmed.add(id)
    if (this.confirmed.size > MAX_CONFIRMED) this.confirmed.delete(this.confirmed.values().next().value as string)
    const waiting = this.waiting.get(id)
    if (!waiting) return
    this.waiting.delete(id)
    waiting.resolve()
  }

  /** Whether this id was committed here and is not yet confirmed. */
  isPending(id: string): boolean {
    return this.waiting.has(id)
  }

  /** Events waiting for their acknowledgment. */
  get size(): number {
    return this.waiting.size
  }

  /** Resolves `published` once confirmed (at once when not pending), or `timeout` after `ms` (never when `ms` is Infinity). */
  wait(id: string, ms: number): Promise<'published' | 'timeout'> {
    const waiting = this.waiting.get(id)
    if (!waiting) return Promise.resolve('published')
    const confirmed = waiting.promise.then(() => 'published' as const)
    return ms === Infinity ? confirmed : orAfter(confirmed, ms, 'timeout' as const)
  }
}
