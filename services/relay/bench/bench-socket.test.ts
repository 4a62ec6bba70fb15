import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { frameReader } from './bench-socket.js'

/** An unmasked frame (RFC 6455 §5.2) with the given first byte, in the shortest length form. */
const frame = (first: number, payload: Buffer): Buffer => {
  const n = payload.length
  const header = n < 126 ? Buffer.from([first, n]) : n < 65536 ? Buffer.from([first, 126, n >> 8, n & 0xff]) : Buffer.from([first, 127, 0, 0, 0, 0, 0, 0, 0, 0])
  if (n >= 65536) header.writeUInt32BE(n, 6)
  return Buffer.concat([header, payload])
}

describe('frameReader (the bench subscribers\' lean frame parser)', () => {
  it('hands text payloads and other frames over in order, however the stream is cut into reads', () => {
    const text = (n: number, fill: string) => Buffer.alloc(n, fill)
    const frames = [
      frame(0x81, text(10, 'a')), frame(0x89, text(4, 'p')), frame(0x81, text(125, 'b')), frame(0x81, text(126, 'c')),
      frame(0x81, text(70_000, 'd')), frame(0x01, text(3, 'e')), frame(0x80, text(3, 'f')), frame(0x81, text(0, '')),
    ]
    const stream = Buffer.concat(frames)
    const want = ['text 10 a', 'other 6', 'text 125 b', 'text 126 c', 'text 70000 d', 'other 5', 'other 5', 'text 0 ']
    let seed = 7
    const random = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31)
    for (const maxRead of [1, 2, 3, 13, 100, 5000, stream.length]) {
      const got: string[] = []
      const read = frameReader((b, start, end) => got.push(`text ${end - start} ${b.toString('latin1', start, Math.min(end, start + 1))}`), f => got.push(`other ${f.length}`))
      for (let at = 0; at < stream.length; ) {
        const n = 1 + Math.floor(random() * maxRead)
        read(stream.subarray(at, at + n))
        at += n
      }
      assert.deepEqual(got, want, `reads of up to ${maxRead} bytes`)
    }
  })

  it('keeps nothing of a read\'s buffer once the read returns (the connections share one read buffer)', () => {
    const frames = [frame(0x81, Buffer.alloc(300, 'a')), frame(0x89, Buffer.alloc(4, 'p')), frame(0x01, Buffer.alloc(200, 'e')), frame(0x80, Buffer.alloc(90, 'f')), frame(0x81, Buffer.alloc(1000, 'b'))]
    const stream = Buffer.concat(frames)
    const shared = Buffer.alloc(64)
    const texts: string[] = []
    const others: Buffer[] = []
    const read = frameReader((b, start, end) => texts.push(b.toString('latin1', start, end)), f => others.push(f))
    for (let at = 0; at < stream.length; at += 37) {
      const n = stream.copy(shared, 0, at, Math.min(stream.length, at + 37))
      read(shared.subarray(0, n))
      shared.fill('#') // the next read overwrites what this one left
    }
    assert.deepEqual(texts, ['a'.repeat(300), 'b'.repeat(1000)])
    // Frames handed to ws's receiver are their own bytes, still whole after later reads.
    assert.deepEqual(others.map(f => f.toString('latin1')), [frames[1], frames[2], frames[3]].map(f => f?.toString('latin1')))
  })
})
