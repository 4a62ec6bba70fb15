// The short replication kill-cycle run (the long one, with a 30 s bus outage: `npm run soak:replication`):
// three replicas on the Pub/Sub emulator, one SIGKILLed mid-ingest and replaced by an empty one each cycle
// (the snapshot writer too, cut off the bus first so that it dies with events only its newest snapshot
// holds); no acknowledged event missing anywhere, the fingerprints equal. Skipped, saying why, without the emulator.
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { findEmulator } from '@msr/hints/emulator'
import { runReplicationCycles, summary } from './replication-cycles.js'

const SEED = 20261207
const CYCLES = 10
const found = findEmulator()

describe('replication kill cycles', { skip: 'missing' in found ? found.missing : false }, () => {
  it(`${CYCLES} SIGKILLs of any replica mid-ingest (the snapshot writer included), its data deleted and an empty replacement bootstrapped: nothing acknowledged missing on any replica, fingerprints equal`, async t => {
    const report = await runReplicationCycles({ cycles: CYCLES, seed: SEED })
    const line = summary(report, SEED)
    t.diagnostic(line)
    const detail = `${line}\n${report.problems.join('\n')}`
    assert.equal(report.cycles, CYCLES)
    assert.ok(report.acknowledged > 0, `some events acknowledged: ${detail}`)
    assert.equal(report.losses, 0, detail)
    assert.equal(report.resurrected, 0, detail)
    assert.equal(report.stale, 0, detail)
    assert.equal(report.fingerprintMismatches, 0, detail)
    assert.ok(report.writerKills.some(k => k.requeued > 0), `the snapshot writer was killed with entries its snapshot held, queued again by its replacement: ${detail}`)
  })
})
