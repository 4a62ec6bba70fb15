import type { Logger } from '@msr/telemetry'
import { remaining, within } from '../deadline.js'
import type { Part } from '../lifecycle.js'
import type { Writer } from './writer.js'

/**
 * NIP-40: deletes expired events in the background, through the writer, every `intervalMs`. Expired
 * events are never served whether or not the sweep has run (the query checks); this only frees space.
 */
export class ExpirySweep implements Part {
  readonly name = 'expiry sweep'
  private timer: NodeJS.Timeout | undefined
  private running: Promise<void> | undefined

  constructor(
    private readonly deps: { writer: Writer; logger: Logger; onDeleted: (count: number) => void; now?: () => number },
    private readonly intervalMs: number,
  ) {}

  start(): void {
    this.timer = setInterval(() => void this.sweep(), this.intervalMs)
    this.timer.unref()
  }

  /** Runs one sweep unless one is running; never rejects. */
  sweep(): Promise<void> {
    this.running ??= this.deps.writer
      .sweepExpired(this.deps.now?.() ?? Math.floor(Date.now() / 1000))
      .then(deleted => {
        if (deleted === 0) return
        this.deps.onDeleted(deleted)
        this.deps.logger.info({ deleted }, 'deleted expired events')
      })
      .catch((error: unknown) => this.deps.logger.error({ err: error }, 'expiration sweep failed'))
      .finally(() => (this.running = undefined))
    return this.running
  }

  async stop(deadline: number): Promise<void> {
    clearInterval(this.timer)
    if (this.running) await within(this.running, remaining(deadline))
  }
}
