import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, it } from 'node:test'
import { openDatabases, type Databases } from './databases.js'

let dir: string
let dbs: Databases

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'msr-keys-'))
  dbs = openDatabases(dir)
})

afterEach(async () => {
  await dbs.root.close()
  rmSync(dir, { recursive: true, force: true })
})

/** A 38-byte by_kind-like key whose bytes all derive from `n`, first byte included. */
const keyOf = (n: number): Buffer => {
  const key = Buffer.alloc(38)
  key.writeUInt32BE(n, 0)
  for (let i = 4; i < key.length; i++) key[i] = (n * 31 + i) & 0xff
  return key
}

const N = 5_000
const EMPTY = Buffer.alloc(0)

describe('index keys read as views of shared chunks', () => {
  beforeEach(async () => {
    await dbs.root.transaction(() => {
      for (let n = 0; n < N; n++) dbs.byKind.putSync(keyOf(n), EMPTY)
    })
  })

  it('hands out each key whole, and every key held stays as read while thousands more are read', () => {
    // 5,000 keys of 38 bytes fill three 64 KB chunks: a key of the first must survive the later ones,
    // and the reads of the events database between them (lmdb-js's shared key buffer is rewritten by each).
    const held = [...dbs.byKind.getKeys({ start: keyOf(0) })]
    for (let n = 0; n < 100; n++) dbs.events.get(keyOf(n))
    assert.equal(held.length, N)
    held.forEach((key, n) => assert.deepEqual(key, keyOf(n), `key ${n}`))
    assert.ok(held.every(key => Buffer.isBuffer(key)))
  })

  it('a range without a start begins at the lowest key, 0x00 first bytes included', () => {
    const [first] = dbs.byKind.getKeys({ limit: 1 })
    assert.deepEqual(first, keyOf(0))
    assert.equal(first?.[0], 0)
  })

  it('writes, ranges, counts and removals take the keys as given', async () => {
    assert.equal(dbs.byKind.getCount({ start: keyOf(10), end: keyOf(20) }), 10)
    await dbs.root.transaction(() => dbs.byKind.removeSync(keyOf(15)))
    assert.deepEqual([...dbs.byKind.getKeys({ start: keyOf(14), end: keyOf(17) })], [keyOf(14), keyOf(16)])
  })
})
