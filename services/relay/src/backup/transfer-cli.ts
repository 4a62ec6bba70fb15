// `msr-relay export` and `msr-relay import`: JSONL events between the store and a file, stdio or
// Cloud Storage, streaming, with progress on stderr (stdout may be the data).
import { parseFilter, type Filter } from '@msr/nostr'
import { createProgress, openReader, openWriter, readLines, type StorageOptions } from '@msr/storage'
import type { RelayConfig } from '../config.js'
import { VerifierPool } from '@msr/workers'
import { acceptUnverified, verifierThreads, verifySignature } from '../pipeline/validate.js'
import { Writer } from '../pipeline/writer.js'
import { openConfiguredStore } from '../store/write-map.js'
import { storeOwner } from '../store/owner.js'
import { traced } from '../tracing.js'
import { RecordBatches } from './bookkeeping-records.js'
import { exportEvents } from './export.js'
import { describeImport, importEvents, type ImportSummary } from './import.js'

const say = (line: string) => void process.stderr.write(`${line}\n`)
const now = () => Math.floor(Date.now() / 1000)

/** The `--filter` value as a NIP-01 filter, or an Error saying what is wrong with it. */
export const filterFrom = (json: string | undefined): Filter | Error | undefined => {
  if (json === undefined) return undefined
  let raw: unknown
  try {
    raw = JSON.parse(json)
  } catch {
    return new Error('--filter is not JSON (expected a NIP-01 filter object, e.g. {"kinds":[445]})')
  }
  const parsed = parseFilter(raw)
  return parsed.ok ? parsed.value : new Error(`--filter: ${parsed.reason.replace(/^invalid: /, '')}`)
}

/** Exports the store at `config.data.path` to `out`; resolves with the number of events. */
export const runExport = (config: RelayConfig, out: string, filter: Filter | undefined, storage: StorageOptions = {}): Promise<number> =>
  traced('relay.export', { 'export.filtered': filter !== undefined }, async span => {
    const exported = await exportTo(config, out, filter, storage)
    span.setAttribute('export.events', exported)
    return exported
  })

const exportTo = async (config: RelayConfig, out: string, filter: Filter | undefined, storage: StorageOptions): Promise<number> => {
  const { store } = openConfiguredStore(config.data)
  try {
    const writer = await openWriter(out, storage)
    const progress = createProgress({ label: 'export', unit: 'events', total: filter ? undefined : store.size() })
    let last = 0
    const exported = await exportEvents(store, writer.stream, {
      now: now(),
      ...(filter && { filter }),
      onProgress: n => (progress.add(n - last), (last = n)),
    }).finally(() => progress.stop())
    await writer.done()
    say(`exported ${exported} events from ${config.data.path} to ${out === '-' ? 'stdout' : out}`)
    return exported
  } finally {
    await store.close()
  }
}

/** Imports `input` into the store at `config.data.path`; resolves with the summary. */
export const runImport = (config: RelayConfig, input: string, verify: boolean, storage: StorageOptions = {}, force = false): Promise<ImportSummary> =>
  traced('relay.import', { 'import.verify': verify }, async span => {
    const summary = await importFrom(config, input, verify, storage, force)
    span.setAttributes({ 'import.read': summary.read, 'import.imported': summary.imported, 'import.duplicate': summary.duplicate })
    return summary
  })

const importFrom = async (config: RelayConfig, input: string, verify: boolean, storage: StorageOptions, force: boolean): Promise<ImportSummary> => {
  const owner = storeOwner(config.data.path)
  if (owner !== undefined && !force)
    throw new Error(
      `a running relay (pid ${owner}) serves ${config.data.path}: stop it first, import into a fresh data.path, or pass --force ` +
        '(events written beside a running relay are neither fanned out nor hinted by it)',
    )
  const { store, mapCap } = openConfiguredStore(config.data)
  const verifier = verify ? await VerifierPool.start(verifierThreads(config.verification.workers), config.verification.backend) : undefined
  // No cap of its own (an operator's import), but a writable map's: past it, a full tmpfs would end the process.
  const writer = new Writer(store, error => say(`store write failed: ${error instanceof Error ? error.message : String(error)}`), undefined, () => mapCap)
  try {
    const reader = await openReader(input, storage)
    const progress = createProgress({ label: 'import', unit: 'lines' })
    let last = 0
    // A snapshot's bookkeeping records carry no signature: applied only when the operator vouches for the file.
    const bookkeeping = verifier ? undefined : new RecordBatches(writer)
    const summary = await importEvents(readLines(reader.stream), {
      writer,
      now: now(),
      admit: checked => (verifier ? verifySignature(verifier, checked) : acceptUnverified(checked, 'operator vouched')),
      onProgress: s => (progress.add(s.read - last), (last = s.read)),
      ...(bookkeeping && { onRecord: record => bookkeeping.add(record) }),
    }).finally(() => progress.stop())
    await bookkeeping?.flush()
    await writer.drain()
    say(`imported from ${input === '-' ? 'stdin' : input} into ${config.data.path}${verify ? '' : ' (signatures not verified: --no-verify)'}`)
    for (const line of describeImport(summary)) say(line)
    return summary
  } finally {
    await writer.drain()
    await verifier?.close()
    await store.close()
  }
}
