import { matchFilter, type Filter, type NostrEvent } from '@msr/nostr'
import type { EventStore } from '../store/event-store.js'

/** Lines gathered into one write, and events read between two yields to the event loop. */
const CHUNK_BYTES = 64 * 1024
const EVENTS_PER_TURN = 1000

/** Options of an export. */
export interface ExportOptions {
  /** Only events matching this NIP-01 filter (its `limit` is ignored: an export is complete). */
  filter?: Filter
  /** Unix seconds: events expired (NIP-40) at this time are left out, as they are never served. */
  now: number
  /** Called with the number of events written so far, now and then. */
  onProgress?: (exported: number) => void
  /** Stops the export (it rejects) at the next yield. */
  signal?: AbortSignal
  /** Lines written after the events (a snapshot's bookkeeping and outbox records), read once the events are written. */
  trailer?: () => Iterable<Buffer>
}

/**
 * Writes the store's events as JSONL (one canonical event per line, exactly as stored and served) to
 * `out`, from one read snapshot, respecting back-pressure and yielding to the event loop as it goes, so
 * memory stays flat and a running relay keeps serving. Resolves with the number of events written.
 */
export const exportEvents = async (store: EventStore, out: NodeJS.WritableStream, opts: ExportOptions): Promise<number> => {
  let exported = 0
  let pending: Buffer[] = []
  let pendingBytes = 0
  let read = 0
  const flush = async () => {
    if (pending.length === 0) return
    const chunk = Buffer.concat(pending)
    pending = []
    pendingBytes = 0
    await write(out, chunk, opts.signal)
  }
  for (const json of store.allEvents()) {
    if (++read % EVENTS_PER_TURN === 0) {
      await flush()
      await turn(opts.signal)
      opts.onProgress?.(exported)
    }
    if (!keep(store, json, opts)) continue
    pending.push(json, NEWLINE)
    pendingBytes += json.length + 1
    exported++
    if (pendingBytes >= CHUNK_BYTES) await flush()
  }
  for (const line of opts.trailer?.() ?? []) {
    if (++read % EVENTS_PER_TURN === 0) await turn(opts.signal)
    pending.push(line)
    pendingBytes += line.length
    if (pendingBytes >= CHUNK_BYTES) await flush()
  }
  await flush()
  opts.onProgress?.(exported)
  return exported
}

const NEWLINE = Buffer.from('\n')

/** Lets the event loop run (a relay exporting goes on serving), then stops if the export was aborted. */
const turn = async (signal: AbortSignal | undefined): Promise<void> => {
  await new Promise(resolve => setImmediate(resolve))
  signal?.throwIfAborted()
}

/** Writes with back-pressure; rejects instead of waiting forever when the stream was destroyed or the export aborted. */
const write = async (out: NodeJS.WritableStream, chunk: Buffer, signal: AbortSignal | undefined): Promise<void> => {
  const stream = out as NodeJS.WritableStream & { destroyed?: boolean; errored?: Error | null }
  if (stream.destroyed) throw stream.errored ?? new Error('the output was closed')
  if (out.write(chunk)) return
  signal?.throwIfAborted()
  await new Promise<void>((resolve, reject) => {
    const settle = (error?: unknown) => {
      out.removeListener('drain', onDrain)
      out.removeListener('close', onClose)
      signal?.removeEventListener('abort', onAbort)
      if (error === undefined) resolve()
      else reject(error)
    }
    const onDrain = () => settle()
    const onClose = () => settle(stream.errored ?? new Error('the output was closed'))
    const onAbort = () => settle(signal?.reason ?? new Error('aborted'))
    out.once('drain', onDrain)
    out.once('close', onClose)
    signal?.addEventListener('abort', onAbort, { once: true })
  })
}

/** Whether a stored event goes into the export: not expired, and matching the filter when there is one. */
const keep = (store: EventStore, json: Buffer, opts: ExportOptions): boolean => {
  // The id is the first field of the canonical JSON: {"id":"<64 hex>",…
  const id = Buffer.from(json.subarray(7, 71).toString('latin1'), 'hex')
  if (store.isExpired(id, opts.now)) return false
  return opts.filter === undefined || matchFilter(opts.filter, JSON.parse(json.toString('utf8')) as NostrEvent)
}
