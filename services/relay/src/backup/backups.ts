import { PassThrough } from 'node:stream'
import type { SnapshotInfo, SnapshotStore } from '@msr/storage'
import { readLines } from '@msr/storage'
import type { Logger } from '@msr/telemetry'
import type { Writer } from '../pipeline/writer.js'
import type { EventStore } from '../store/event-store.js'
import { exportEvents } from './export.js'
import { describeImport, importEvents, type ImportSummary } from './import.js'

/** What the backup loop reports to metrics. */
export interface BackupObserver {
  snapshot(outcome: 'written' | 'failed', seconds: number, events: number): void
}

/** Settings of the backup loop (`[backup]`). */
export interface BackupOptions {
  intervalMs: number
  keep: number
}

const now = () => Math.floor(Date.now() / 1000)

/**
 * Writes a consistent snapshot (one LMDB read snapshot, the export format, gzip) to the snapshot store
 * under a new unique name, then keeps the newest `keep`. Ingest goes on meanwhile: the export yields to
 * the event loop every thousand events and waits for the upload when it lags.
 */
export const takeSnapshot = async (
  store: EventStore,
  snapshots: SnapshotStore,
  keep: number,
  signal?: AbortSignal,
): Promise<{ info: SnapshotInfo; events: number; pruned: string[] }> => {
  const body = new PassThrough()
  const stored = snapshots.put(body)
  // If the upload fails, stop producing (and say why) rather than fill memory behind a dead stream.
  let uploadError: unknown
  stored.catch(error => {
    uploadError = error
    body.destroy()
  })
  let events: number
  try {
    events = await exportEvents(store, body, { now: now(), ...(signal && { signal }) })
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

/**
 * Restores the newest readable snapshot into an empty store (the relay's own snapshots: signatures were
 * verified when the events arrived, so they are not checked again; ids are). A snapshot that cannot be
 * read through is skipped for the one before it. Resolves with what was restored, or undefined.
 */
export const restoreNewest = async (
  snapshots: SnapshotStore,
  writer: Writer,
  logger: Logger,
): Promise<{ name: string; summary: ImportSummary } | undefined> => {
  for (const info of await snapshots.list()) {
    try {
      const summary = await importEvents(readLines(await snapshots.get(info.name)), { writer, now: now() })
      await writer.drain()
      logger.info({ snapshot: info.name, target: snapshots.target, summary: describeImport(summary)[0] }, 'restored the newest snapshot')
      return { name: info.name, summary }
    } catch (error) {
      logger.error({ err: error, snapshot: info.name }, 'snapshot unreadable; trying the one before it')
    }
  }
  return undefined
}

/**
 * The periodic backup: a snapshot every interval when something was committed since the last one,
 * and a last one at shutdown. One snapshot at a time.
 */
export class Backups {
  private timer: NodeJS.Timeout | undefined
  private running: Promise<void> | undefined
  private dirty = true
  private readonly abort = new AbortController()

  constructor(
    private readonly deps: { store: EventStore; snapshots: SnapshotStore; logger: Logger; observer: BackupObserver },
    private readonly opts: BackupOptions,
  ) {}

  /** Marks the store changed (called for each committed batch). */
  changed(): void {
    this.dirty = true
  }

  start(): void {
    this.timer = setInterval(() => void this.run('interval'), this.opts.intervalMs)
    this.timer.unref()
  }

  /** Takes a snapshot now unless one is running (then waits for it) or nothing changed. */
  run(why: 'interval' | 'shutdown'): Promise<void> {
    if (this.running) return this.running
    if (!this.dirty) return Promise.resolve()
    this.dirty = false
    this.running = this.snapshot(why).finally(() => (this.running = undefined))
    return this.running
  }

  /** Stops the timer; with `finalWithinMs`, writes a last snapshot (abandoned past that time). */
  async stop(finalWithinMs?: number): Promise<void> {
    clearInterval(this.timer)
    if (finalWithinMs === undefined) return void (await this.running)
    await this.running
    let timer: NodeJS.Timeout | undefined
    const late = new Promise<'late'>(resolve => (timer = setTimeout(() => resolve('late'), finalWithinMs)))
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
    try {
      const { info, events, pruned } = await takeSnapshot(this.deps.store, this.deps.snapshots, this.opts.keep, this.abort.signal)
      this.deps.observer.snapshot('written', seconds(), events)
      this.deps.logger.info({ why, snapshot: info.name, events, bytes: info.bytes, seconds: seconds(), pruned: pruned.length }, 'snapshot written')
    } catch (error) {
      this.dirty = true
      this.deps.observer.snapshot('failed', seconds(), 0)
      this.deps.logger.error({ err: error, why, target: this.deps.snapshots.target }, 'snapshot failed; the previous one stands')
    }
  }
}
