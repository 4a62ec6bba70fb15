import { PassThrough } from 'node:stream'
import type { SnapshotInfo, SnapshotStore } from '@msr/storage'
import { readLines, snapshotTime } from '@msr/storage'
import type { Logger } from '@msr/telemetry'
import { acceptUnverified } from '../pipeline/validate.js'
import type { Writer } from '../pipeline/writer.js'
import type { EventStore } from '../store/event-store.js'
import type { RelayConfig } from '../config.js'
import type { Part } from '../lifecycle.js'
import { exportEvents } from './export.js'
import { describeImport, importEvents, type ImportSummary } from './import.js'
import { traced } from '../tracing.js'
import { bookkeepingRecords, RecordBatches } from './bookkeeping-records.js'
import { outboxRecords, RestoredHints } from './outbox-records.js'

/** What the backup loop reports to metrics. */
export interface BackupObserver {
  snapshot(outcome: 'written' | 'failed', seconds: number, events: number): void
}

/** Settings of the backup loop (`[backup]`). */
export interface BackupOptions {
  intervalMs: number
  keep: number
  /** A last snapshot at shutdown, given at most this long (and never past the shutdown deadline); absent: none. */
  shutdownBudgetMs?: number
  /**
   * Whether the store holds what it should (default: always). A replica still catching up with the topic
   * does not: a snapshot of it would miss events older than its name says, so none is written until then.
   */
  complete?: () => boolean
}

const now = () => Math.floor(Date.now() / 1000)

/**
 * Writes a consistent snapshot (one LMDB read snapshot, the export format, gzip) to the snapshot store
 * under a new unique name, then keeps the newest `keep`. Ingest goes on meanwhile: the export yields to
 * the event loop every thousand events and waits for the upload when it lags.
 */
export const takeSnapshot = (
  store: EventStore,
  snapshots: SnapshotStore,
  keep: number,
  signal?: AbortSignal,
): Promise<{ info: SnapshotInfo; events: number; pruned: string[] }> =>
  traced('relay.snapshot', { 'snapshot.kind': 'full' }, async span => {
    const taken = await writeSnapshot(store, snapshots, keep, signal)
    span.setAttributes({ 'snapshot.events': taken.events, 'snapshot.pruned': taken.pruned.length })
    return taken
  })

const writeSnapshot = async (
  store: EventStore,
  snapshots: SnapshotStore,
  keep: number,
  signal?: AbortSignal,
): Promise<{ info: SnapshotInfo; events: number; pruned: string[] }> => {
  const body = new PassThrough()
  // Failures are reported by put() and by the export; an error event must never go unobserved.
  body.on('error', () => undefined)
  const stored = snapshots.put(body)
  // If the upload fails, stop producing (and say why) rather than fill memory behind a dead stream.
  let uploadError: unknown
  stored.catch(error => {
    uploadError = error
    body.destroy()
  })
  let events: number
  try {
    // The bookkeeping and the outboxes are read after the events' view: what they held by then is in the snapshot.
    events = await exportEvents(store, body, { now: now(), ...(signal && { signal }), trailer: () => trailer(store) })
    body.end()
  } catch (error) {
    // Destroying the source makes the store drop the partial upload (it is never listed).
    body.destroy(error instanceof Error ? error : new Error(String(error)))
    await stored.catch(() => undefined)
    throw uploadError ?? error
  }
  const info = await stored
  const pruned = await snapshots.prune(keep)
  return { info, events, pruned }
}

/** What a snapshot writes after its events: the store's bookkeeping records, then its outbox records. */
function* trailer(store: EventStore): Generator<Buffer> {
  yield* bookkeepingRecords(store)
  yield* outboxRecords(store)
}

/**
 * Writes a delta snapshot: the stored events among `ids` (what was committed since the last full
 * snapshot; an event since replaced or deleted is left out, its replacement or deletion is in `ids`),
 * then the store's bookkeeping records (the same as a full snapshot's: three small databases, read in
 * milliseconds, and a delta may be restored over an older full one) and the records of what waits in the outboxes. Small and quick where a full snapshot would not fit in time: at
 * shutdown.
 */
export const takeDelta = (store: EventStore, snapshots: SnapshotStore, ids: Iterable<string>): Promise<{ info: SnapshotInfo; events: number }> =>
  traced('relay.snapshot', { 'snapshot.kind': 'delta' }, async span => {
    const taken = await writeDelta(store, snapshots, ids)
    span.setAttribute('snapshot.events', taken.events)
    return taken
  })

