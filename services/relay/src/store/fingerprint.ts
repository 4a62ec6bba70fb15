import { createHash } from 'node:crypto'
import type { EventStore } from './event-store.js'

/** What a store holds, as two replicas (or a replica and a single instance) can compare it. */
export interface Fingerprint {
  /** Events served at `at`: stored and not expired (NIP-40). */
  events: number
  /** SHA-256 over those events' ids (32 bytes each) in id order, hex. */
  sha256: string
  /** Unix seconds the expirations were judged at. */
  at: number
}

/** Ids hashed between two yields to the event loop (a running relay keeps serving while it runs). */
const IDS_PER_TURN = 5000

/**
 * The store's fingerprint: the set of events it would serve, whatever order they arrived in. Two stores
 * with the same fingerprint at the same `now` serve the same events (every rule of the store, deletions,
 * replacement and expiration included, is decided by which events were applied, not their order). Read
 * from one snapshot; ids only, so no event is parsed.
 */
export const fingerprint = async (store: EventStore, now: number): Promise<Fingerprint> => {
  const hash = createHash('sha256')
  let events = 0
  let read = 0
  for (const id of store.allIds()) {
    if (++read % IDS_PER_TURN === 0) await new Promise(resolve => setImmediate(resolve))
    if (store.isExpired(id, now)) continue
    hash.update(id)
    events++
  }
  return { events, sha256: hash.digest('hex'), at: now }
}
