import type { Database } from 'lmdb'
import { encodeHint, hintFromEvent, hintSchema, type Hint, type HintSource } from '@msr/hints/hint'
import { parseTraceCarrier, traceCarrierOf, type TraceCarrier } from '@msr/telemetry/trace-context'
import type { Span } from '@opentelemetry/api'

/** One hint waiting to be published: its outbox key (the order it was written in), the hint and its event's trace context. */
export interface OutboxEntry {
  key: Buffer
  hint: Hint
  trace?: TraceCarrier | undefined
}

/**
 * An entry's value: the hint's JSON, or `{"hint":…,"trace":{"traceparent":…}}` when its event was traced
 * (so the publish joins the EVENT's trace even after a restart). Entries of older versions are bare hints.
 */
const encodeEntry = (hint: Hint, trace: TraceCarrier | undefined): Buffer =>
  trace === undefined ? encodeHint(hint) : Buffer.from(JSON.stringify({ hint, trace }))

const decodeEntry = (value: Buffer): { hint: Hint | undefined; trace?: TraceCarrier | undefined } => {
  let parsed: unknown
  try {
    parsed = JSON.parse(value.toString('utf8'))
  } catch {
    return { hint: undefined }
  }
  const wrapped = typeof parsed === 'object' && parsed !== null && 'hint' in parsed
  const decoded = hintSchema.safeParse(wrapped ? (parsed as { hint: unknown }).hint : parsed)
  if (!decoded.success) return { hint: undefined }
  return { hint: decoded.data, ...(wrapped && { trace: parseTraceCarrier((parsed as { trace?: unknown }).trace) }) }
}

const keyOf = (seq: bigint): Buffer => {
  const key = Buffer.alloc(8)
  key.writeBigUInt64BE(seq)
  return key
}

/**
 * The hint outbox: an LMDB database of `sequence (u64 BE) → hint JSON` (with the trace context, when traced). Entries are written inside the
 * event's own write transaction (so a committed 445/446 always has its hint, and a crash before the
 * publish only delays it) and removed by the drainer once the bus has them.
 */
export class Outbox {
  private next: bigint

  constructor(private readonly db: Database<Buffer, Buffer>) {
    const [last] = db.getKeys({ reverse: true, limit: 1 })
    this.next = last ? (last as Buffer).readBigUInt64BE(0) + 1n : 1n
  }

  /** Inside a write transaction: queues the event's hint, if it routes anywhere, with the trace context of its span. */
  add(event: HintSource, trace?: Span | TraceCarrier): void {
    const hint = hintFromEvent(event)
    if (hint) this.put(hint, trace === undefined || 'traceparent' in trace ? trace : traceCarrierOf(trace))
  }

  /** Inside a write transaction: queues a hint as it is (one a snapshot held: see backup/outbox-records.ts). */
  put(hint: Hint, trace?: TraceCarrier): void {
    this.db.putSync(keyOf(this.next), encodeEntry(hint, trace))
    this.next++
  }

  /** Inside a write transaction: removes published entries. */
  remove(keys: Buffer[]): void {
    for (const key of keys) this.db.removeSync(key)
  }

  /**
   * The oldest `limit` entries. An entry that no longer parses (written by another version) is
   * returned with `hint` undefined so the drainer can drop it instead of stalling behind it.
   */
  peek(limit: number): { key: Buffer; hint: Hint | undefined; trace?: TraceCarrier | undefined }[] {
    const entries: { key: Buffer; hint: Hint | undefined; trace?: TraceCarrier | undefined }[] = []
    for (const { key, value } of this.db.getRange({ limit })) entries.push({ key: Buffer.from(key), ...decodeEntry(value) })
    return entries
  }

  /** Every waiting hint, oldest first, from one read snapshot (entries that no longer parse left out). */
  *all(): Generator<Hint> {
    for (const { value } of this.db.getRange({ snapshot: true })) {
      const { hint } = decodeEntry(value)
      if (hint) yield hint
    }
  }

  /** Entries waiting. */
  size(): number {
    return (this.db.getStats() as { entryCount: number }).entryCount
  }
}
