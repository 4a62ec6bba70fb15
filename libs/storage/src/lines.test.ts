import assert from 'node:assert/strict'
import { Readable } from 'node:stream'
import { describe, it } from 'node:test'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { readLines, type Line } from './lines.js'

const collect = async (chunks: (string | Buffer)[], max?: number): Promise<Line[]> => {
  const out: Line[] = []
  for await (const line of readLines(Readable.from(chunks), max)) out.push(line)
  return out
}
const ok = (line: string): Line => ({ line, tooLong: false })
const TOO_LONG: Line = { line: '', tooLong: true }

describe('readLines', () => {
  it('splits on LF and CRLF, keeps a last line without newline, and yields empty lines', async () => {
    assert.deepEqual(await collect(['a\r\nb\n\nc\r\n', 'd']), [ok('a'), ok('b'), ok(''), ok('c'), ok('d')])
    assert.deepEqual(await collect(['a\n']), [ok('a')])
    assert.deepEqual(await collect([]), [])
  })

  it('joins lines split across chunks, including a CRLF and a UTF-8 character cut in two', async () => {
    const snow = Buffer.from('☃')
    assert.deepEqual(await collect([Buffer.from('x'), snow.subarray(0, 1), snow.subarray(1), Buffer.from('y\r'), Buffer.from('\nz')]), [ok('x☃y'), ok('z')])
  })

  it('skips and flags a line over the limit, before and after the lines around it', async () => {
    const long = 'x'.repeat(11)
    assert.deepEqual(await collect([`ok\n${long}\n`, '0123456789\r\n', `${long}`], 10), [ok('ok'), TOO_LONG, ok('0123456789'), TOO_LONG])
    // A long line arriving in small pieces is dropped as it comes, and the next line is intact.
    assert.deepEqual(await collect(['abcdef', 'ghijkl', 'mnop\nq'], 10), [TOO_LONG, ok('q')])
    assert.deepEqual(await collect(['0123456789\r', '\n'], 10), [ok('0123456789')])
  })

  it('reads 200 MB, with a 50 MB line in it, in flat memory', async () => {
    const LINE = Buffer.from(`${'{"kind":1,"content":"' + 'z'.repeat(200)}"}\n`)
    const CHUNK = Buffer.concat(Array.from({ length: 256 }, () => LINE)) // ~57 KB, reused: the source allocates nothing
    const LONG = Buffer.alloc(64 * 1024, 'y')
    // Live memory, garbage collected first, sampled from inside the source while the reader works.
    setFlagsFromString('--expose-gc')
    const gc = runInNewContext('gc') as () => void
    const live = (): number => (gc(), process.memoryUsage().heapUsed + process.memoryUsage().arrayBuffers)
    const before = live()
    let peak = before
    async function* repeat(chunk: Buffer, times: number): AsyncGenerator<Buffer> {
      for (let i = 1; i <= times; i++) {
        yield chunk
        if (i % 250 === 0) peak = Math.max(peak, live())
      }
    }
    async function* source(): AsyncGenerator<Buffer> {
      yield* repeat(CHUNK, 1750) // 100 MB of ordinary lines
      yield* repeat(LONG, 800) // one 52 MB line…
      yield Buffer.from('\n') // …ending here
      yield* repeat(CHUNK, 1750)
    }
    let lines = 0
    let tooLong = 0
    for await (const line of readLines(Readable.from(source()), 1024 * 1024)) {
      lines++
      if (line.tooLong) tooLong++
    }
    assert.equal(tooLong, 1)
    assert.equal(lines, 2 * 1750 * 256 + 1)
    // Holding the long line or the stream would keep 50-200 MB alive.
    assert.ok(peak - before < 8 * 1024 * 1024, `live memory grew by ${Math.round((peak - before) / 1e6)} MB`)
  })
})
