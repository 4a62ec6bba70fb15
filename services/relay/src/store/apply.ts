import {
  dTag,
  expirationOf,
  isAddressable,
  isHex64,
  isReplaceable,
  type NostrEvent,
  type Reason,
  type VerifiedEvent,
} from '@msr/nostr'
import type { Databases } from './databases.js'
import { addressKey, authorKindPrefix, hexBytes, kindBytes, tagPrefix, timeKey, u32 } from './keys.js'

/** What the store did with one event. */
export type StoreOutcome = { status: 'stored' } | { status: 'duplicate' } | { status: 'rejected'; reason: Reason }

/**
 * Where an event comes from: a client of this relay (`client`: the store's own rules plus the one admission
 * rule decided here, see applyDeletion), or another replica that already admitted it (`replica`: store
 * rules only, so every replica ends with the same store whatever the order events arrive in).
 */
export type EventSource = 'client' | 'replica'

const EMPTY = Buffer.alloc(0)
const DELETION = 5

/** Index keys of an event, computed once for both insertion and removal. */
const indexKeys = (dbs: Databases, e: NostrEvent, id: Buffer) => {
  const keys: Array<[Databases['byTime'], Buffer]> = [
    [dbs.byTime, timeKey(EMPTY, e.created_at, id)],
    [dbs.byKind, timeKey(kindBytes(e.kind), e.created_at, id)],
    [dbs.byAuthorKind, timeKey(authorKindPrefix(e.pubkey, e.kind), e.created_at, id)],
  ]
  const seen = new Set<string>()
  for (const tag of e.tags) {
    const [name, value] = tag
    if (name === undefined || value === undefined || name.length !== 1 || !/^[a-zA-Z]$/.test(name)) continue
    if (seen.has(name + value)) continue
    seen.add(name + value)
    keys.push([dbs.byTag, timeKey(tagPrefix(name, value), e.created_at, id)])
  }
  return keys
}

/** Writes an event and all its index entries (its address's mark is already set). Call inside a write transaction. */
const insert = (dbs: Databases, e: NostrEvent, id: Buffer, json: Buffer): void => {
  dbs.events.putSync(id, json)
  for (const [db, key] of indexKeys(dbs, e, id)) db.putSync(key, EMPTY)
  const expiration = expirationOf(e)
  if (expiration !== undefined) {
    dbs.expiry.putSync(Buffer.concat([u32(expiration), id]), EMPTY)
    dbs.expiryById.putSync(id, u32(expiration))
  }
}

/**
 * Removes a stored event and its index entries. Call inside a write transaction. The address's mark stays:
 * an older version must not come back because the newest one was deleted or expired.
 */
export const removeEvent = (dbs: Databases, e: NostrEvent): void => {
  const id = hexBytes(e.id)
  dbs.events.removeSync(id)
  for (const [db, key] of indexKeys(dbs, e, id)) db.removeSync(key)
  const expiration = dbs.expiryById.get(id)
  if (expiration) {
    dbs.expiry.removeSync(Buffer.concat([expiration, id]))
    dbs.expiryById.removeSync(id)
  }
}

/** The stored event with this id, parsed. */
export const loadEvent = (dbs: Databases, id: string | Buffer): NostrEvent | undefined => {
  const json = dbs.events.get(typeof id === 'string' ? hexBytes(id) : id)
  return json === undefined ? undefined : (JSON.parse(json.toString('utf8')) as NostrEvent)
}

/** The `deleted_ids` key: target id + the pubkey whose kind 5 named it. */
const tombstoneKey = (id: Buffer, deleter: string): Buffer => {
  const key = Buffer.allocUnsafe(64)
  id.copy(key, 0)
  key.write(deleter, 32, 'hex')
  return key
}

const DELETED: Reason = 'blocked: this event was deleted by its author'

const addressOf = (e: NostrEvent): Buffer => addressKey(e.kind, e.pubkey, isAddressable(e.kind) ? dTag(e) : '')

/**
 * The stored event with this id when it is a version of `address`. A mark written here always names one;
 * a snapshot's record is checked for its layout only, so a mark naming another address's event must never
 * make that event go.
 */
const versionAt = (dbs: Databases, address: Buffer, id: Buffer): NostrEvent | undefined => {
  const stored = loadEvent(dbs, id)
  return stored && addressOf(stored).equals(address) ? stored : undefined
}

