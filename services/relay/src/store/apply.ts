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

const EMPTY = Buffer.alloc(0)
const DELETION = 5

/** Index keys of an event, computed once for both insertion and removal. */
const indexKeys = (dbs: Databases, e: NostrEvent, id: Buffer) => {
  const author = hexBytes(e.pubkey)
  const keys: Array<[Databases['byTime'], Buffer]> = [
    [dbs.byTime, timeKey(EMPTY, e.created_at, id)],
    [dbs.byAuthor, timeKey(author, e.created_at, id)],
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

/** Writes an event and all its index entries. Call inside a write transaction. */
const insert = (dbs: Databases, e: NostrEvent, json: Buffer): void => {
  const id = hexBytes(e.id)
  dbs.events.putSync(id, json)
  for (const [db, key] of indexKeys(dbs, e, id)) db.putSync(key, EMPTY)
  if (isReplaceable(e.kind) || isAddressable(e.kind))
    dbs.addresses.putSync(addressKey(e.kind, e.pubkey, isAddressable(e.kind) ? dTag(e) : ''), Buffer.concat([id, u32(e.created_at)]))
  const expiration = expirationOf(e)
  if (expiration !== undefined) {
    dbs.expiry.putSync(Buffer.concat([u32(expiration), id]), EMPTY)
    dbs.expiryById.putSync(id, u32(expiration))
  }
}

/** Removes a stored event and its index entries. Call inside a write transaction. */
export const removeEvent = (dbs: Databases, e: NostrEvent): void => {
  const id = hexBytes(e.id)
  dbs.events.removeSync(id)
  for (const [db, key] of indexKeys(dbs, e, id)) db.removeSync(key)
  if (isReplaceable(e.kind) || isAddressable(e.kind)) {
    const address = addressKey(e.kind, e.pubkey, isAddressable(e.kind) ? dTag(e) : '')
    if (dbs.addresses.get(address)?.subarray(0, 32).equals(id)) dbs.addresses.removeSync(address)
  }
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

/** Applies NIP-01 replaceable/addressable rules; undefined when the event may be stored. */
const replaceOlder = (dbs: Databases, e: NostrEvent): Reason | undefined => {
  const address = addressKey(e.kind, e.pubkey, isAddressable(e.kind) ? dTag(e) : '')
  const deletedUpTo = dbs.deletedAddresses.get(address)
  if (deletedUpTo && e.created_at <= deletedUpTo.readUInt32BE(0)) return 'blocked: this event was deleted by its author'
  const current = dbs.addresses.get(address)
  if (!current) return undefined
  const currentId = current.toString('hex', 0, 32)
  const currentAt = current.readUInt32BE(32)
  if (currentAt > e.created_at || (currentAt === e.created_at && currentId < e.id))
    return 'invalid: a newer version of this replaceable event is already stored'
  const old = loadEvent(dbs, currentId)
  if (old) removeEvent(dbs, old)
  return undefined
}

interface DeletionTargets {
  ids: string[]
  addresses: Array<{ kind: number; pubkey: string; d: string }>
  foreign: number
}

/** Sorts a deletion's `e` and `a` targets into the author's own and others'. */
const deletionTargets = (dbs: Databases, deletion: NostrEvent): DeletionTargets => {
  const targets: DeletionTargets = { ids: [], addresses: [], foreign: 0 }
  for (const [name, value] of deletion.tags) {
    if (name === 'e' && isHex64(value)) {
      const target = loadEvent(dbs, value)
      if (target && target.pubkey !== deletion.pubkey) targets.foreign++
      else targets.ids.push(value)
    } else if (name === 'a' && value !== undefined) {
      const address = parseAddress(value)
      if (!address) continue
      if (address.pubkey !== deletion.pubkey) targets.foreign++
      else targets.addresses.push(address)
    }
  }
  return targets
}

const parseAddress = (value: string) => {
  const match = /^(\d{1,5}):([0-9a-f]{64}):(.*)$/s.exec(value)
  if (!match) return undefined
  const kind = Number(match[1])
  if (kind > 65535 || !(isReplaceable(kind) || isAddressable(kind))) return undefined
  return { kind, pubkey: match[2] as string, d: isAddressable(kind) ? (match[3] as string) : '' }
}

/** NIP-09: deletes the author's own targets and leaves tombstones; refuses a request aimed only at others. */
const applyDeletion = (dbs: Databases, deletion: NostrEvent): Reason | undefined => {
  const targets = deletionTargets(dbs, deletion)
  if (targets.foreign > 0 && targets.ids.length === 0 && targets.addresses.length === 0)
    return 'blocked: a deletion request can only delete events by its own author'
  const author = hexBytes(deletion.pubkey)
  for (const id of targets.ids) {
    const target = loadEvent(dbs, id)
    if (target?.kind === DELETION) continue // deleting a deletion has no effect
    if (target) removeEvent(dbs, target)
    dbs.deletedIds.putSync(hexBytes(id), author)
  }
  for (const { kind, pubkey, d } of targets.addresses) deleteAddress(dbs, addressKey(kind, pubkey, d), deletion.created_at)
  return undefined
}

const deleteAddress = (dbs: Databases, address: Buffer, upTo: number): void => {
  const previous = dbs.deletedAddresses.get(address)
  if (!previous || previous.readUInt32BE(0) < upTo) dbs.deletedAddresses.putSync(address, u32(upTo))
  const current = dbs.addresses.get(address)
  if (current && current.readUInt32BE(32) <= upTo) {
    const old = loadEvent(dbs, current.subarray(0, 32))
    if (old) removeEvent(dbs, old)
  }
}

/** Stores one verified event under NIP-01/09 rules. Call inside a write transaction, in arrival order. */
export const applyEvent = (dbs: Databases, event: VerifiedEvent, json: Buffer): StoreOutcome => {
  const id = hexBytes(event.id)
  if (dbs.events.doesExist(id)) return { status: 'duplicate' }
  // A tombstone never blocks a kind 5: deleting a deletion has no effect (NIP-09).
  const deletedBy = event.kind === DELETION ? undefined : dbs.deletedIds.get(id)
  if (deletedBy?.equals(hexBytes(event.pubkey))) return { status: 'rejected', reason: 'blocked: this event was deleted by its author' }
  if (isReplaceable(event.kind) || isAddressable(event.kind)) {
    const reason = replaceOlder(dbs, event)
    if (reason) return { status: 'rejected', reason }
  }
  if (event.kind === DELETION) {
    const reason = applyDeletion(dbs, event)
    if (reason) return { status: 'rejected', reason }
  }
  insert(dbs, event, json)
  return { status: 'stored' }
}
