// Import: an export's lines checked one by one and stored in batches (one transaction each) of
// multi-row inserts that keep what is already there, so running an import twice changes nothing.
import type { Pool, PoolClient } from 'pg'
import { readLines } from '@msr/storage'
import { insertParams, insertSql, parseLine, recordSchemas, refuseHeader, SPEC_OF, SPECS, type MailboxRecord } from './records.js'
import { countInvalid, emptyImportSummary, noCounts, type Counts, type ImportSummary, type Progress } from './summary.js'

/** How to import. */
export interface ImportOptions {
  /** The largest decoded artifact accepted (MAILBOX_MAX_ARTIFACT_BYTES), as for a deposit. */
  maxArtifactBytes: number
  /** Rows per transaction (default 500). */
  batchRows?: number
  /** Characters of lines per transaction, so batches of large artifacts stay small (default 16 MiB). */
  batchChars?: number
  /** Told of every line read, the header included. */
  progress?: Pick<Progress, 'add'>
}

/** An import read through (with its counts), or refused for its header before anything was stored. */
export type ImportResult = { ok: true; summary: ImportSummary } | { ok: false; reason: string; summary: ImportSummary }

/** The longest line accepted: two artifacts as base64 plus room for 64 tags of 16 escaped strings. */
export const maxLineBytes = (maxArtifactBytes: number): number => 2 * 4 * Math.ceil(maxArtifactBytes / 3) + 8 * 1024 * 1024

/**
 * Reads an export from `stream`: a first line that is not a header of this format refuses the whole
 * stream; after it, an invalid line is counted with its reason and skipped, an expired record counted
 * and skipped, and the rest stored in batches. Rejects when the stream or the database fails (what was
 * committed stays: running the import again completes it).
 */
export const importMailbox = async (pool: Pool, stream: NodeJS.ReadableStream, opts: ImportOptions): Promise<ImportResult> => {
  const summary = emptyImportSummary()
  const lines = readLines(stream, maxLineBytes(opts.maxArtifactBytes))[Symbol.asyncIterator]()
  const first = await lines.next()
  summary.lines = first.done ? 0 : 1
  opts.progress?.add(summary.lines)
  const refused = refuseHeader(first.done ? undefined : first.value.tooLong ? '' : first.value.line)
  if (refused) {
    await lines.return?.()
    return { ok: false, reason: refused, summary }
  }
  const client = await pool.connect()
  let broken: Error | undefined
  try {
    const batch = new Batch(client, summary, opts)
    const schemas = recordSchemas(opts.maxArtifactBytes)
    for (let next = await lines.next(); !next.done; next = await lines.next()) {
      const { line, tooLong } = next.value
      const number = ++summary.lines
      opts.progress?.add(1)
      const parsed = tooLong ? { ok: false as const, reason: `longer than ${maxLineBytes(opts.maxArtifactBytes)} bytes` } : parseLine(line, schemas)
      if (!parsed.ok) countInvalid(summary, number, parsed.reason)
      else if (parsed.record && expired(parsed.record)) summary.expired[parsed.record.type] += 1
      else if (parsed.record) await batch.add(number, parsed.record, line.length)
    }
    await batch.flush()
    return { ok: true, summary }
  } catch (error) {
    broken = await client.query('ROLLBACK').then(
      () => undefined,
      (e: unknown) => (e instanceof Error ? e : new Error(String(e))),
    )
    throw new Error(`import stopped at line ${summary.lines}: ${error instanceof Error ? error.message : String(error)}`, { cause: error })
  } finally {
    client.release(broken)
  }
}

const expired = (record: MailboxRecord): boolean => SPEC_OF[record.type].expires && Date.parse(record.expires_at as string) <= Date.now()

/** A record waiting for its batch, with its line number (a row the database refuses is reported by it). */
interface Pending {
  line: number
  record: MailboxRecord
}

/** Records gathered until a batch is full, then stored in one transaction. */
class Batch {
  private pending: Pending[] = []
  private chars = 0
  // A multi-row upsert may not touch one row twice: a group seen again first flushes the batch.
  private groups = new Set<unknown>()
  private readonly maxRows: number
  private readonly maxChars: number

  constructor(
    private readonly client: PoolClient,
    private readonly summary: ImportSummary,
    opts: ImportOptions,
  ) {
    this.maxRows = opts.batchRows ?? 500
    this.maxChars = opts.batchChars ?? 16 * 1024 * 1024
  }

  async add(line: number, record: MailboxRecord, chars: number): Promise<void> {
    if (record.type === 'group' && this.groups.has(record.group_id)) await this.flush()
    this.pending.push({ line, record })
    this.chars += chars
    if (record.type === 'group') this.groups.add(record.group_id)
    if (this.pending.length >= this.maxRows || this.chars >= this.maxChars) await this.flush()
  }

  /** Stores what is pending; a batch the database refuses for its data is retried row by row. */
  async flush(): Promise<void> {
    const items = this.pending
    ;[this.pending, this.chars, this.groups] = [[], 0, new Set()]
    if (items.length === 0) return
    try {
      await this.client.query('BEGIN')
      const outcome = await storeAll(this.client, items)
      await this.client.query('COMMIT')
      this.count(outcome)
    } catch (error) {
      await this.client.query('ROLLBACK')
      if (!isDataError(error)) throw error
      await this.storeOneByOne(items)
    }
  }

  /** Each row in its own statement; one the database refuses is counted invalid with its line number. */
  private async storeOneByOne(items: Pending[]): Promise<void> {
    for (const item of items) {
      try {
        this.count(await storeAll(this.client, [item]))
      } catch (error) {
        if (!isDataError(error)) throw error
        countInvalid(this.summary, item.line, `${item.record.type}: refused by the database (${(error as Error).message})`)
      }
    }
  }

  private count(outcome: Outcome): void {
    for (const type of SPECS.map(s => s.type)) {
      this.summary.imported[type] += outcome.inserted[type]
      this.summary.duplicate[type] += outcome.kept[type]
    }
    this.summary.updated += outcome.updated
  }
}

/** Per type: rows inserted, rows already there and left alone; and groups moved forward. */
interface Outcome {
  inserted: Counts
  kept: Counts
  updated: number
}

/** One multi-row insert per table present, in table order (groups before the welcomes naming them). */
const storeAll = async (client: PoolClient, items: readonly Pending[]): Promise<Outcome> => {
  const outcome: Outcome = { inserted: noCounts(), kept: noCounts(), updated: 0 }
  for (const spec of SPECS) {
    const records = items.filter(item => item.record.type === spec.type).map(item => item.record)
    if (records.length === 0) continue
    const { rows } = await client.query<{ inserted: boolean }>({ name: `import-${spec.type}`, text: insertSql(spec), values: insertParams(spec, records) })
    const inserted = rows.filter(row => row.inserted).length
    outcome.inserted[spec.type] = inserted
    outcome.updated += rows.length - inserted
    outcome.kept[spec.type] = records.length - rows.length
  }
  return outcome
}

/** SQLSTATE classes 22 (data exception) and 23 (integrity constraint violation): the data, not the database. */
const isDataError = (error: unknown): boolean => {
  const code = (error as { code?: unknown } | undefined)?.code
  return typeof code === 'string' && (code.startsWith('22') || code.startsWith('23'))
}