/** Whether a version (created_at, id) ranks above the mark (id + created_at): newer, or same second and lower id. */
const outranks = (createdAt: number, id: Buffer, mark: Buffer): boolean => {
  const markAt = mark.readUInt32BE(32)
  return createdAt > markAt || (createdAt === markAt && id.compare(mark, 0, 32) < 0)
}

/**
 * NIP-01 replaceable/addressable rules against the address's mark: the best version ever seen, kept when
 * that version is removed. A better version raises the mark and evicts the stored one even when it is
 * itself refused as deleted; otherwise whether an older version stays served would depend on whether the
 * deletion arrived before or after the newer version.
 */
const admitVersion = (dbs: Databases, e: NostrEvent, id: Buffer, deletedById: boolean): Reason | undefined => {
  const address = addressOf(e)
  const mark = dbs.addresses.get(address)
  const best = raiseMark(dbs, address, id, e.created_at, mark)
  const deletedUpTo = dbs.deletedAddresses.get(address)
  if (deletedById || (deletedUpTo && e.created_at <= deletedUpTo.readUInt32BE(0))) return DELETED
  // Not the best and not the mark itself (one removed by a sweep and sent again): an older version.
  if (!best && mark && !mark.subarray(0, 32).equals(id)) return 'invalid: a newer version of this replaceable event is already stored'
  return undefined
}

/**
 * Raises the address's mark to the version (id, createdAt) when it outranks the mark (or there is none),
 * removing the stored version it replaces; true when raised. Only ever raises: a lower version changes nothing.
 */
const raiseMark = (dbs: Databases, address: Buffer, id: Buffer, createdAt: number, mark = dbs.addresses.get(address)): boolean => {
  if (mark !== undefined && !outranks(createdAt, id, mark)) return false
  const previous = mark && versionAt(dbs, address, mark.subarray(0, 32))
  if (previous) removeEvent(dbs, previous)
  dbs.addresses.putSync(address, Buffer.concat([id, u32(createdAt)]))
  return true
}

interface Address {
  kind: number
  pubkey: string
  d: string
}

const parseAddress = (value: string): Address | undefined => {
  const match = /^(\d{1,5}):([0-9a-f]{64}):(.*)$/s.exec(value)
  if (!match) return undefined
  const kind = Number(match[1])
  if (kind > 65535 || !(isReplaceable(kind) || isAddressable(kind))) return undefined
  return { kind, pubkey: match[2] as string, d: isAddressable(kind) ? (match[3] as string) : '' }
}

/**
 * NIP-09. Every `e` target gets a tombstone (target id, this author), stored or not: it can only ever refuse
 * an event by this author, since an id commits to its pubkey. Stored targets by this author are removed,
 * except kind 5s (deleting a deletion has no effect). Own `a` targets delete up to this created_at.
 *
 * The one rule that depends on arrival order, an admission rule applied only to a client's event: a request
 * whose targets are all known to be others' (stored events of other authors, addresses of other pubkeys) is
 * refused. Had a foreign `e` target not arrived yet, the same request would be stored; either way it changes
 * nothing else, since it has no own targets. A replica stores any kind 5 its origin stored.
 */
const applyDeletion = (dbs: Databases, deletion: NostrEvent, source: EventSource): Reason | undefined => {
  const ids = new Set(deletion.tags.filter(([name, value]) => name === 'e' && isHex64(value)).map(tag => tag[1] as string))
  const addresses = deletion.tags.flatMap(([name, value]) => (name === 'a' && value !== undefined ? (parseAddress(value) ?? []) : []))
  const targets = [...ids].map(id => ({ id: hexBytes(id), stored: loadEvent(dbs, id) }))
  const ownAddresses = addresses.filter(a => a.pubkey === deletion.pubkey)
  const foreign = (t: (typeof targets)[number]) => t.stored !== undefined && t.stored.pubkey !== deletion.pubkey
  if (source === 'client' && targets.length + addresses.length > 0 && ownAddresses.length === 0 && targets.every(foreign))
    return 'blocked: a deletion request can only delete events by its own author'
  for (const { id, stored } of targets) putTombstone(dbs, id, deletion.pubkey, stored)
  for (const { kind, pubkey, d } of ownAddresses) deleteAddress(dbs, addressKey(kind, pubkey, d), deletion.created_at)
  return undefined
}

/** Puts the tombstone (target, deleter) and removes the target when it is the deleter's own, but a kind 5 (NIP-09). */
const putTombstone = (dbs: Databases, id: Buffer, deleter: string, stored = loadEvent(dbs, id)): void => {
  dbs.deletedIds.putSync(tombstoneKey(id, deleter), EMPTY)
  if (stored && stored.pubkey === deleter && stored.kind !== DELETION) removeEvent(dbs, stored)
}

