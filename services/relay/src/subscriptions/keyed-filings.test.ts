// KeyedFilings must give back exactly what is filed under a key, through growth, shared slots and
// removals in any order.
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { chooser, mulberry32 } from '../testing/fixtures.js'
import { KeyedFilings, type Filing, type Slot } from './keyed-filings.js'

const SEED = Number(process.env.PROPERTY_SEED || 1_234_567)

/** The values filed under `key`, in slot order. */
const valuesOf = <T>(filings: KeyedFilings<T>, key: string): T[] => {
  const slot: Slot<T> = filings.slotOf(key)
  const all = Array.isArray(slot) ? slot : slot ? [slot] : []
  return all.filter(f => f.key === key).map(f => f.value)
}

describe('KeyedFilings', () => {
  it('files values under keys, several under one key, and removes each filing once', () => {
    const filings = new KeyedFilings<string>()
    const a1 = filings.add('a', 'one')
    const a2 = filings.add('a', 'two')
    filings.add('b', 'three')
    assert.equal(filings.size, 3)
    assert.deepEqual(valuesOf(filings, 'a').sort(), ['one', 'two'])
    assert.deepEqual(valuesOf(filings, 'b'), ['three'])
    assert.deepEqual(valuesOf(filings, 'c'), [])
    filings.remove(a1)
    filings.remove(a1)
    assert.equal(filings.size, 2, 'a second removal of the same filing changes nothing')
    assert.deepEqual(valuesOf(filings, 'a'), ['two'])
    filings.remove(a2)
    assert.deepEqual(valuesOf(filings, 'a'), [])
    assert.equal(filings.size, 1)
  })

  it('keeps a slot shared by several keys apart, and empties it fully', () => {
    const filings = new KeyedFilings<number>()
    // Thousands of keys in 1,024 slots at first: slots are shared before and after each doubling.
    const keys = Array.from({ length: 5000 }, (_, i) => `k${i}`)
    const made = keys.map((key, i) => filings.add(key, i))
    const shared = made.filter(f => f.at >= 0).length
    assert.ok(shared > 0, 'some slots hold several filings')
    keys.forEach((key, i) => assert.deepEqual(valuesOf(filings, key), [i], key))
    for (const filing of made) filings.remove(filing)
    assert.equal(filings.size, 0)
    for (const key of keys) assert.deepEqual(valuesOf(filings, key), [], key)
  })

  it(`equals a Map of arrays under random add/remove (seed ${SEED})`, () => {
    const c = chooser(mulberry32(SEED))
    const keys = Array.from({ length: 300 }, () => c.hex().slice(0, 1 + c.int(63)))
    const filings = new KeyedFilings<number>()
    const live: Filing<number>[] = []
    for (let op = 0; op < 20_000; op++) {
      if (live.length > 0 && c.chance(0.45)) {
        const i = c.int(live.length)
        filings.remove(live[i] as Filing<number>)
        live.splice(i, 1)
      } else live.push(filings.add(c.pick(keys), op))
      if (op % 500 !== 0) continue
      assert.equal(filings.size, live.length, `seed ${SEED}, op ${op}: size`)
      for (const key of keys) {
        const expected = live.filter(f => f.key === key).map(f => f.value).sort((a, b) => a - b)
        assert.deepEqual(valuesOf(filings, key).sort((a, b) => a - b), expected, `seed ${SEED}, op ${op}, key ${key}`)
      }
    }
  })
})
