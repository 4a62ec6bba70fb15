import { traceCarrierOf, type Logger } from '@msr/telemetry'
import { remaining, sleep, within } from '../deadline.js'
import type { Part } from '../lifecycle.js'
import type { Writer } from '../pipeline/writer.js'
import type { EventStore, ReplicationEntry } from '../store/event-store.js'
import { replicationPublishSpan } from '../tracing.js'
import type { PublishAcks } from './acks.js'
import type { ReplicationBus } from './bus.js'
import type { BusHealth, ReplicationGate, ReplicationObserver } from './gate.js'

/** Publishes in flight at once (the client library batches them every 10 ms). */
const MAX_IN_FLIGHT = 1000
const FIRST_BACKOFF_MS = 250
const MAX_BACKOFF_MS = 10_000
/** Wait when nothing signalled (a safety net: commits notify). */
const IDLE_POLL_MS = 1000
/** How long a stop waits for the publishes in flight once the drain is over. */
const STOP_WAIT_MS = 1500

/**
 * Publishes the replication outbox to the events topic, oldest first and many at once (no ordering key),
 * reports each acknowledgment (the OKs and fan-out waiting on it go on; an entry inherited from before
 * this start is fanned out by the gate then), and removes what the bus
 * confirmed through the writer. A failed publish leaves its entry where it is; after a back-off (250 ms
 * doubling to 10 s, ±25 %) the outbox is read again from its start, so an entry is published at least once,
 * after a restart too. Other replicas drop duplicates by event id.
 */
export class ReplicationDrainer implements Part {
  readonly name = 'replication drainer'
  /** Keys (hex) published or being published and not yet removed: not to be sent again. */
  private readonly inFlight = new Set<string>()
  /** The last key sent; the next read starts after it (until a failure sends the reader back to the start). */
  private cursor: Buffer | undefined
  private confirmed: Buffer[] = []
  private removing: Promise<void> | undefined
  /** Publishes not yet answered by the bus. */
  private publishing = 0
  private backoffMs = 0
  private backingOff = false
  /** Stopping: publishing what is left before the stop. */
  private draining = false
  private failedRound = false
  private stopped = false
  /** Set once stopped: a publish answered later must not write to a store being closed. */
  private closed = false
  private wake: (() => void) | undefined
  private signalled = false
  private loop: Promise<void> | undefined

  constructor(
    private readonly deps: {
      store: EventStore
      writer: Writer
      bus: ReplicationBus
      acks: PublishAcks
      gate: ReplicationGate
      health: BusHealth
      logger: Logger
      observer: ReplicationObserver
    },
    /** `[replication] shutdown_drain`: how long a stop keeps publishing until the outbox is empty. */
    private readonly drainMs = 0,
  ) {}

  /**
   * Starts draining; what the outbox holds already (an earlier run's, a restore's) is tracked first, so a
   * duplicate EVENT of it waits for its acknowledgment too, and handed to the gate, which fans it out once published.
   */
  start(): void {
    if (this.loop) return
    for (const id of this.deps.store.replication.ids()) {
      this.deps.acks.track(id)
      this.deps.gate.inherit(id)
    }
    this.loop = this.run()
  }

  /** New entries were committed: read them now (not during a back-off). */
  notify(): void {
    if (this.backingOff) return
    if (this.wake) this.wake()
    else this.signalled = true
  }

  /**
   * Drains: keeps publishing (a back-off cut short) until the outbox is empty or `drainMs` (and the deadline)
   * passed; then stops reading it, gives the publishes in flight a moment, removes what they confirmed. What
   * is left is logged, and published at the next start on the same disk.
   */
  async stop(deadline: number): Promise<void> {
    const started = Date.now()
    const before = this.outboxSize()
    const drainEnd = Math.min(deadline, started + this.drainMs)
    this.draining = true
    if (this.backingOff) this.wake?.() // try now: the bus may be back
    while (this.outboxSize() > 0 && Date.now() < drainEnd) await sleep(25)
    this.stopped = true
    this.wake?.()
    await within(this.loop ?? Promise.resolve(), remaining(deadline))
    const end = Math.min(deadline, Date.now() + STOP_WAIT_MS)
    while (this.publishing > 0 && Date.now() < end) await sleep(25)
    await within(this.removeConfirmed(), remaining(deadline))
    this.closed = true
    const left = this.outboxSize()
    const figures = { atStop: before, left, seconds: (Date.now() - started) / 1000 }
    if (left > 0) this.deps.logger.warn(figures, 'replication outbox not empty at stop; what is left is published at the next start on this disk')
    else if (before > 0) this.deps.logger.info(figures, 'replication outbox drained at stop')
  }

