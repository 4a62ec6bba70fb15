// Export: every unexpired row of the chosen tables as JSON lines, read through server-side cursors in
// one read-only snapshot, written with back-pressure, so memory stays flat whatever the table sizes.
import type { Pool, PoolClient } from 'pg'
import { header, selectSql, SPECS, TABLES, type Table, type TableSpec } from './records.js'
import { noCounts, type ExportSummary, type Progress } from './summary.js'

/** What to export. */
export interface ExportOptions {
  /** Default: all four. */
  tables?: readonly Table[]
  progress?: Progress
}

/**
 * Writes the header, then each chosen table's unexpired rows (groups by id; the others in pickup order)
 * to `stream`, and resolves with the counts once the last line was handed to it. The caller ends the
 * stream (`done()` of @msr/storage's writer) and so decides when the export is durable.
 */
export const exportMailbox = async (pool: Pool, stream: NodeJS.WritableStream, opts: ExportOptions = {}): Promise<ExportSummary> => {
  const chosen = new Set<Table>(opts.tables ?? TABLES)
  const specs = SPECS.filter(spec => chosen.has(spec.table))
  const summary: ExportSummary = { tables: specs.map(spec => spec.table), records: noCounts(), expired: noCounts() }
  const out = lineWriter(stream)
  const client = await pool.connect()
  let broken: Error | undefined
  try {
    // One snapshot for every table: the export is consistent, and "expired" means expired when it began.
    await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY')
    let live = 0
    for (const spec of specs) {
      const sizes = await countRows(client, spec)
      summary.expired[spec.type] = sizes.expired
      live += sizes.live
    }
    opts.progress?.setTotal(live)
    await out.line(JSON.stringify(header(summary.tables)))
    for (const spec of specs)
      await copyTable(client, spec, out, n => {
        summary.records[spec.type] += n
        opts.progress?.add(n)
      })
    await out.flush()
    await client.query('COMMIT')
    return summary
  } catch (error) {
    broken = await client.query('ROLLBACK').then(
      () => undefined,
      (e: unknown) => (e instanceof Error ? e : new Error(String(e))),
    )
    const written = Object.values(summary.records).reduce((a, b) => a + b, 0)
    throw new Error(`export stopped after ${written} records: ${error instanceof Error ? error.message : String(error)}`, { cause: error })
  } finally {
    client.release(broken)
  }
}

/** Rows to export and expired rows to skip (one scan, in the export's snapshot). */
const countRows = async (client: PoolClient, spec: TableSpec): Promise<{ live: number; expired: number }> => {
  const sql = spec.expires
    ? `SELECT count(*) FILTER (WHERE expires_at > now())::int AS live, count(*) FILTER (WHERE expires_at <= now())::int AS expired FROM ${spec.sqlTable}`
    : `SELECT count(*)::int AS live, 0 AS expired FROM ${spec.sqlTable}`
  const { rows } = await client.query<{ live: number; expired: number }>(sql)
  return rows[0] ?? { live: 0, expired: 0 }
}

/** Streams one table through a server-side cursor, `fetchRows` rows per round trip. */
const copyTable = async (client: PoolClient, spec: TableSpec, out: LineWriter, wrote: (n: number) => void): Promise<void> => {
  await client.query(`DECLARE export_rows NO SCROLL CURSOR FOR ${selectSql(spec)}`)
  for (;;) {
    const { rows } = await client.query<Record<string, unknown>>(`FETCH ${spec.fetchRows} FROM export_rows`)
    for (const row of rows) await out.line(JSON.stringify({ type: spec.type, ...row }))
    wrote(rows.length)
    if (rows.length < spec.fetchRows) break
  }
  await client.query('CLOSE export_rows')
}

interface LineWriter {
  line(text: string): Promise<void>
  flush(): Promise<void>
}

const CHUNK_CHARS = 64 * 1024

/**
 * Lines gathered into chunks of about 64 KiB, each written only when the stream has room: a false
 * `write()` waits for 'drain' (or fails on 'error' / 'close'), so a slow destination slows the reads.
 */
const lineWriter = (stream: NodeJS.WritableStream): LineWriter => {
  let chunk: string[] = []
  let size = 0
  let failure: Error | undefined
  stream.on('error', (error: Error) => (failure ??= error))
  const write = async (text: string): Promise<void> => {
    if (failure) throw failure
    if (!stream.write(text)) await drained(stream)
  }
  const flush = async (): Promise<void> => {
    if (chunk.length === 0) return
    const text = chunk.join('')
    ;[chunk, size] = [[], 0]
    await write(text)
  }
  return {
    line: async text => {
      chunk.push(text, '\n')
      size += text.length + 1
      if (size >= CHUNK_CHARS) await flush()
    },
    flush,
  }
}

const drained = (stream: NodeJS.WritableStream): Promise<void> =>
  new Promise((resolve, reject) => {
    const settle = (error?: Error) => {
      stream.off('drain', onDrain)
      stream.off('error', onError)
      stream.off('close', onClose)
      if (error) reject(error)
      else resolve()
    }
    const onDrain = () => settle()
    const onError = (error: Error) => settle(error)
    const onClose = () => settle(new Error('the output was closed before the export was written'))
    stream.on('drain', onDrain)
    stream.on('error', onError)
    stream.on('close', onClose)
  })
