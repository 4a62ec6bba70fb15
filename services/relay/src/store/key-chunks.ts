/**
 * lmdb-js key handling for the index databases (by_time, by_kind, by_author_kind, by_tag): keys are written
 * as the bytes given, as with `keyEncoding: 'binary'`, and each key read is copied into a shared 64 KB
 * chunk and handed out as a view of it. lmdb-js's binary keys are copied each into an ArrayBuffer of its
 * own (`Uint8Array.prototype.slice` through Buffer's species constructor), which cost more than the
 * lookup of the event the key points to: a REQ reads hundreds of keys. A view keeps its chunk alive, so a
 * key stays valid for as long as it is held, as a copy would; a full chunk is left to the collector,
 * never written again. Keys are held for one scan (ids go into the answer as bytes or hex), so a chunk
 * is not kept for one key.
 */

/** Bytes per chunk: about 1,500 index keys of a kind or time range. */
const CHUNK_BYTES = 64 * 1024

// Zeroed, not allocUnsafe: a key's `.buffer` reaches the whole chunk, which must hold nothing but keys read.
let chunk = Buffer.alloc(CHUNK_BYTES)
let used = 0

/** Writes `key` into lmdb-js's key buffer at `start`; returns where it ends. */
const writeKey = (key: Uint8Array, target: Uint8Array, start: number): number => {
  target.set(key, start)
  return start + key.length
}

/** A copy of `source[start, end)` as a view of the current chunk (a new chunk when it is full). */
const readKey = (source: Uint8Array, start: number, end: number): Buffer => {
  const length = end - start
  if (length > CHUNK_BYTES) return Buffer.from(source.subarray(start, end))
  if (used + length > CHUNK_BYTES) {
    chunk = Buffer.alloc(CHUNK_BYTES)
    used = 0
  }
  const key = chunk.subarray(used, used + length)
  key.set(source.subarray(start, end))
  used += length
  return key
}

/** lmdb-js's `keyEncoder` option for databases whose keys are binary and read in bulk. */
export const chunkedKeys = { writeKey, readKey }

/**
 * Where lmdb-js starts a range read with no `start`. With a `keyEncoder` it would skip keys below 0x05
 * (its own metadata's range), and index keys start with any byte (a kind's high byte, a pubkey's first).
 */
export const FIRST_KEY = Buffer.from([0])
