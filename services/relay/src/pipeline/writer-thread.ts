import { traceCarrierOf, type TraceCarrier } from '@msr/telemetry'
import { WorkerPool } from '@msr/workers'
import type { EventStore, StoreOutcome } from '../store/event-store.js'
import type { ApplyRequest, WriteRequest, WriteResponse } from './write-requests.js'
import type { Transactions } from './writer.js'

const OUTCOMES: readonly StoreOutcome[] = [{ status: 'stored' }, { status: 'duplicate' }]

/**
 * The writer's transactions on a thread of their own (write-worker.ts), one request per transaction. A
 * batch crosses as one buffer of canonical JSON (transferred, not cloned); the answer comes once the
 * transaction is on disk, and this thread's read view is renewed before anyone hears of it. A thread that
 * dies fails what it held (each event answered `error:`) and is replaced. `module` is the thread's entry
 * (tests give one that holds each answer after its commit).
 */
export const writerThread = async (store: EventStore, module = new URL('./write-worker.js', import.meta.url)): Promise<Transactions> => {
  const pool = await WorkerPool.start<WriteRequest, WriteResponse>(module, 1, { path: store.path, ...store.openOptions })
  const request = async (body: WriteRequest, transfer: ArrayBuffer[] = []): Promise<WriteResponse & { ok: true }> => {
    const answer = await pool.request(body, transfer)
    if (answer === undefined) throw new Error('the writer thread stopped')
    if (!answer.ok) throw new Error(answer.error)
    store.refresh() // reads on this thread see what was just committed
    return answer
  }
  return {
    apply: async (batch, maxBytes = 0) => {
      const { body, transfer } = applyRequest(batch, store.hintsEnabled, store.replicating, maxBytes)
      const { codes, reasons } = await request(body, transfer)
      return batch.map((_, i) => reasons?.[i] ?? (OUTCOMES[codes?.[i] ?? -1] as StoreOutcome))
    },
    deleteExpired: async (now, max) => (await request({ op: 'expire', now, max })).deleted ?? 0,
    removeHints: async keys => void (await request({ op: 'remove-hints', keys })),
    removeReplicated: async keys => void (await request({ op: 'remove-replicated', keys })),
    queueHints: async hints => void (await request({ op: 'queue-hints', hints: [...hints] })),
    queueReplication: async ids => (await request({ op: 'queue-replication', ids: [...ids] })).queued ?? 0,
    applyRecords: async records => void (await request({ op: 'apply-records', records: [...records] })),
    close: async () => {
      await request({ op: 'close' }).catch(() => undefined)
      await pool.close()
    },
  }
}

/** One buffer holding the batch's JSON back to back (its own ArrayBuffer, to transfer), with where each ends. */
const applyRequest = (
  batch: Parameters<Transactions['apply']>[0],
  hints: boolean,
  replicate: boolean,
  maxBytes: number,
): { body: ApplyRequest; transfer: ArrayBuffer[] } => {
  let size = 0
  for (const p of batch) size += p.json.length
  const bytes = Buffer.allocUnsafeSlow(size)
  const ends = new Uint32Array(batch.length)
  const replicas = new Uint8Array(batch.length)
  const traces: Record<number, TraceCarrier> = {}
  let at = 0
  batch.forEach((p, i) => {
    at += p.json.copy(bytes, at)
    ends[i] = at
    if (p.source === 'replica') replicas[i] = 1
    // Only a traced event has a span, and only one whose hint or replication entry is queued uses its context.
    const trace = (hints || replicate) && p.span ? traceCarrierOf(p.span) : undefined
    if (trace) traces[i] = trace
  })
  const body: ApplyRequest = { op: 'apply', bytes, ends, traces, hints, replicate, replicas, maxBytes }
  return { body, transfer: [bytes.buffer as ArrayBuffer, ends.buffer, replicas.buffer] }
}
