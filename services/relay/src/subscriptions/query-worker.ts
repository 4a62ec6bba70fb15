// Worker thread: answers REQ backfills and COUNTs from its own read view of the LMDB store, so that
// scanning and frame building run beside the event loop instead of on it.
import { workerData } from 'node:worker_threads'
import type { Filter } from '@msr/nostr'
import { EventStore } from '../store/event-store.js'
import { serveRequests } from '../workers/serve.js'

/** A REQ backfill: each filter's newest `limits[i]` events, each once, framed with `prefix`. */
export interface BackfillRequest {
  op: 'req'
  filters: Filter[]
  limits: number[]
  prefix: string
  now: number
  timeoutMs: number
  /** Also write each frame's WebSocket header, so the whole answer is wire bytes for one socket write. */
  wire: boolean
}

/** A NIP-45 count over the filters. */
export interface CountRequest {
  op: 'count'
  filters: Filter[]
  now: number
  timeoutMs: number
}

/**
 * The frames back to back in one transferred buffer; `ends[i]` is where frame i ends; ids 32 bytes
 * each. With `wire`, each frame carries its WebSocket header and the buffer is ready for the socket.
 */
export interface BackfillResponse {
  frames: Uint8Array
  ends: Uint32Array
  ids: Uint8Array
  timedOut: boolean
  wire: boolean
}

/** The count, or how far it got before the deadline. */
export interface CountResponse {
  count: number
  timedOut: boolean
}

export type QueryRequest = BackfillRequest | CountRequest
export type QueryResponse = BackfillResponse | CountResponse

const store = EventStore.open((workerData as { path: string }).path)
const CLOSE = 0x5d // ']'

/** Bytes of the header of an unmasked server frame with this payload length (RFC 6455 §5.2). */
const headerBytes = (length: number): number => (length < 126 ? 2 : length < 65536 ? 4 : 10)

/** A buffer that grows by doubling; its ArrayBuffer is its own, so it can be transferred. */
class Output {
  bytes = Buffer.allocUnsafeSlow(1 << 16)
  at = 0

  reserve(n: number): void {
    if (this.at + n <= this.bytes.length) return
    let size = this.bytes.length * 2
    while (size < this.at + n) size *= 2
    const grown = Buffer.allocUnsafeSlow(size)
    this.bytes.copy(grown, 0, 0, this.at)
    this.bytes = grown
  }

  /** A view of what was written, over the whole (transferable) ArrayBuffer. */
  done(): Uint8Array {
    return new Uint8Array(this.bytes.buffer, this.bytes.byteOffset, this.at)
  }
}

/** Writes a FIN text-frame header for `length` payload bytes (RFC 6455 §5.2, unmasked). */
const writeHeader = (out: Output, length: number): void => {
  const b = out.bytes
  b[out.at] = 0x81
  if (length < 126) {
    b[out.at + 1] = length
    out.at += 2
  } else if (length < 65536) {
    b[out.at + 1] = 126
    b.writeUInt16BE(length, out.at + 2)
    out.at += 4
  } else {
    b[out.at + 1] = 127
    b.writeBigUInt64BE(BigInt(length), out.at + 2)
    out.at += 10
  }
}

/** Frames each event straight from the store's read buffer into one output buffer. */
const backfill = ({ filters, limits, prefix, now, timeoutMs, wire }: BackfillRequest) => {
  const prefixBytes = Buffer.from(prefix, 'utf8')
  const out = new Output()
  const ids = new Output()
  const ends: number[] = []
  const sent = filters.length > 1 ? new Set<string>() : undefined
  const bounds = { now, deadline: performance.now() + timeoutMs, clock: () => performance.now() }
  let timedOut = false
  filters.forEach((filter, i) => {
    let remaining = limits[i] ?? 0
    if (timedOut || remaining <= 0) return
    timedOut = store.scan(filter, bounds, (id, json) => {
      if (sent) {
        const hex = id.toString('hex')
        if (sent.has(hex)) return --remaining > 0
        sent.add(hex)
      }
      const payload = prefixBytes.length + json.length + 1
      out.reserve(payload + (wire ? headerBytes(payload) : 0))
      if (wire) writeHeader(out, payload)
      out.at += prefixBytes.copy(out.bytes, out.at)
      out.at += json.copy(out.bytes, out.at)
      out.bytes[out.at++] = CLOSE
      ends.push(out.at)
      ids.reserve(32)
      ids.at += id.copy(ids.bytes, ids.at)
      return --remaining > 0
    })
  })
  const body: BackfillResponse = { frames: out.done(), ends: Uint32Array.from(ends), ids: ids.done(), timedOut, wire }
  return { body, transfer: [body.frames.buffer, body.ends.buffer, body.ids.buffer] as ArrayBuffer[] }
}

serveRequests<QueryRequest, QueryResponse>('query', request => {
  store.refresh() // see every commit made up to now
  if (request.op === 'req') return backfill(request)
  const bounds = { now: request.now, deadline: performance.now() + request.timeoutMs, clock: () => performance.now() }
  return { body: store.count(request.filters, bounds) }
})
