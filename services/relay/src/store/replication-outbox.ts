import type { Database } from 'lmdb'
import type { NostrEvent } from '@msr/nostr'
import { traceCarrierOf, type TraceCarrier } from '@msr/telemetry/trace-context'
import type { Span } from '@opentelemetry/api'

/** One accepted event waiting for the replication bus to confirm it. */
export interface ReplicationEntry {
  /** Its outbox key (the order it was committed in). */
  key: Buffer
  /** The event id, hex. */
  id: string
  kind: number
  /** The stored canonical JSON, published as it is. */
  json: Buffer
  /** The W3C traceparent of its EVENT, when traced. */
  traceparent?: string | undefined
}

const keyOf = (seq: bigint): Buffer => {
  const key = Buffer.alloc(8)
  key.writeBigUInt64BE(seq)
  return key
}

/**
 * Value layout: id (32 bytes) + kind (u16 BE) + traceparent length (u8) + traceparent (ASCII) + canonical
 * JSON. The id and kind are read without parsing the JSON.
 */
const encode = (event: Pick<NostrEvent, 'id' | 'kind'>, json: Buffer, traceparent: string | undefined): Buffer => {
  const trace = Buffer.from(traceparent ?? '', 'latin1').subarray(0, 255)
  const head = Buffer.allocUnsafe(35)
  head.write(event.id, 0, 'hex')
  head.writeUInt16BE(event.kind, 32)
  head.writeUInt8(trace.length, 34)
  return Buffer.concat([head, trace, json])
}

const decode = (key: Buffer, value: Buffer): ReplicationEntry => {
  const traceLength = value.readUInt8(34)
  const traceparent = traceLength > 0 ? value.toString('latin1', 35, 35 + traceLength) : undefined
  return { key, id: value.toString('hex', 0, 32), kind: value.readUInt16BE(32), json: Buffer.from(value.subarray(35 + traceLength)), traceparent }
}

/**
 * The replication outbox: an LMDB database of `sequence (u64 BE) → event`, one entry per event a client
 * of this replica got stored, written inside that event's own write transaction (so a committed event is
 * always published, if only after a restart) and removed (through the writer) once the bus confirmed it.
 */
export class ReplicationOutbox {
  private next: bigint

  constructor(private readonly db: Database<Buffer, Buffer>) {
    const [last] = db.getKeys({ reverse: true, limit: 1 })
    this.next = last ? (last as Buffer).readBigUInt64BE(0) + 1n : 1n
  }

  /** Inside a write transaction: queues a stored event, with the trace context of its EVENT. */
  add(event: Pick<NostrEvent, 'id' | 'kind'>, json: Buffer, trace?: Span | TraceCarrier): void {
    const carrier = trace === undefined || 'traceparent' in trace ? trace : traceCarrierOf(trace)
    this.db.putSync(keyOf(this.next), encode(event, json, carrier?.traceparent))
    this.next++
  }

  /** Inside a write transaction: removes confirmed entries. */
  remove(keys: readonly Uint8Array[]): void {
    for (const key of keys) this.db.removeSync(Buffer.from(key))
  }

  /** Up to `limit` entries after `after` (from the oldest when undefined), in commit order. */
  peek(limit: number, after?: Buffer): ReplicationEntry[] {
    const start = after === undefined ? undefined : keyOf(after.readBigUInt64BE(0) + 1n)
    const entries: ReplicationEntry[] = []
    for (const { key, value } of this.db.getRange({ ...(start && { start }), limit })) entries.push(decode(Buffer.from(key), value))
    return entries
  }

  /** The ids of every waiting entry, oldest first, from one read snapshot (the JSON is not read out). */
  *ids(): Generator<string> {
    for (const { value } of this.db.getRange({ snapshot: true })) yield value.toString('hex', 0, 32)
  }

  /** Entries waiting. */
  size(): number {
    return (this.db.getStats() as { entryCount: number }).entryCount
  }
}
