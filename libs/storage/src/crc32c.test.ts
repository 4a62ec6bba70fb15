import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { describe, it } from 'node:test'
import { CRC32C } from '@google-cloud/storage'
import { crc32cBase64, crc32cUpdate } from './crc32c.js'

describe('crc32c', () => {
  it('matches the published check value and the client on random data of every alignment', () => {
    assert.equal(crc32cUpdate(0, Buffer.from('123456789')), 0xe3069283)
    assert.equal(crc32cBase64(Buffer.alloc(0)), 'AAAAAA==')
    for (let length = 0; length < 40; length++) {
      const data = randomBytes(length * 37)
      const client = new CRC32C()
      client.update(data)
      assert.equal(crc32cBase64(data), client.toString(), `length ${data.length}`)
    }
  })

  it('extends over pieces like over the whole', () => {
    const data = randomBytes(100_003)
    const pieces = [data.subarray(0, 5), data.subarray(5, 70_001), data.subarray(70_001)]
    assert.equal(pieces.reduce((crc, p) => crc32cUpdate(crc, p), 0), crc32cUpdate(0, data))
  })
})
