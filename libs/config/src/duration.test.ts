import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import * as z from 'zod'
import { duration, MAX_DURATION, parseDuration } from './duration.js'

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

  it(`takes at most ${MAX_DURATION} unless told otherwise: a timer fires after 1 ms past 2^31 - 1`, () => {
    assert.deepEqual(schema.parse({ timeout: '24d' }), { timeout: 24 * 86_400_000 })
    for (const bad of ['25d', 2 ** 31, '24d1ms']) {
      const result = schema.safeParse({ timeout: bad })
      assert.equal(result.success, false, String(bad))
      assert.match(result.error?.issues[0]?.message ?? '', /^expected a duration from 0 to 24d, received /)
    }
  })

  it('keeps to its own range', () => {
    const ping = z.strictObject({ every: duration('30s', 'Ping interval', { min: '1s', max: '1h' }) })
    assert.deepEqual(ping.parse({ every: '1s' }), { every: 1000 })
    assert.deepEqual(ping.parse({ every: '1h' }), { every: 3_600_000 })
    for (const bad of ['0', 0, '999ms', '1h1ms']) {
      const result = ping.safeParse({ every: bad })
      assert.equal(result.success, false, String(bad))
      assert.equal(result.error?.issues[0]?.message, `expected a duration from 1s to 1h, received ${typeof bad === 'string' ? `"${bad}"` : bad}`)
    }
  })
})
