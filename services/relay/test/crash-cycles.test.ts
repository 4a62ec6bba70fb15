// The short crash-cycle run of the reliability campaign (the long one: `npm run soak`): SIGKILLs of the
// relay CLI during mixed ingest and snapshots lose no acknowledged event, bring back no deleted or
// replaced one, and leave no 445/446 hint undelivered.
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { onTmpfs } from '../src/store/write-map.js'
import { runCrashCycles, summary, type CrashReport } from './crash-cycles.js'

const SEED = 20261206

const assertClean = (report: CrashReport, cycles: number, seed: number, diagnostic: (line: string) => void): void => {
  const line = summary(report, seed)
  diagnostic(line)
  const detail = `${line}\n${report.problems.join('\n')}`
  assert.equal(report.cycles, cycles)
  assert.ok(report.acknowledged > 0, `some events acknowledged: ${detail}`)
  assert.equal(report.losses, 0, detail)
  assert.equal(report.resurrected, 0, detail)
  assert.equal(report.stale, 0, detail)
  assert.equal(report.hintsMissing, 0, detail)
  assert.equal(report.restoreFaults, 0, detail)
  assert.ok(report.restoredEvents > 0, `a restore from the snapshots: ${detail}`)
  assert.ok(report.hintsExpected > 0, `some hints expected: ${detail}`)
}

describe('crash cycles', () => {
  it('six SIGKILLs during mixed ingest and snapshotting: nothing acknowledged lost, nothing deleted back, every hint delivered', async t => {
    const report = await runCrashCycles({ cycles: 6, seed: SEED })
    assertClean(report, 6, SEED, (line: string) => t.diagnostic(line))
  })

  it('three SIGKILLs with [data] write_map on a tmpfs: the same', { skip: onTmpfs('/dev/shm') ? false : '/dev/shm is not a tmpfs here' }, async t => {
    const seed = SEED + 1
    const report = await runCrashCycles({ cycles: 3, seed, base: '/dev/shm', env: { RELAY_DATA__WRITE_MAP: 'true' } })
    assertClean(report, 3, seed, (line: string) => t.diagnostic(line))
  })
})
