import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { describe, it } from 'node:test'

const MODULE = new URL('./heap-tuning.js', import.meta.url).href

/**
 * A child that keeps object literals alive across young collections (the pattern V8 pretenures), with
 * V8 printing its pretenuring statistics; with `tune`, it calls tuneHeapForServing first.
 */
const pretenuringLines = (tune: boolean): string[] => {
  const script = `
    ${tune ? `const { tuneHeapForServing } = await import(${JSON.stringify(MODULE)}); tuneHeapForServing()` : ''}
    const keep = []
    for (let round = 0; round < 20; round++) {
      for (let i = 0; i < 100000; i++) keep.push({ round, i })
      if (keep.length > 300000) keep.length = 0
    }
    process.stdout.write('done\\n')`
  const child = spawnSync(process.execPath, ['--trace-pretenuring-statistics', '--input-type=module', '-e', script], { encoding: 'utf8' })
  assert.equal(child.status, 0, child.stderr)
  assert.match(child.stdout, /^done$/m)
  return child.stdout.split('\n').filter(line => line.includes('pretenuring:'))
}

/**
 * What V8's helper threads spent on each young collection of a child that keeps a changing set of objects
 * alive (`background.scavenge.parallel` of --trace-gc-nvp, ms); with `tune`, it calls tuneHeapForServing first.
 */
const scavengeHelperMs = (tune: boolean): number[] => {
  const script = `
    ${tune ? `const { tuneHeapForServing } = await import(${JSON.stringify(MODULE)}); tuneHeapForServing()` : ''}
    let keep = []
    for (let i = 0; i < 3_000_000; i++) {
      keep.push({ i, s: 'x' + i })
      if (keep.length > 200_000) keep = []
    }
    process.stdout.write('done\\n')`
  const child = spawnSync(process.execPath, ['--trace-gc-nvp', '--input-type=module', '-e', script], { encoding: 'utf8' })
  assert.equal(child.status, 0, child.stderr)
  assert.match(child.stdout, /^done$/m)
  const scavenges = child.stdout.split('\n').filter(line => / gc=s /.test(line))
  assert.ok(scavenges.length >= 5, `young collections: ${scavenges.length}`)
  return scavenges.map(line => Number(/ background\.scavenge\.parallel=([\d.]+)/.exec(line)?.[1] ?? Number.NaN))
}

describe('tuneHeapForServing', () => {
  it('turns allocation-site pretenuring off in a running process', () => {
    assert.ok(
      pretenuringLines(false).some(line => line.includes('=> tenure')),
      'without the tuning V8 pretenures the workload (else this test proves nothing)',
    )
    assert.deepEqual(pretenuringLines(true), [])
  })

  it('makes young collections run on the collecting thread alone', () => {
    assert.ok(
      scavengeHelperMs(false).some(ms => ms > 0),
      'without the tuning V8 shares young collections with helper threads (else this test proves nothing)',
    )
    const tuned = scavengeHelperMs(true)
    assert.ok(tuned.every(ms => ms === 0), `helper time per collection: ${tuned.join(', ')}`)
  })
})
