import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { describe, it } from 'node:test'
import { IdTable } from './fanout.js'

describe('IdTable (published events by id, for the fan-out subscribers)', () => {
  it('finds every id it was given at its index, nothing else, and refuses an id twice', () => {
    const ids = Array.from({ length: 5000 }, () => randomBytes(32).toString('hex'))
    const table = new IdTable(ids.length)
    for (const [i, id] of ids.entries()) assert.equal(table.add(Buffer.from(`xx${id}`), 2, i), true)
    for (const [i, id] of ids.entries()) assert.equal(table.get(Buffer.from(id), 0), i)
    assert.equal(table.get(Buffer.from(randomBytes(32).toString('hex')), 0), -1)
    assert.equal(table.add(Buffer.from(ids[7] as string), 0, 9999), false)
    // Same first 7 digits, different next 6: two entries, both found.
    const twin = `${(ids[0] as string).slice(0, 7)}${'0'.repeat(57)}`
    assert.equal(table.add(Buffer.from(twin), 0, 5000), true)
    assert.deepEqual([table.get(Buffer.from(ids[0] as string), 0), table.get(Buffer.from(twin), 0)], [0, 5000])
  })
})
