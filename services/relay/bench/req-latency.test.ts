import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { generatorGcOf } from './req-latency.js'

describe('REQ latency: the generator\'s collections laid over the REQs', () => {
  const gc = (startTime: number, duration: number) => ({ startTime, duration })
  const req = (at: number, ms: number) => ({ at, ms })

  it('counts a REQ whose wait a collection fell in, and how many of the slowest 1 % did', () => {
    // 200 REQs one after the other on one connection, 1 ms each but two: #50 (10 ms) and #120 (20 ms).
    const durations = Array.from({ length: 200 }, (_, i) => (i === 50 ? 10 : i === 120 ? 20 : 1))
    let at = 0
    const samples = durations.map(ms => req((at += ms) - ms, ms))
    assert.deepEqual([samples[50], samples[120], samples[121], samples[172]], [req(50, 10), req(129, 20), req(149, 1), req(200, 1)])
    // One collection inside #50; one across the end of #120 and into #121; one inside #172.
    const result = generatorGcOf([gc(55, 1), gc(140, 10), gc(200.2, 0.4)], samples)
    assert.deepEqual(result, { count: 3, totalMs: 11.4, longestMs: 10, overlapping: 4, slowest: 2, slowestOverlapping: 2 })
    // Without the collection across #120, one of the two slowest overlapped one.
    assert.equal(generatorGcOf([gc(55, 1), gc(200.2, 0.4)], samples).slowestOverlapping, 1)
  })

  it('a collection that ends as a REQ is sent, or starts as it is answered, did not delay it', () => {
    assert.equal(generatorGcOf([gc(0, 5), gc(6, 1)], [req(5, 1)]).overlapping, 0)
  })

  it('reports no collections and no REQs as zeros', () => {
    assert.deepEqual(generatorGcOf([], []), { count: 0, totalMs: 0, longestMs: 0, overlapping: 0, slowest: 0, slowestOverlapping: 0 })
  })
})
