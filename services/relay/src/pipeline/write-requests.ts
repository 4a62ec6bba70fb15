// What the writer thread is asked and answers (writer-thread.ts on the event loop, write-worker.ts in the thread).
import type { Hint } from '@msr/hints'
import type { VerifiedEvent } from '@msr/nostr'
import type { TraceCarrier } from '@msr/telemetry'
import { serveRequests, type Answer } from '@msr/workers'
import type { BookkeepingRecord, EventStore, StoreOutcome, StoreTransaction } from '../store/event-store.js'

/**
 * Events to store, in order: their canonical JSON back to back in `bytes` (event i ends at `ends[i]`),
 * the trace context of each traced one (by index), whether stored 445/446 events queue a hint, whether a
 * client's stored event queues a replication entry, and which came from another replica (`replicas[i]` = 1).
 * The events were verified on the event loop; they are parsed again here, not checked.
 */
export interface ApplyRequest {
  op: 'apply'
  bytes: Uint8Array
  ends: Uint32Array
  traces: Record<number, TraceCarrier>
  hints: boolean
  replicate: boolean
  replicas: Uint8Array
  /** `data.max_size` in bytes (0: no cap): past it, events are refused STORE_FULL but deletions. */
  maxBytes: number
}

export type WriteRequest =
  | ApplyRequest
  | { op: 'expire'; now: number; max: number }
  | { op: 'remove-hints'; keys: Uint8Array[] }
  | { op: 'remove-replicated'; keys: Uint8Array[] }
  | { op: 'queue-hints'; hints: Hint[] }
  | { op: 'queue-replication'; ids: string[] }
  | { op: 'apply-records'; records: BookkeepingRecord[] }
  | { op: 'close' }

/** Each event's outcome (APPLIED codes, a reason for each refused one), how many expired events were deleted, or how many replication entries were queued. */
export type WriteResponse =
  | { ok: true; codes?: Uint8Array; reasons?: Record<number, StoreOutcome & { status: 'rejected' }>; deleted?: number; queued?: number }
  | { ok: false; error: string }

/** Outcome codes of an apply answer. */
export const APPLIED = { stored: 0, duplicate: 1, rejected: 2 } as const

const apply = (tx: StoreTransaction, request: ApplyRequest): WriteResponse => {
  const bytes = Buffer.from(request.bytes.buffer, request.bytes.byteOffset, request.bytes.byteLength)
  const codes = new Uint8Array(request.ends.length)
  const reasons: Record<number, StoreOutcome & { status: 'rejected' }> = {}
  let start = 0
  const events = Array.from(request.ends, end => {
    const json = bytes.subarray(start, end)
    start = end
    return { event: JSON.parse(json.toString('utf8')) as VerifiedEvent, json }
  })
  tx.applyAll(events, request.maxBytes, i => request.traces[i], i => (request.replicas[i] === 1 ? 'replica' : 'client')).forEach((outcome, i) => {
    codes[i] = APPLIED[outcome.status]
    if (outcome.status === 'rejected') reasons[i] = outcome
  })
  return { ok: true, codes, reasons }
}

const handle = async (store: EventStore, request: WriteRequest): Promise<WriteResponse> => {
  switch (request.op) {
    case 'apply':
      store.hintsEnabled = request.hints
      store.replicating = request.replicate
      return store.write(tx => apply(tx, request))
    case 'expire':
      return { ok: true, deleted: await store.write(tx => tx.deleteExpired(request.now, request.max)) }
    case 'remove-hints':
      await store.write(tx => tx.removeHints(request.keys.map(key => Buffer.from(key))))
      return { ok: true }
    case 'remove-replicated':
      await store.write(tx => tx.removeReplicated(request.keys))
      return { ok: true }
    case 'queue-hints':
      await store.write(tx => tx.queueHints(request.hints))
      return { ok: true }
    case 'queue-replication':
      return { ok: true, queued: await store.write(tx => tx.queueReplication(request.ids)) }
    case 'apply-records':
      await store.write(tx => tx.applyRecords(request.records))
      return { ok: true }
    case 'close':
      await store.close()
      return { ok: true }
  }
}

const messageOf = (error: unknown): string => (error instanceof Error ? error.message : String(error))

/**
 * What a failed transaction is reported as. lmdb-js rejects a failed commit with "Commit failed (see
 * commitError for details)" and the cause (e.g. "No space left on device") in a promise that rejects
 * after: it is waited for, briefly, so that the writer can tell a full disk from other failures.
 */
const describeFailure = async (error: unknown): Promise<string> => {
  const detail = (error as { commitError?: unknown } | undefined)?.commitError
  if (!(detail instanceof Promise)) return messageOf(error)
  const cause: unknown = await Promise.race([detail.then(() => undefined, (reason: unknown) => reason), new Promise(resolve => setTimeout(resolve, 1000))])
  return cause === undefined ? messageOf(error) : `${messageOf(error)}: ${messageOf(cause)}`
}

/**
 * Inside the writer thread: answers write requests on `store`, each one transaction, started in arrival
 * order and answered once it is committed and flushed to disk. A failed transaction is answered (nothing
 * of it was stored), not fatal to the thread.
 */
export const serveWrites = (store: EventStore): void =>
  serveRequests<WriteRequest, WriteResponse>('writer', (request): Promise<Answer<WriteResponse>> =>
    handle(store, request).then(
      body => ({ body }),
      async (error: unknown) => ({ body: { ok: false, error: await describeFailure(error) } }),
    ),
  )