/** Deletes an address up to `upTo` (NIP-09 `a`): versions created then or before are removed and refused. */
const deleteAddress = (dbs: Databases, address: Buffer, upTo: number): void => {
  const previous = dbs.deletedAddresses.get(address)
  if (!previous || previous.readUInt32BE(0) < upTo) dbs.deletedAddresses.putSync(address, u32(upTo))
  const mark = dbs.addresses.get(address)
  if (mark && mark.readUInt32BE(32) <= upTo) {
    const current = versionAt(dbs, address, mark.subarray(0, 32))
    if (current) removeEvent(dbs, current)
  }
}

const rejected = (reason: Reason): StoreOutcome => ({ status: 'rejected', reason })

/**
 * Stores one verified event under NIP-01/09 rules. Call inside a write transaction. What ends up served
 * does not depend on arrival order, except whether a client's kind 5 aimed only at others is stored (see
 * applyDeletion); with `source = 'replica'` not even that.
 */
export const applyEvent = (dbs: Databases, event: VerifiedEvent, json: Buffer, source: EventSource = 'client'): StoreOutcome => {
  const id = hexBytes(event.id)
  if (dbs.events.doesExist(id)) return { status: 'duplicate' }
  // A tombstone never blocks a kind 5: deleting a deletion has no effect (NIP-09).
  const deletedById = event.kind !== DELETION && dbs.deletedIds.doesExist(tombstoneKey(id, event.pubkey))
  if (isReplaceable(event.kind) || isAddressable(event.kind)) {
    const reason = admitVersion(dbs, event, id, deletedById)
    if (reason) return rejected(reason)
  } else if (deletedById) return rejected(DELETED)
  if (event.kind === DELETION) {
    const reason = applyDeletion(dbs, event, source)
    if (reason) return rejected(reason)
  }
  insert(dbs, event, id, json)
  return { status: 'stored' }
}

/**
 * A piece of the store's deletion and version bookkeeping that no stored event implies (or may not, once
 * restored: an event that expires): an address's mark, a tombstone, a deleted address. Hex throughout (it
 * crosses to the writer thread and into snapshots); addresses as their `addresses` key.
 */
export type BookkeepingRecord =
  | { type: 'mark'; address: string; id: string; createdAt: number }
  | { type: 'tombstone'; id: string; by: string }
  | { type: 'deleted-address'; address: string; upTo: number }

/**
 * Applies a bookkeeping record under the store's own rules, as the event that made it would have been: a mark
 * only raises the address's mark, a deleted address only raises its created_at, a tombstone is put; a stored
 * event they now refuse is removed. Call inside a write transaction. Any order of records and events ends
 * with the same store.
 */
export const applyRecord = (dbs: Databases, record: BookkeepingRecord): void => {
  switch (record.type) {
    case 'mark': {
      // A mark names a version of its own address: one naming another address's stored event is not applied.
      const [address, id] = [hexBytes(record.address), hexBytes(record.id)]
      if (dbs.events.doesExist(id) && !versionAt(dbs, address, id)) return
      return void raiseMark(dbs, address, id, record.createdAt)
    }
    case 'tombstone':
      return putTombstone(dbs, hexBytes(record.id), record.by)
    case 'deleted-address':
      return deleteAddress(dbs, hexBytes(record.address), record.upTo)
  }
}

/**
 * The bookkeeping a snapshot must carry besides its events, from the current read view: every tombstone and
 * deleted address (small; a kind 5 that made one may be gone, expired), and each mark whose version is not
 * stored or carries an expiration (importing a stored version without one recreates its mark).
 */
export function* bookkeepingOf(dbs: Databases): Generator<BookkeepingRecord> {
  for (const { key, value } of dbs.addresses.getRange({ snapshot: true })) {
    const id = value.subarray(0, 32)
    if (dbs.events.doesExist(id) && !dbs.expiryById.doesExist(id)) continue
    yield { type: 'mark', address: key.toString('hex'), id: id.toString('hex'), createdAt: value.readUInt32BE(32) }
  }
  for (const key of dbs.deletedIds.getKeys({ snapshot: true }))
    yield { type: 'tombstone', id: key.toString('hex', 0, 32), by: key.toString('hex', 32, 64) }
  for (const { key, value } of dbs.deletedAddresses.getRange({ snapshot: true }))
    yield { type: 'deleted-address', address: key.toString('hex'), upTo: value.readUInt32BE(0) }
}
