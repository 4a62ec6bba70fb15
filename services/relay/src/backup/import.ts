import type { CheckedEvent } from '@msr/nostr'
import type { Hint } from '@msr/hints'
import { isInvalid, precheckStored, type Invalid, type ValidEvent } from '../pipeline/validate.js'
import type { Writer } from '../pipeline/writer.js'
import type { BookkeepingRecord, EventSource } from '../store/event-store.js'
import { isBookkeepingRecord, parseRecord } from './bookkeeping-records.js'
import { isOutboxRecord, isReplicationRecord, parseOutboxRecord, parseReplicationRecord } from './outbox-records.js'

/** What an import did, line by line. */
export interface ImportSummary {
  /** Lines read (blank lines not counted). */
  read: number
  imported: number
  /** Already in the store. */
  duplicate: number
  /** Refused by the store's rules (an older replaceable version, a deleted event), by reason. */
  rejected: Map<string, number>
  /** Not an acceptable event (not JSON, bad id or signature, expired, …), by reason. */
  invalid: Map<string, number>
  /** A snapshot's hint records (outbox-records.ts): handed to `onHint`, or skipped without it. */
  hints: number
  /** A snapshot's replication records (outbox-records.ts): handed to `onReplicate`, or skipped without it. */
  replicate: number
  /** A snapshot's bookkeeping records (bookkeeping-records.ts): handed to `onRecord`, or skipped without it. */
  bookkeeping: number
}

/** What an import needs. */
export interface ImportDeps {
  writer: Writer
  /**
   * Makes a checked line a storable event through one of validate.ts's doors: `verifySignature`, or
   * `acceptUnverified` for the relay's own snapshots and `--no-verify`.
   */
  admit: (checked: CheckedEvent) => ValidEvent | Invalid | Promise<ValidEvent | Invalid>
  /** Unix seconds, for NIP-40 expiration. */
  now: number
  onProgress?: (summary: ImportSummary) => void
  /** Takes a snapshot's hint records (a restore on boot queues them again); without it they are skipped. */
  onHint?: (hint: Hint) => void
  /** Takes the event id of each of a snapshot's replication records (a restore on boot queues them again); without it they are skipped. */
  onReplicate?: (id: string) => void
  /**
   * Takes each of a snapshot's bookkeeping records (a restore applies them; the next line is read once the
   * returned promise resolves); without it they are skipped.
   */
  onRecord?: (record: BookkeepingRecord) => void | Promise<void>
  /**
   * `replica` for the relay's own snapshot: its events were admitted when first published, so only the store
   * rules apply again (the same store comes back whatever the line order) and none is queued for replication.
   * Default `client`: an operator's file is judged like published events.
   */
  source?: EventSource
}

/** Events verified and stored concurrently at most (keeps memory flat on any size of input). */
const IN_FLIGHT = 2000
const PROGRESS_EVERY = 1000

const count = (map: Map<string, number>, reason: string) => map.set(reason, (map.get(reason) ?? 0) + 1)

/**
 * Imports JSONL events: each line is checked like a published event (shape, id, signature unless told
 * not to, NIP-40 expiration; kind 22242 and ephemeral kinds are never stored) and stored through the
 * writer, so NIP-01 replacement and NIP-09 deletion apply exactly as for live events, whatever the order
 * of the lines. Bad lines are counted with their reason and skipped; nothing stops the import.
 */
export const importEvents = async (lines: AsyncIterable<{ line: string; tooLong: boolean }>, deps: ImportDeps): Promise<ImportSummary> => {
  const summary: ImportSummary = { read: 0, imported: 0, duplicate: 0, rejected: new Map(), invalid: new Map(), hints: 0, replicate: 0, bookkeeping: 0 }
  const inFlight = new Set<Promise<void>>()
  try {
    await readAll(lines, deps, summary, inFlight)
  } catch (error) {
    // Reading failed (a truncated gzip): the events already read are checked and stored (or refused)
    // before the caller hears of it, so it never closes the verifier under a check in progress.
    await Promise.allSettled(inFlight)
    throw error
  }
  await Promise.all(inFlight)
  deps.onProgress?.(summary)
  return summary
}

