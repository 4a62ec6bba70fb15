import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { describe, it } from 'node:test'
import { decodeBase64, encodeBase64, isBase64 } from './base64.js'

describe('base64', () => {
  it('round-trips bytes exactly as Node’s Buffer encodes them, large ones included', () => {
    for (const size of [1, 2, 3, 4, 5, 31, 32, 33, 0x8000 - 1, 0x8000, 0x8000 + 1, 262_144]) {
      const bytes = randomBytes(size)
      const text = encodeBase64(new Uint8Array(bytes))
      assert.equal(text, bytes.toString('base64'), `size ${size}`)
      assert.equal(isBase64(text), true)
      assert.deepEqual(decodeBase64(text), new Uint8Array(bytes))
    }
  })

  it('accepts only non-empty standard padded base64, as the API does', () => {
    for (const text of ['AAAA', 'AA==', 'AAA=', '+/+/']) assert.equal(isBase64(text), true, text)
    for (const text of ['', 'A', 'AA', 'AAA', 'AA=', 'A===', '-_-_', 'AA AA', 'AAAA\n', '=AAA']) assert.equal(isBase64(text), false, JSON.stringify(text))
  })
})
