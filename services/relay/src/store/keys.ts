import { createHash } from 'node:crypto'
import { isAddressable, isReplaceable, MAX_CREATED_AT } from '@msr/nostr'

// Index keys are binary so that lexicographic LMDB order is the order we serve:
// every index key ends in `inverted created_at (4 bytes) + id (32 bytes)`, so a forward scan
// yields newest first and, within one second, the lowest id first (NIP-01's tie rule).

/** Bytes of the timestamp + id suffix shared by every time-ordered index key. */
export const SUFFIX_BYTES = 36

/** The inverted timestamp: larger created_at sorts first. */
export const invertTs = (createdAt: number): number => MAX_CREATED_AT - Math.min(Math.max(createdAt, 0), MAX_CREATED_AT)

const HEX64 = /^[0-9a-f]{64}$/
const MAX_RAW_VALUE = 200

/**
 * A compact, injective encoding of a tag or `d` value: 64-hex values as their 32 bytes, short strings
 * length-prefixed, long strings as a sha256 (marked, so a match on one is re-checked on the event).
 */
export const valueKey = (value: string): Buffer => {
  if (HEX64.test(value)) return Buffer.concat([Buffer.from([1]), Buffer.from(value, 'hex')])
  const bytes = Buffer.from(value, 'utf8')
  if (bytes.length <= MAX_RAW_VALUE) return Buffer.concat([Buffer.from([0, bytes.length]), bytes])
  return Buffer.concat([Buffer.from([2]), createHash('sha256').update(bytes).digest()])
}

/** True when a value key is a hash, so matches through it must be confirmed on the event itself. */
export const isHashedValueKey = (key: Buffer): boolean => key[0] === 2

/** `prefix + inverted created_at + id`. */
export const timeKey = (prefix: Buffer, createdAt: number, id: Buffer): Buffer => {
  const key = Buffer.allocUnsafe(prefix.length + SUFFIX_BYTES)
  prefix.copy(key, 0)
  key.writeUInt32BE(invertTs(createdAt), prefix.length)
  id.copy(key, prefix.length + 4)
  return key
}

/** The first key of `prefix` for events created at or before `until`. */
export const rangeStart = (prefix: Buffer, until: number): Buffer => {
  const key = Buffer.alloc(prefix.length + 4)
  prefix.copy(key, 0)
  key.writeUInt32BE(invertTs(until), prefix.length)
  return key
}

/** A key just past every key of `prefix` for events created at or after `since`. */
export const rangeEnd = (prefix: Buffer, since: number): Buffer => {
  const key = Buffer.alloc(prefix.length + SUFFIX_BYTES + 1, 0xff)
  prefix.copy(key, 0)
  key.writeUInt32BE(invertTs(since), prefix.length)
  return key
}

/** A 16-bit kind. */
export const kindBytes = (kind: number): Buffer => {
  const b = Buffer.allocUnsafe(2)
  b.writeUInt16BE(kind, 0)
  return b
}

/** Hex → bytes (ids and pubkeys). */
export const hexBytes = (hex: string): Buffer => Buffer.from(hex, 'hex')

/** author + kind prefix (the pubkey as hex, or as its 32 bytes). */
export const authorKindPrefix = (pubkey: string | Buffer, kind: number): Buffer =>
  Buffer.concat([typeof pubkey === 'string' ? hexBytes(pubkey) : pubkey, kindBytes(kind)])

/** tag letter + value prefix. */
export const tagPrefix = (letter: string, value: string): Buffer => Buffer.concat([Buffer.from(letter, 'latin1'), valueKey(value)])

/** The replaceable/addressable address key: kind + pubkey + d value. */
export const addressKey = (kind: number, pubkey: string, d: string): Buffer =>
  Buffer.concat([kindBytes(kind), hexBytes(pubkey), valueKey(d)])

/**
 * Whether bytes are an address key as `addressKey` writes it: a replaceable kind with an empty `d`, or an
 * addressable kind with a `d` value key in its one canonical form (a snapshot's records are checked with it).
 */
export const isAddressKey = (key: Buffer): boolean => {
  if (key.length < 36) return false
  const kind = key.readUInt16BE(0)
  const d = key.subarray(34)
  if (isReplaceable(kind)) return d.length === 2 && d[0] === 0 && d[1] === 0
  if (!isAddressable(kind)) return false
  if (d[0] === 1 || d[0] === 2) return d.length === 33
  return d[0] === 0 && d[1] === d.length - 2 && valueKey(d.subarray(2).toString('utf8')).equals(d)
}

/** A 4-byte unsigned timestamp (not inverted), for expiry order and tombstones. */
export const u32 = (n: number): Buffer => {
  const b = Buffer.allocUnsafe(4)
  b.writeUInt32BE(Math.min(Math.max(n, 0), 0xffffffff), 0)
  return b
}

/** The id (hex) at the end of an index key. */
export const idOfKey = (key: Buffer): string => key.toString('hex', key.length - 32)
