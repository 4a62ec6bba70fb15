import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { safeEqual } from './safe-equal.js'

describe('safeEqual', () => {
  it('is true only for identical strings', () => {
    assert.equal(safeEqual('s3cret-token', 's3cret-token'), true)
    assert.equal(safeEqual('s3cret-token', 's3cret-tokeN'), false)
    assert.equal(safeEqual('', ''), true)
  })

  it('handles different lengths and non-ASCII without throwing', () => {
    assert.equal(safeEqual('short', 'a much longer secret'), false)
    assert.equal(safeEqual('', 'x'), false)
    assert.equal(safeEqual('clé', 'clé'), true)
    assert.equal(safeEqual('clé', 'cle'), false)
  })
})
