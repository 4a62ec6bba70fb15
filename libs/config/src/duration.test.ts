import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import * as z from 'zod'
import { duration, parseDuration } from './duration.js'

describe('parseDuration', () => {
  it('reads each unit, sums of units, and bare milliseconds', () => {
    assert.equal(parseDuration('100ms'), 100)
    assert.equal(parseDuration('10s'), 10_000)
    assert.equal(parseDuration('1m'), 60_000)
    assert.equal(parseDuration('2h'), 7_200_000)
    assert.equal(parseDuration('1d'), 86_400_000)
    assert.equal(parseDuration('1.5s'), 1_500)
    assert.equal(parseDuration('1h30m'), 5_400_000)
    assert.equal(parseDuration('250'), 250)
    assert.equal(parseDuration('0s'), 0)
  })

  it('rejects anything else', () => {
    for (const bad of ['', 's', '-1s', '10x', '10 s', '1s2', 'ten seconds', '1e3s', '1.s']) {
      assert.equal(parseDuration(bad), undefined, bad)
    }
  })
})

describe('duration()', () => {
  const schema = z.strictObject({ timeout: duration('10s', 'How long to wait') })

  it('applies the default through the parse', () => {
    assert.deepEqual(schema.parse({}), { timeout: 10_000 })
  })

  it('accepts strings and non-negative numbers of milliseconds', () => {
    assert.deepEqual(schema.parse({ timeout: '250ms' }), { timeout: 250 })
    assert.deepEqual(schema.parse({ timeout: 42 }), { timeout: 42 })
  })

  it('explains an invalid value', () => {
    for (const bad of ['10 seconds', -5, true]) {
      const result = schema.safeParse({ timeout: bad })
      assert.equal(result.success, false)
      assert.match(result.error?.issues[0]?.message ?? '', /^expected a duration like "100ms", "10s", "1m", "1h", received /)
    }
  })

  it('carries its description', () => {
    assert.equal(duration('1s', 'Ping interval').description, 'Ping interval')
  })
})
