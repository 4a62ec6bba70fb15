/** Splits a byte stream into lines with flat memory, whatever the stream's size or its longest line. */

export const DEFAULT_MAX_LINE_BYTES = 16 * 1024 * 1024

/** One line without its `\n` or `\r\n`; a line over the limit comes as `{ line: '', tooLong: true }`. */
export interface Line {
  line: string
  tooLong: boolean
}

const NEWLINE = 0x0a
const CR = 0x0d

/** A line's bytes, gathered across chunks until its newline arrives. */
const lineBuffer = (maxLineBytes: number) => {
  let parts: Buffer[] = []
  let length = 0
  let skipping = false // over the limit: the rest of the line is dropped as it arrives
  const reset = (): void => {
    parts = []
    length = 0
    skipping = false
  }
  return {
    /**
     * Adds a piece of the current line; past the limit (+1 for a possible `\r`) pieces are dropped. A piece
     * that outlives its chunk is copied, so a short tail never pins a large chunk in memory.
     */
    add(piece: Buffer, outlivesChunk: boolean): void {
      if (skipping) return
      length += piece.length
      if (length > maxLineBytes + 1) {
        parts = []
        skipping = true
      } else if (piece.length > 0) parts.push(outlivesChunk ? Buffer.from(piece) : piece)
    },
    /** The finished line (without `\r`), then ready for the next one. */
    take(): Line {
      let bytes = parts.length === 1 ? parts[0]! : Buffer.concat(parts, length)
      if (bytes.length > 0 && bytes[bytes.length - 1] === CR) bytes = bytes.subarray(0, bytes.length - 1)
      const result = skipping || bytes.length > maxLineBytes ? { line: '', tooLong: true } : { line: bytes.toString('utf8'), tooLong: false }
      reset()
      return result
    },
    get pending(): boolean {
      return length > 0
    },
  }
}

/**
 * Yields each line of `stream` (UTF-8; `\n` or `\r\n`; a last line without a newline included; empty lines
 * yielded as ''). A line longer than `maxLineBytes` is never held whole: it is reported `tooLong` and skipped.
 */
export async function* readLines(stream: NodeJS.ReadableStream, maxLineBytes = DEFAULT_MAX_LINE_BYTES): AsyncIterable<Line> {
  const current = lineBuffer(maxLineBytes)
  for await (const chunk of stream as AsyncIterable<Buffer | string>) {
    const bytes = typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : chunk
    let start = 0
    for (let nl = bytes.indexOf(NEWLINE, start); nl !== -1; nl = bytes.indexOf(NEWLINE, start)) {
      current.add(bytes.subarray(start, nl), false)
      yield current.take()
      start = nl + 1
    }
    if (start < bytes.length) current.add(bytes.subarray(start), true)
  }
  if (current.pending) yield current.take()
}
