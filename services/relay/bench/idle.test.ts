import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { enoughReadings, idleReading, type Reading } from './idle.js'

const reading = (heapMiB: number, majorCollections: number): Reading => ({
  nodejs_heap_size_used_bytes: heapMiB * 2 ** 20,
  process_resident_memory_bytes: (heapMiB + 200) * 2 ** 20,
  msr_relay_connections: 10_000,
  majorCollections,
})

describe('scenario 4: which reading stands for the idle connections', () => {
  it('takes the least heap among the readings after the first full collection since the connections opened', () => {
    // Before the collection the heap held the handshakes' garbage and the pings' since: 85 MiB at its least.
    const readings = [reading(87.6, 5), reading(85.0, 5), reading(98.4, 5), reading(69.5, 6), reading(69.3, 6), reading(71.6, 7)]
    assert.equal(idleReading(readings, 5).nodejs_heap_size_used_bytes, 69.3 * 2 ** 20)
  })

  it('without a full collection, takes the least of all readings', () => {
    assert.equal(idleReading([reading(90, 5), reading(85, 5), reading(88, 5)], 5).nodejs_heap_size_used_bytes, 85 * 2 ** 20)
  })

  it('a reading lower than the collected ones, made before the collection, is not the figure', () => {
    // The collection may come after a lower reading (a scavenge): that reading still held old garbage.
    assert.equal(idleReading([reading(60, 5), reading(70, 6)], 5).nodejs_heap_size_used_bytes, 70 * 2 ** 20)
  })

  it('refuses an empty list of readings', () => {
    assert.throws(() => idleReading([], 0), /idle: no reading/)
  })

  it('reads on until `samples` readings include one after a full collection, or `max` in all', () => {
    const uncollected = Array.from({ length: 20 }, () => reading(85, 5))
    assert.equal(enoughReadings(uncollected, 5, 20, 60), false)
    assert.equal(enoughReadings([...uncollected.slice(0, 19), reading(70, 6)], 5, 20, 60), true)
    assert.equal(enoughReadings([reading(70, 6)], 5, 20, 60), false, 'fewer than `samples`, collected or not')
    assert.equal(enoughReadings(Array.from({ length: 60 }, () => reading(85, 5)), 5, 20, 60), true)
  })
})