const readAll = async (lines: AsyncIterable<{ line: string; tooLong: boolean }>, deps: ImportDeps, summary: ImportSummary, inFlight: Set<Promise<void>>): Promise<void> => {
  for await (const { line, tooLong } of lines) {
    if (!tooLong && line.trim() === '') continue
    summary.read++
    if (summary.read % PROGRESS_EVERY === 0) deps.onProgress?.(summary)
    if (!tooLong && isOutboxRecord(line)) {
      const record = parseOutboxRecord(line)
      if (!record.ok) {
        count(summary.invalid, `invalid: hint record: ${record.reason}`)
        continue
      }
      summary.hints++
      deps.onHint?.(record.hint)
      continue
    }
    if (!tooLong && isReplicationRecord(line)) {
      readReplicationRecord(line, deps, summary)
      continue
    }
    if (!tooLong && isBookkeepingRecord(line)) {
      await readBookkeepingRecord(line, deps, summary)
      continue
    }
    const checked = tooLong ? undefined : parse(line, deps.now, summary)
    if (checked === undefined) {
      if (tooLong) count(summary.invalid, 'invalid: line too long')
      continue
    }
    const task: Promise<void> = store(checked, deps, summary).finally(() => inFlight.delete(task))
    inFlight.add(task)
    if (inFlight.size >= IN_FLIGHT) await Promise.race(inFlight)
  }
}

const readReplicationRecord = (line: string, deps: ImportDeps, summary: ImportSummary): void => {
  const record = parseReplicationRecord(line)
  if (!record.ok) return void count(summary.invalid, `invalid: replication record: ${record.reason}`)
  summary.replicate++
  deps.onReplicate?.(record.id)
}

const readBookkeepingRecord = async (line: string, deps: ImportDeps, summary: ImportSummary): Promise<void> => {
  const record = parseRecord(line)
  if (!record.ok) return void count(summary.invalid, `invalid: bookkeeping record: ${record.reason}`)
  summary.bookkeeping++
  await deps.onRecord?.(record.record)
}

/** A line as an event that may be stored, or undefined (counted) when it is not one. */
const parse = (line: string, now: number, summary: ImportSummary): CheckedEvent | undefined => {
  let raw: unknown
  try {
    raw = JSON.parse(line)
  } catch {
    return void count(summary.invalid, 'invalid: not JSON')
  }
  const checked = precheckStored(raw, now)
  return isInvalid(checked) ? void count(summary.invalid, checked.reason) : checked
}

const store = async (checked: CheckedEvent, deps: ImportDeps, summary: ImportSummary): Promise<void> => {
  const valid = await deps.admit(checked)
  if (isInvalid(valid)) return void count(summary.invalid, valid.reason)
  const outcome = await deps.writer.submit(valid.event, valid.json, undefined, deps.source)
  if (outcome.status === 'stored') summary.imported++
  else if (outcome.status === 'duplicate') summary.duplicate++
  else count(summary.rejected, outcome.reason)
}

/** The summary as lines for a terminal (reasons most frequent first). */
export const describeImport = (s: ImportSummary): string[] => {
  const top = (map: Map<string, number>) => [...map].sort((a, b) => b[1] - a[1]).map(([reason, n]) => `    ${n} × ${reason}`)
  const total = (map: Map<string, number>) => [...map.values()].reduce((a, b) => a + b, 0)
  return [
    `read ${s.read}, imported ${s.imported}, duplicate ${s.duplicate}, rejected ${total(s.rejected)}, invalid ${total(s.invalid)}${s.hints > 0 ? `, hint records ${s.hints}` : ''}${s.replicate > 0 ? `, replication records ${s.replicate}` : ''}${s.bookkeeping > 0 ? `, bookkeeping records ${s.bookkeeping}` : ''}`,
    ...(s.rejected.size > 0 ? ['  rejected by the store rules:', ...top(s.rejected)] : []),
    ...(s.invalid.size > 0 ? ['  invalid:', ...top(s.invalid)] : []),
    ...(s.hints > 0 ? [`  hint records (a snapshot's outbox: a restore on boot queues them again, an import does not): ${s.hints}`] : []),
    ...(s.replicate > 0 ? [`  replication records (a snapshot's replication outbox: a replica's restore on boot publishes them again, an import does not): ${s.replicate}`] : []),
    ...(s.bookkeeping > 0 ? [`  bookkeeping records (a snapshot's deletions and version marks: applied by a restore on boot and an import with --no-verify, skipped otherwise): ${s.bookkeeping}`] : []),
  ]
}
