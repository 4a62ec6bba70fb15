import assert from 'node:assert/strict'
import { existsSync, readFileSync } from 'node:fs'
import { describe, it } from 'node:test'
import { runQueueSeconds } from './machine.js'

describe('bench machine readings: the main thread waiting for a core', () => {
  it('reads the run-queue time of a schedstat line (ns) as seconds, and nothing from anything else', () => {
    assert.equal(runQueueSeconds('31415926535 2500000000 1234\n'), 2.5)
    assert.equal(runQueueSeconds('0 0 0'), 0)
    for (const bad of ['', '12', '12 -3 4', '12 x 4']) assert.equal(runQueueSeconds(bad), undefined, JSON.stringify(bad))
  })

  it('reads this process’s own schedstat where the kernel keeps one', { skip: !existsSync('/proc/self/schedstat') && 'no /proc/self/schedstat here' }, () => {
    const seconds = runQueueSeconds(readFileSync('/proc/self/schedstat', 'utf8'))
    assert.ok(seconds !== undefined && seconds >= 0, `read ${seconds}`)
  })
})
