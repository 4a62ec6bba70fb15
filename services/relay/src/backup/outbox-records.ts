import { decodeHint, type Hint } from '@msr/hints'
import type { EventStore } from '../store/event-store.js'

/**
 * A snapshot carries, after its events, the hints still waiting in the outbox when it was written, one
 * `{"outbox":<hint JSON>}` line each: on Cloud Run the outbox goes with the instance's disk, and a hint the
 * bus never confirmed must not go with it. A restore on boot queues them again (those whose event it
 * restored); `msr-relay import` counts and skips them.
 */
const PREFIX = '{"outbox":'

/** Whether a snapshot line is a hint record rather than an event. */
export const isOutboxRecord = (line: string): boolean => line.startsWith(PREFIX)

/** The hint of a hint record, or why it is not one. */
export const parseOutboxRecord = (line: string): ReturnType<typeof decodeHint> => {
  const record = line.trimEnd()
  if (!record.endsWith('}')) return { ok: false, reason: 'not a hint record' }
  return decodeHint(record.slice(PREFIX.length, -1))
}

/** The hint records of everything waiting in the store's outbox now, oldest first. */
export function* outboxRecords(store: EventStore): Generator<Buffer> {
  for (const hint of store.outbox.all()) yield Buffer.from(`${PREFIX}${JSON.stringify(hint)}}\n`)
}

/** Hints gathered from a restore's snapshots: one per event, the newest record winning. */
export class RestoredHints {
  private readonly byEvent = new Map<string, Hint>()

  add(hint: Hint): void {
    this.byEvent.delete(hint.id) // re-inserted last: the order of the newest snapshot
    this.byEvent.set(hint.id, hint)
  }

  /** Those whose event is in the store (a record may name an event committed after its snapshot's view). */
  inStore(store: EventStore): Hint[] {
    return [...this.byEvent.values()].filter(hint => store.get(hint.id) !== undefined)
  }
}