const writeDelta = async (store: EventStore, snapshots: SnapshotStore, ids: Iterable<string>): Promise<{ info: SnapshotInfo; events: number }> => {
  let events = 0
  async function* lines(): AsyncGenerator<string | Buffer> {
    for (const id of new Set(ids)) {
      const json = store.get(id)
      if (json === undefined) continue
      events++
      yield `${json}\n`
    }
    yield* trailer(store)
  }
  const info = await snapshots.put(lines(), { kind: 'delta' })
  return { info, events }
}

/** Two imports' summaries as one: counts added, reasons merged. */
const addSummaries = (a: ImportSummary, b: ImportSummary): ImportSummary => {
  const merged = (x: Map<string, number>, y: Map<string, number>) => {
    const out = new Map(x)
    for (const [reason, n] of y) out.set(reason, (out.get(reason) ?? 0) + n)
    return out
  }
  return {
    read: a.read + b.read,
    imported: a.imported + b.imported,
    duplicate: a.duplicate + b.duplicate,
    rejected: merged(a.rejected, b.rejected),
    invalid: merged(a.invalid, b.invalid),
    hints: a.hints + b.hints,
    replicate: a.replicate + b.replicate,
    bookkeeping: a.bookkeeping + b.bookkeeping,
  }
}

/** What a restore gathers from its snapshots' outbox records. */
interface Records {
  hints: RestoredHints
  /** Event ids of replication records, in the order first seen. */
  replicate: Set<string>
}

/**
 * Imports one snapshot, applying its bookkeeping records (in any order with its events: the store's rules
 * end the same) and gathering its outbox records; rejects when it cannot be read through.
 */
const restoreOne = async (snapshots: SnapshotStore, name: string, writer: Writer, records: Records): Promise<ImportSummary> => {
  const bookkeeping = new RecordBatches(writer)
  const summary = await importEvents(readLines(await snapshots.get(name)), {
    writer,
    now: now(),
    admit: checked => acceptUnverified(checked, 'own snapshot'),
    onHint: hint => records.hints.add(hint),
    onReplicate: id => records.replicate.add(id),
    onRecord: record => bookkeeping.add(record),
    source: 'replica',
  })
  await bookkeeping.flush()
  await writer.drain()
  return summary
}

/**
 * Where a restore goes, whether the hints the snapshots held are queued again (only with a transport), and
 * whether their replication entries are (only with `[replication]`).
 */
export interface RestoreTarget {
  store: EventStore
  writer: Writer
  queueHints: boolean
  queueReplication: boolean
}

/** What a restore brought back. */
export interface Restored {
  name: string
  /** When the oldest snapshot restored (the full one, or the first delta) was started: it holds what was committed before. */
  startedAt: Date
  summary: ImportSummary
  hints: number
  /** Replication entries queued again (published by this replica's drainer). */
  replicate: number
}

/**
 * Restores the newest readable snapshot into an empty store (the relay's own snapshots: signatures were
 * verified when the events arrived, so they are not checked again; ids are). A snapshot that cannot be
 * read through is skipped for the one before it. The hints the restored snapshots held (unconfirmed by
 * the bus when they were written) go back into the outbox, for the events that were restored, and so do
 * their replication entries (events committed by the snapshot's writer and not yet confirmed by the bus:
 * had that replica died before publishing them, this one holds what no other does), published again with
 * this replica as origin (a duplicate is dropped by the others). Restored events produce no hints or
 * replication entries of their own. Resolves with what was restored, or undefined.
 */
export const restoreNewest = (
  snapshots: SnapshotStore,
  target: RestoreTarget,
  logger: Logger,
): Promise<Restored | undefined> =>
  traced('relay.restore', {}, async span => {
    const restored = await restoreFrom(snapshots, target, logger)
    span.setAttributes({ 'snapshot.restored': restored !== undefined, 'snapshot.events': restored?.summary.imported ?? 0 })
    return restored
  })

