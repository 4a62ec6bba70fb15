import type { Hint, HintTransport } from '@msr/hints'
import { traceCarrierOf, type Logger, type TraceCarrier } from '@msr/telemetry'
import { hintPublishSpan } from '../tracing.js'
import { remaining, within } from '../deadline.js'
import type { Part } from '../lifecycle.js'
import type { EventStore } from '../store/event-store.js'
import type { Writer } from './writer.js'

/** What the drainer reports to metrics. */
export interface DrainerObserver {
  published(hint: Hint, seconds: number): void
  failed(hint: Hint): void
  dropped(): void
}

/** Settings of the drain loop. */
export interface DrainerOptions {
  batchSize: number
  maxBackoffMs: number
  publishTimeoutMs: number
  /** Wait when the outbox is empty and nothing signalled (a safety net: `notify` normally wakes it). */
  idlePollMs?: number
  /** How long a graceful stop keeps publishing waiting hints (an instance's disk may not outlive it). */
  flushMs?: number
}

const FIRST_BACKOFF_MS = 250
/** The longest a stop waits for the round in flight, then for the transport to close. */
const STOP_WAIT_MS = 1500

/**
 * The last stage of the EVENT path: publishes the outbox's hints to the bus, oldest first, and removes
 * each one (through the writer) once the bus has confirmed it. A failing bus leaves the entries where
 * they are and the loop backs off (250 ms doubling up to `maxBackoffMs`); nothing is lost, and after a
 * crash the entries still there are published on the next start (at least once: the consumer is
 * idempotent on the event id).
 */
export class HintDrainer implements Part {
  readonly name = 'hint drainer'
  private stopped = false
  private wake: (() => void) | undefined
  /** A notify arrived while no sleep was waiting: the next sleep returns at once. */
  private signalled = false
  private loop: Promise<void> | undefined
  private backoffMs = 0
  /** Set when a stop gave up waiting: a late round must not write to a store being closed. */
  private abandoned = false

  constructor(
    private readonly deps: { store: EventStore; writer: Writer; transport: HintTransport; logger: Logger; observer: DrainerObserver },
    private readonly opts: DrainerOptions,
  ) {}

  /** Starts draining (what a previous run left in the outbox first). */
  start(): void {
    this.loop ??= this.run()
  }

  /** New entries were committed: drain now instead of at the next poll (not during a back-off). */
  notify(): void {
    if (this.backoffMs > 0) return
    if (this.wake) this.wake()
    else this.signalled = true
  }

  /**
   * Graceful stop: keeps draining for up to `flushMs` (and not past `deadline`) while the outbox has
   * entries, then stops after the round in flight and closes the transport. What is left stays in the
   * outbox for the next start.
   */
  async stop(deadline: number): Promise<void> {
    const flushUntil = Math.min(deadline, Date.now() + (this.opts.flushMs ?? 0))
    while (this.loop && Date.now() < flushUntil && this.deps.store.outbox.size() > 0) {
      this.notify()
      await new Promise(resolve => setTimeout(resolve, 25))
    }
    this.stopped = true
    this.wake?.()
    // A bus that does not answer must not hold the shutdown: publishes still pending are abandoned,
    // their entries stay in the outbox, and the next start publishes them again (at least once).
    const settled = await within(this.loop ?? Promise.resolve(), Math.min(STOP_WAIT_MS, remaining(deadline)))
    if (!settled) this.abandoned = true
    const closing = this.deps.transport.close().catch(error => this.deps.logger.warn({ err: error }, 'hint transport close failed'))
    const closed = await within(closing, Math.min(STOP_WAIT_MS, remaining(deadline)))
    if (!settled || !closed) this.deps.logger.warn({ waiting: this.deps.store.outbox.size() }, 'hint bus did not answer at shutdown; waiting hints stay in the outbox')
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      let worked = false
      try {
        worked = await this.round()
      } catch (error) {
        this.deps.logger.error({ err: error }, 'hint outbox round failed')
        this.backoff()
      }
      if (this.stopped) break
      await this.sleep(this.backoffMs > 0 ? this.backoffMs : worked ? 0 : (this.opts.idlePollMs ?? 1000))
    }
  }

  /** One batch: publish each entry, remove the confirmed ones. True when it found entries. */
  private async round(): Promise<boolean> {
    this.deps.store.refresh()
    const entries = this.deps.store.outbox.peek(this.opts.batchSize)
    if (entries.length === 0) return false
    const done: Buffer[] = []
    let failures = 0
    await Promise.all(
      entries.map(async ({ key, hint, trace }) => {
        if (!hint) return void (done.push(key), this.deps.observer.dropped())
        const started = process.hrtime.bigint()
        const span = hintPublishSpan(hint, trace, this.deps.transport.name)
        try {
          await span.run(() => this.publish(hint, traceCarrierOf(span.span)))
          done.push(key)
          this.deps.observer.published(hint, Number(process.hrtime.bigint() - started) / 1e9)
          span.end('published')
        } catch (error) {
          failures++
          this.deps.observer.failed(hint)
          span.run(() => failures === 1 && this.deps.logger.warn({ err: error, event: hint.id, kind: hint.kind }, 'hint publish failed; will retry'))
          span.end('error: publish failed', error)
        }
      }),
    )
    if (done.length > 0 && !this.abandoned) await this.deps.writer.removeHints(done)
    if (failures > 0) this.backoff()
    else this.backoffMs = 0
    return true
  }

  private publish(hint: Hint, trace: TraceCarrier | undefined): Promise<string> {
    let timer: NodeJS.Timeout | undefined
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no confirmation within ${this.opts.publishTimeoutMs} ms`)), this.opts.publishTimeoutMs)
    })
    return Promise.race([this.deps.transport.publish(hint, { trace }), timeout]).finally(() => clearTimeout(timer))
  }

  private backoff(): void {
    this.backoffMs = Math.min(this.opts.maxBackoffMs, this.backoffMs === 0 ? FIRST_BACKOFF_MS : this.backoffMs * 2)
  }

  private sleep(ms: number): Promise<void> {
    if (ms === 0 || (this.signalled && this.backoffMs === 0) || this.stopped) {
      this.signalled = false
      return new Promise(resolve => setImmediate(resolve))
    }
    return new Promise(resolve => {
      const done = () => {
        clearTimeout(timer)
        this.wake = undefined
        resolve()
      }
      const timer = setTimeout(done, ms)
      this.wake = done
    })
  }
}
