/**
 * CRC32C (Castagnoli), the checksum Cloud Storage keeps beside MD5 for every object. Written here rather
 * than taken from the client so that the fake server and the client check each other independently.
 */
const POLY = 0x82f63b78 // reflected Castagnoli polynomial

/** Eight 256-entry tables for slicing-by-8: one table lookup per byte, eight bytes per step. */
const TABLES = (() => {
  const t = new Uint32Array(8 * 256)
  for (let n = 0; n < 256; n++) {
    let c = n
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ POLY : c >>> 1
    t[n] = c
  }
  for (let n = 0; n < 256; n++) for (let s = 1; s < 8; s++) t[s * 256 + n] = (t[(s - 1) * 256 + n]! >>> 8) ^ t[t[(s - 1) * 256 + n]! & 0xff]!
  return t
})()

/** Extends a running CRC32C (0 to start) over `data`. */
export const crc32cUpdate = (crc: number, data: Uint8Array): number => {
  const t = TABLES
  let c = ~crc >>> 0
  let i = 0
  for (const end8 = data.length - 7; i < end8; i += 8) {
    const lo = (c ^ (data[i]! | (data[i + 1]! << 8) | (data[i + 2]! << 16) | (data[i + 3]! << 24))) >>> 0
    const hi = data[i + 4]! | (data[i + 5]! << 8) | (data[i + 6]! << 16) | (data[i + 7]! << 24)
    c =
      t[7 * 256 + (lo & 0xff)]! ^ t[6 * 256 + ((lo >>> 8) & 0xff)]! ^ t[5 * 256 + ((lo >>> 16) & 0xff)]! ^ t[4 * 256 + (lo >>> 24)]! ^
      t[3 * 256 + (hi & 0xff)]! ^ t[2 * 256 + ((hi >>> 8) & 0xff)]! ^ t[256 + ((hi >>> 16) & 0xff)]! ^ t[(hi >>> 24) & 0xff]!
  }
  for (; i < data.length; i++) c = t[(c ^ data[i]!) & 0xff]! ^ (c >>> 8)
  return ~c >>> 0
}

/** The CRC32C of `data` as Cloud Storage writes it: base64 of the four big-endian bytes. */
export const crc32cBase64 = (data: Uint8Array | number): string => {
  const value = typeof data === 'number' ? data : crc32cUpdate(0, data)
  const out = Buffer.alloc(4)
  out.writeUInt32BE(value)
  return out.toString('base64')
}