const restoreFrom = async (
  snapshots: SnapshotStore,
  target: RestoreTarget,
  logger: Logger,
): Promise<Restored | undefined> => {
  const { writer } = target
  const listed = await snapshots.list()
  const fulls = listed.filter(s => s.kind === 'full')
  // Each full snapshot newest first (an unreadable one falls back to the one before it), or with none, only deltas.
  for (const base of fulls.length > 0 ? fulls : [undefined]) {
    const deltas = listed.filter(s => s.kind === 'delta' && (base === undefined || s.name > base.name)).reverse()
    const records: Records = { hints: new RestoredHints(), replicate: new Set() }
    try {
      const summary = base ? await restoreOne(snapshots, base.name, writer, records) : undefined
      let total = summary ?? { read: 0, imported: 0, duplicate: 0, rejected: new Map(), invalid: new Map(), hints: 0, replicate: 0, bookkeeping: 0 }
      for (const delta of deltas) {
        const more = await restoreOne(snapshots, delta.name, writer, records).catch(error => {
          logger.error({ err: error, snapshot: delta.name }, 'delta snapshot unreadable; skipped')
          return undefined
        })
        if (more) total = addSummaries(total, more)
      }
      if (!base && deltas.length === 0) return undefined
      const queued = target.queueHints ? records.hints.inStore(target.store) : []
      if (queued.length > 0) await writer.queueHints(queued)
      const replicate = target.queueReplication && records.replicate.size > 0 ? await writer.queueReplication([...records.replicate]) : 0
      const name = base?.name ?? deltas.at(-1)?.name ?? ''
      const startedAt = snapshotTime(base?.name ?? deltas[0]?.name ?? '') ?? new Date(0)
      logger.info(
        { snapshot: base?.name ?? null, deltas: deltas.length, target: snapshots.target, summary: describeImport(total)[0], hintsQueued: queued.length, replicationQueued: replicate },
        'restored the newest snapshot',
      )
      return { name, startedAt, summary: total, hints: queued.length, replicate }
    } catch (error) {
      logger.error({ err: error, snapshot: base?.name }, 'snapshot unreadable; trying the one before it')
    }
  }
  return undefined
}

/**
 * The periodic backup: a snapshot every interval when something was committed since the last one,
 * and a last one at shutdown. One snapshot at a time.
 */
export class Backups implements Part {
  readonly name = 'snapshots'
  private timer: NodeJS.Timeout | undefined
  private running: Promise<void> | undefined
  private dirty = true
  private readonly abort = new AbortController()
  /** What the restore on boot brought back, if it ran and found a snapshot. */
  restored: Restored | undefined
  /** Ids committed since the last full snapshot began (what a delta holds). */
  private since: string[] = []
  /**
   * Whether the snapshots hold everything stored before `since`: the store was empty at start (restored
   * or new), or a full snapshot has been written. Until then a delta would not be enough.
   */
  private covered: boolean

  constructor(
    private readonly deps: { store: EventStore; snapshots: SnapshotStore; logger: Logger; observer: BackupObserver },
    private readonly opts: BackupOptions & { startedEmpty: boolean },
  ) {
    this.covered = opts.startedEmpty
  }

  /** Records a committed batch: the store changed, and these ids go into the next delta. */
  changed(ids: readonly string[]): void {
    this.dirty = true
    for (const id of ids) this.since.push(id)
  }

  start(): void {
    this.timer = setInterval(() => void this.run('interval'), this.opts.intervalMs)
    this.timer.unref()
  }

  /**
   * Takes a snapshot now unless one is running (then waits for it) or nothing changed: full at each
   * interval; at shutdown a delta when the snapshots already cover what came before (a full one of a
   * large store would not fit in Cloud Run's grace period).
   */
  run(why: 'interval' | 'shutdown'): Promise<void> {
    if (this.running) return this.running
    if (!this.dirty || this.opts.complete?.() === false) return Promise.resolve()
    this.dirty = false
    const delta = why === 'shutdown' && this.covered
    this.running = (delta ? this.delta() : this.snapshot(why)).finally(() => (this.running = undefined))
    return this.running
  }

