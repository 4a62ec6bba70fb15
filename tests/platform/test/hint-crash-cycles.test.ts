// The short run of the hints-under-crashes campaign (hint-crash-cycles.ts says what it does; the long
// one: `npm run soak:hints`): the relay SIGKILLed during 445/446 ingest, its hints pushed to the real
// mailbox API; every stored event has its effect in the mailbox exactly once although some hints arrived
// twice. SOAK_CYCLES sets the number of cycles (5 here), SOAK_SEED the random choices.
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { runHintCrashCycles, summary } from './hint-crash-cycles.js'

const CYCLES = Number(process.env.SOAK_CYCLES ?? 5)
const SEED = Number(process.env.SOAK_SEED ?? 20261206)

/** Every 10 cycles a line on stderr, so a long soak shows it is moving. */
const progress = (r: { cycles: number; sent: number; killsAfterCommit: number }) => {
  if (r.cycles % 10 === 0) process.stderr.write(`hint crash cycles: ${r.cycles} of ${CYCLES}, ${r.sent} sent, ${r.killsAfterCommit} kills after a commit\n`)
}

describe('hints under crash cycles, as the mailbox sees them', () => {
  it(`${CYCLES} SIGKILLs of the relay during 445/446 ingest: each stored event applied once by the mailbox, redeliveries included`, async t => {
    const report = await runHintCrashCycles({ cycles: CYCLES, seed: SEED, onCycle: progress })
    const line = summary(report, SEED)
    t.diagnostic(line)
    const detail = `${line}\n${report.problems.join('\n')}`
    assert.equal(report.cycles, CYCLES)
    assert.ok(report.stored445 > 0 && report.stored446 > 0, `both kinds stored: ${detail}`)
    assert.equal(report.lost, 0, detail)
    assert.equal(report.missing, 0, detail)
    assert.equal(report.doubleApplied, 0, detail)
    assert.equal(report.phantom, 0, detail)
    assert.equal(report.applied, report.stored445 + report.stored446, `the mailbox applied each stored hint once: ${detail}`)
    // What makes the run a test of idempotence: some hints did reach the mailbox twice.
    assert.ok(report.redeliveries > 0, `some hints redelivered: ${detail}`)
    assert.equal(report.duplicates, report.redeliveries, `the mailbox recognised every redelivery: ${detail}`)
  })
})
