import assert from 'node:assert/strict'
import { readdirSync } from 'node:fs'
import { describe, it } from 'node:test'
import { readProcStat } from './machine.js'
import { measureMachineSpeed, speedText } from './speed.js'

/** The pids of this process's live children (Linux /proc). */
const children = (): number[] =>
  readdirSync('/proc')
    .filter(d => /^\d+$/.test(d))
    .map(Number)
    .filter(pid => readProcStat(pid)?.ppid === process.pid)

describe('the machine speed readings', () => {
  it('reads a unit of work and loopback round trips, and leaves no echo process behind', async () => {
    const before = children()
    const speed = await measureMachineSpeed({ workUnits: 2000, rounds: 2, roundTrips: 300 })
    assert.ok(Number.isFinite(speed.workMicros) && speed.workMicros > 0, `work ${speed.workMicros}`)
    // A loopback round trip through the kernel and another process takes microseconds, never nothing.
    assert.ok(speed.roundTripMicros.p50 >= 1, `p50 ${speed.roundTripMicros.p50}`)
    assert.ok(speed.roundTripMicros.p90 >= speed.roundTripMicros.p50 && Number.isFinite(speed.roundTripMicros.p90), `p90 ${speed.roundTripMicros.p90}`)
    assert.deepEqual(children(), before)
  })

  it('says both readings in one line', () => {
    const text = speedText({ workMicros: 4.104, roundTripMicros: { p50: 45.04, p90: 93.38 } })
    assert.equal(text, 'JavaScript work 4.10 µs per unit (parse, serialize, SHA-256 an event; best round); loopback TCP round trip to another process p50 45.0 µs, p90 93.4 µs')
  })
})
