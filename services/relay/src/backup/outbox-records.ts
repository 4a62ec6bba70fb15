import { decodeHint, type Hint } from '@msr/hints'
import type { EventStore } from '../store/event-store.js'

/**
 * A snapshot carries, after its events, what its outboxes still held when it was written: one
 * `{"outbox":<hint JSON>}` line per hint, and with `[replication]` one `{"replicate":"<event id>"}` line per
 * entry of the replication outbox (its event is in the snapshot; the id names it). On Cloud Run the outboxes
 * go with the instance's disk, and what the bus never confirmed must not go with them. A restore on boot
 * queues both again (those whose event it restored); `msr-relay import` counts and skips them.
 */
const PREFIX = '{"outbox":'
const REPLICATE = '{"replicate":"'

/** Whether a snapshot line is a hint record rather than an event. */
export const isOutboxRecord = (line: string): boolean => line.startsWith(PREFIX)

/** The hint of a hint record, or why it is not one. */
export const parseOutboxRecord = (line: string): ReturnType<typeof decodeHint> => {
  const record = line.trimEnd()
  if (!record.endsWith('}')) return { ok: false, reason: 'not a hint record' }
  return decodeHint(record.slice(PREFIX.length, -1))
}

/** Whether a snapshot line is a replication record. */
export const isReplicationRecord = (line: string): boolean => line.startsWith(REPLICATE)

/** The event id of a replication record, or why it is not one. */
export const parseReplicationRecord = (line: string): { ok: true; id: string } | { ok: false; reason: string } => {
  const id = /^\{"replicate":"([0-9a-f]{64})"\}$/.exec(line.trimEnd())?.[1]
  return id ? { ok: true, id } : { ok: false, reason: 'not a replication record' }
}

/**
 * The records of everything waiting in the store's outboxes now, oldest first: hints, then (when replicating;
 * a relay without `[replication]` publishes none) the replication entries.
 */
export function* outboxRecords(store: EventStore): Generator<Buffer> {
  for (const hint of store.outbox.all()) yield Buffer.from(`${PREFIX}${JSON.stringify(hint)}}\n`)
  if (!store.replicating) return
  for (const id of store.replication.ids()) yield Buffer.from(`${REPLICATE}${id}"}\n`)
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