  /**
   * Stops the timer; with a shutdown budget, writes a last snapshot, abandoned past the budget or the
   * deadline. A full snapshot still running is abandoned at once when a delta can replace it (or when
   * there is to be no last snapshot): on a large store it would not finish within Cloud Run's grace period.
   */
  async stop(shutdownDeadline: number): Promise<void> {
    clearInterval(this.timer)
    const budget = this.opts.shutdownBudgetMs
    const finalWithinMs = budget === undefined ? undefined : Math.min(budget, Math.max(0, shutdownDeadline - Date.now()))
    const deadline = Date.now() + (finalWithinMs ?? 0)
    if (this.running && (finalWithinMs === undefined || this.covered)) {
      this.abort.abort(new Error('shutdown'))
      await this.running
    }
    if (finalWithinMs === undefined) return
    let timer: NodeJS.Timeout | undefined
    const late = new Promise<'late'>(resolve => (timer = setTimeout(() => resolve('late'), Math.max(0, deadline - Date.now()))))
    const done = await Promise.race([this.run('shutdown').then(() => 'done' as const), late]).finally(() => clearTimeout(timer))
    if (done !== 'late') return
    // The store closes next: stop reading it, and let the partial upload be dropped.
    this.abort.abort(new Error('shutdown deadline'))
    await this.running
    this.deps.logger.warn({ withinMs: finalWithinMs }, 'the shutdown snapshot did not finish in time; the previous one stands')
  }

  private async snapshot(why: string): Promise<void> {
    const started = process.hrtime.bigint()
    const seconds = () => Number(process.hrtime.bigint() - started) / 1e9
    // Everything committed so far is in this snapshot's read view; what comes next goes to the next delta.
    const pending = this.since
    this.since = []
    try {
      const { info, events, pruned } = await takeSnapshot(this.deps.store, this.deps.snapshots, this.opts.keep, this.abort.signal)
      this.covered = true
      this.deps.observer.snapshot('written', seconds(), events)
      this.deps.logger.info({ why, snapshot: info.name, events, bytes: info.bytes, seconds: seconds(), pruned: pruned.length }, 'snapshot written')
    } catch (error) {
      this.dirty = true
      this.since = pending.concat(this.since)
      if (this.abort.signal.aborted) return void this.deps.logger.info({ why, seconds: seconds() }, 'full snapshot abandoned at shutdown')
      this.deps.observer.snapshot('failed', seconds(), 0)
      this.deps.logger.error({ err: error, why, target: this.deps.snapshots.target }, 'snapshot failed; the previous one stands')
    }
  }

  private async delta(): Promise<void> {
    const started = process.hrtime.bigint()
    const seconds = () => Number(process.hrtime.bigint() - started) / 1e9
    try {
      const { info, events } = await takeDelta(this.deps.store, this.deps.snapshots, this.since)
      this.deps.observer.snapshot('written', seconds(), events)
      this.deps.logger.info({ why: 'shutdown', snapshot: info.name, kind: 'delta', events, bytes: info.bytes, seconds: seconds() }, 'snapshot written')
    } catch (error) {
      this.dirty = true
      this.deps.observer.snapshot('failed', seconds(), 0)
      this.deps.logger.error({ err: error, why: 'shutdown', target: this.deps.snapshots.target }, 'delta snapshot failed; the previous snapshots stand')
    }
  }
}

/** The `[backup]` keys the snapshot loop runs by. */
export type BackupSettings = Pick<RelayConfig['backup'], 'interval' | 'keep' | 'restore_on_boot' | 'on_shutdown' | 'shutdown_budget'>

/**
 * The snapshot loop, ready to start. An empty store on an instance that had one before (Cloud Run's disk
 * went with the old instance) first gets the newest snapshot back when `restore_on_boot` says so: this
 * runs before the relay listens, so /readyz only answers once it has.
 */
export const openBackups = async (
  settings: BackupSettings,
  deps: { store: EventStore; snapshots: SnapshotStore; writer: Writer; queueHints: boolean; queueReplication: boolean; logger: Logger; observer: BackupObserver; complete?: () => boolean },
): Promise<Backups> => {
  const { store, snapshots, writer, logger } = deps
  const startedEmpty = store.size() === 0
  const restored = settings.restore_on_boot && startedEmpty ? await restoreNewest(snapshots, { store, writer, queueHints: deps.queueHints, queueReplication: deps.queueReplication }, logger) : undefined
  const backups = new Backups(
    { store, snapshots, logger, observer: deps.observer },
    {
      intervalMs: settings.interval,
      keep: settings.keep,
      ...(settings.on_shutdown && { shutdownBudgetMs: settings.shutdown_budget }),
      // Restored or new: the snapshots cover what is stored, so a delta at shutdown is enough.
      startedEmpty: startedEmpty && settings.restore_on_boot,
      ...(deps.complete && { complete: deps.complete }),
    },
  )
  backups.restored = restored
  return backups
}