  private outboxSize(): number {
    this.deps.store.refresh()
    return this.deps.store.replication.size()
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      if (this.failedRound) {
        this.failedRound = false
        this.backoffMs = Math.min(MAX_BACKOFF_MS, this.backoffMs === 0 ? FIRST_BACKOFF_MS : this.backoffMs * 2)
        this.backingOff = true
        // While draining at stop, retry at the first step: the time left is short.
        await this.sleep((this.draining ? FIRST_BACKOFF_MS : this.backoffMs) * (0.75 + Math.random() / 2)) // jittered: replicas that failed together do not retry together
        this.backingOff = false
        this.cursor = undefined // read again from the oldest entry, skipping those in flight
        continue
      }
      const read = this.round()
      await this.sleep(read > 0 ? 0 : IDLE_POLL_MS)
    }
  }

  /** Sends what the outbox holds past the cursor (but what is in flight), up to the in-flight bound; returns how many entries it read. */
  private round(): number {
    const room = MAX_IN_FLIGHT - this.inFlight.size
    if (room <= 0) return 0
    this.deps.store.refresh()
    const entries = this.deps.store.replication.peek(room, this.cursor)
    for (const entry of entries) {
      this.cursor = entry.key
      if (!this.inFlight.has(entry.key.toString('hex'))) this.send(entry)
    }
    return entries.length
  }

  private send(entry: ReplicationEntry): void {
    const key = entry.key.toString('hex')
    this.inFlight.add(key)
    this.deps.acks.track(entry.id)
    const started = process.hrtime.bigint()
    this.publishing++
    const span = replicationPublishSpan(entry)
    // The publish span's context (or, untraced here, the EVENT's as the outbox kept it) travels with the message.
    const traceparent = traceCarrierOf(span.span)?.traceparent ?? entry.traceparent
    const attributes = { origin: this.deps.bus.replicaId, kind: String(entry.kind), ...(traceparent && { traceparent }) }
    this.deps.bus.publish(entry.json, attributes).then(
      () => {
        span.end('published')
        this.publishing--
        this.deps.acks.published(entry.id)
        this.deps.gate.published(entry)
        this.deps.observer.published(Number(process.hrtime.bigint() - started) / 1e9)
        this.backoffMs = 0
        this.deps.health.confirmed()
        if (this.closed) return // left in the outbox: published again at the next start (a duplicate, dropped by id)
        this.confirmed.push(entry.key)
        void this.removeConfirmed()
      },
      (error: unknown) => {
        span.end('error: publish failed', error)
        this.publishing--
        this.inFlight.delete(key)
        this.deps.observer.publishFailed()
        this.deps.health.failing('a publish failed', { err: error, event: entry.id, kind: entry.kind })
        this.failedRound = true
        if (!this.backingOff) this.wake?.()
      },
    )
  }

  /** Removes confirmed entries through the writer, one transaction at a time; resolves once none is left. */
  private async removeConfirmed(): Promise<void> {
    if (this.removing) return this.removing
    this.removing = (async () => {
      while (this.confirmed.length > 0) {
        const keys = this.confirmed
        this.confirmed = []
        try {
          await this.deps.writer.removeReplicated(keys)
          keys.forEach(k => this.inFlight.delete(k.toString('hex')))
          if (!this.stopped) this.notify() // room in flight again
        } catch (error) {
          // Left in the outbox and in flight: published again after a restart (a duplicate, dropped by id).
          this.deps.logger.error({ err: error, entries: keys.length }, 'could not remove confirmed replication entries')
        }
      }
    })().finally(() => (this.removing = undefined))
    return this.removing
  }

  private sleep(ms: number): Promise<void> {
    if (this.stopped) return Promise.resolve()
    if (ms === 0 || (this.signalled && !this.backingOff)) {
      this.signalled = false
      return new Promise(resolve => setImmediate(resolve))
    }
    return new Promise(resolve => {
      const done = (): void => {
        clearTimeout(timer)
        this.wake = undefined
        resolve()
      }
      const timer = setTimeout(done, ms)
      this.wake = done
    })
  }
}
