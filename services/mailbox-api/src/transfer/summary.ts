// What an export or import did, as numbers (for tests) and as the lines the CLI prints on stderr.
import { RECORD_TYPES, SPECS, type RecordType, type Table } from './records.js'

/** A progress display (the CLI's comes from @msr/storage's createProgress). */
export interface Progress {
  add(n?: number): void
  setTotal(total: number): void
}

/** A count per record type. */
export type Counts = Record<RecordType, number>

/** Zero of every record type. */
export const noCounts = (): Counts => ({ group: 0, keypackage: 0, welcome: 0, dm_hint: 0 })

const total = (counts: Counts): number => RECORD_TYPES.reduce((sum, type) => sum + counts[type], 0)

/** `1234 (group 10, keypackage 1224)`, naming only `types`. */
const breakdown = (counts: Counts, types: readonly RecordType[] = RECORD_TYPES): string =>
  types.length === 0 ? String(total(counts)) : `${total(counts)} (${types.map(type => `${type} ${counts[type]}`).join(', ')})`

/** What an export wrote, and the expired rows it passed over. */
export interface ExportSummary {
  tables: Table[]
  records: Counts
  expired: Counts
}

/** The export's report: records written per type, expired rows skipped. */
export const formatExportSummary = (summary: ExportSummary, where: string): string => {
  const types = SPECS.filter(spec => summary.tables.includes(spec.table)).map(spec => spec.type)
  return [
    `export: ${breakdown(summary.records, types)} records written to ${where === '-' ? 'stdout' : where}`,
    `expired (skipped): ${breakdown(summary.expired, types.filter(t => t !== 'group'))}`,
  ].join('\n') + '\n'
}

/** What an import read, stored and passed over. */
export interface ImportSummary {
  /** Lines read, the header included. */
  lines: number
  /** Rows added, per type. */
  imported: Counts
  /** Groups already here that the import moved forward (epoch, last event time, message count, missing metadata). */
  updated: number
  /** Records already here, left as they were. */
  duplicate: Counts
  /** Records already expired, not stored. */
  expired: Counts
  invalid: number
  /** The first reasons for invalid lines, each with its line number. */
  reasons: string[]
}

/** The most invalid-line reasons an import keeps (all of them are counted). */
export const MAX_REASONS = 20

/** An import that has read nothing yet. */
export const emptyImportSummary = (): ImportSummary => ({ lines: 0, imported: noCounts(), updated: 0, duplicate: noCounts(), expired: noCounts(), invalid: 0, reasons: [] })

/** Counts an invalid line, keeping its reason while there are few. */
export const countInvalid = (summary: ImportSummary, line: number, reason: string): void => {
  summary.invalid += 1
  if (summary.reasons.length < MAX_REASONS) summary.reasons.push(`line ${line}: ${reason}`)
}

/** The import's report: lines read, imported / duplicate / expired per type, invalid lines with the first reasons. */
export const formatImportSummary = (summary: ImportSummary, where: string): string => {
  const more = summary.invalid - summary.reasons.length
  return [
    `import: read ${summary.lines} lines from ${where === '-' ? 'stdin' : where}`,
    `imported: ${breakdown(summary.imported)}; groups updated: ${summary.updated}`,
    `duplicate (already there): ${breakdown(summary.duplicate)}`,
    `expired (skipped): ${breakdown(summary.expired, RECORD_TYPES.filter(t => t !== 'group'))}`,
    `invalid (skipped): ${summary.invalid}`,
    ...summary.reasons.map(reason => `  ${reason}`),
    ...(more > 0 ? [`  … and ${more} more`] : []),
  ].join('\n') + '\n'
}
