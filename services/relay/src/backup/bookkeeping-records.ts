import { z } from 'zod'
import type { Writer } from '../pipeline/writer.js'
import type { BookkeepingRecord, EventStore } from '../store/event-store.js'
import { isAddressKey } from '../store/keys.js'

/**
 * A snapshot carries, after its events and before its outbox records, the store's deletion and version
 * bookkeeping that replaying its events would not bring back (an address's mark whose version was deleted
 * or expires, a tombstone or deleted address whose kind 5 expired), one line each:
 *
 *   {"bookkeeping":{"v":1,"mark":"<address key>","id":"<event id>","created_at":N}}
 *   {"bookkeeping":{"v":1,"tombstone":"<event id>","by":"<deleter pubkey>"}}
 *   {"bookkeeping":{"v":1,"deleted_address":"<address key>","upto":N}}
 *
 * An address key is the `addresses` key in hex: kind (u16) + pubkey + the value key of `d` (store/keys.ts);
 * `v` names that layout, so a later one can still read these. A restore on boot applies them under the
 * store's rules; `msr-relay import` applies them only with `--no-verify` (the operator vouches for the file,
 * as for its unsigned events) and otherwise counts and skips them: they carry no signature.
 */
const PREFIX = '{"bookkeeping":'
const VERSION = 1

/** Whether a snapshot line is a bookkeeping record rather than an event. */
export const isBookkeepingRecord = (line: string): boolean => line.startsWith(PREFIX)

/** A bookkeeping record as its snapshot line. */
export const formatRecord = (record: BookkeepingRecord): string => {
  const body =
    record.type === 'mark'
      ? { v: VERSION, mark: record.address, id: record.id, created_at: record.createdAt }
      : record.type === 'tombstone'
        ? { v: VERSION, tombstone: record.id, by: record.by }
        : { v: VERSION, deleted_address: record.address, upto: record.upTo }
  return `${PREFIX}${JSON.stringify(body)}}\n`
}

const hex64 = z.string().regex(/^[0-9a-f]{64}$/)
const time = z.number().int().min(0).max(0xffffffff)
const address = z
  .string()
  .regex(/^(?:[0-9a-f]{2})+$/)
  .refine(hex => isAddressKey(Buffer.from(hex, 'hex')))
const lineSchema = z
  .object({
    bookkeeping: z.union([
      z.object({ v: z.literal(VERSION), mark: address, id: hex64, created_at: time }).strict(),
      z.object({ v: z.literal(VERSION), tombstone: hex64, by: hex64 }).strict(),
      z.object({ v: z.literal(VERSION), deleted_address: address, upto: time }).strict(),
    ]),
  })
  .strict()

/** The record of a bookkeeping line, every field checked (never trusted as it comes), or why it is not one. */
export const parseRecord = (line: string): { ok: true; record: BookkeepingRecord } | { ok: false; reason: string } => {
  let raw: unknown
  try {
    raw = JSON.parse(line)
  } catch {
    return { ok: false, reason: 'not JSON' }
  }
  const parsed = lineSchema.safeParse(raw)
  if (!parsed.success) return { ok: false, reason: 'not a bookkeeping record' }
  const b = parsed.data.bookkeeping
  if ('mark' in b) return { ok: true, record: { type: 'mark', address: b.mark, id: b.id, createdAt: b.created_at } }
  if ('tombstone' in b) return { ok: true, record: { type: 'tombstone', id: b.tombstone, by: b.by } }
  return { ok: true, record: { type: 'deleted-address', address: b.deleted_address, upTo: b.upto } }
}

/** The store's bookkeeping records as snapshot lines (read after the events: at least as recent as they are). */
export function* bookkeepingRecords(store: EventStore): Generator<Buffer> {
  for (const record of store.bookkeeping()) yield Buffer.from(formatRecord(record))
}

/** Records applied per transaction. */
const BATCH = 1000

/** Applies the records of a restore through the writer, a transaction per thousand, as they are read. */
export class RecordBatches {
  private batch: BookkeepingRecord[] = []

  constructor(private readonly writer: Writer) {}

  /** Adds a record; resolves once it is queued, after applying a full batch (back-pressure on the reader). */
  async add(record: BookkeepingRecord): Promise<void> {
    this.batch.push(record)
    if (this.batch.length >= BATCH) await this.flush()
  }

  /** Applies what is left. */
  async flush(): Promise<void> {
    if (this.batch.length === 0) return
    const records = this.batch
    this.batch = []
    await this.writer.applyRecords(records)
  }
}
