import type { Client } from '../connection/client.js'
import type { LiveIndex } from '../subscriptions/live-index.js'
import type { NostrEvent } from '@msr/nostr'
import { liveFrame, type LiveFrame, type Subscription } from '../subscriptions/subscription.js'
import { fanOutSpan } from '../tracing.js'
import type { Committed } from './writer.js'

/** Deliveries made in one event-loop turn before the rest waits for the next, so sockets flush between. */
const DELIVERIES_PER_TURN = 16384

/**
 * Events waiting for fan-out above which a connection that publishes stops being read, until the wait is back
 * under FANOUT_RESUME: OK is sent at commit, so without this a publisher outrunning the fan-out (many
 * subscribers) would grow the queue, its memory and every delivery's delay without bound.
 */
export const FANOUT_HOLD = 1024
const FANOUT_RESUME = 256

/**
 * Delivers committed (and ephemeral) events to every live subscription that matches them, in commit
 * order. The event JSON was serialized once at ingest; each frame only wraps it with the
 * subscription's precomputed prefix and the WebSocket header, once per subscription id: subscriptions
 * on different connections with the same id share the frame. A large batch is spread over several
 * turns so that the frames of one turn stay bounded and clients drain in between; publishers wait (their
 * sockets are not read) while the queue is long.
 */
export class FanOut {
  private queue: Committed[] = []
  private scheduled = false
  /** The matching subscriptions of the event being delivered (reused: no array per event). */
  private readonly matched: Subscription[] = []
  /** The frames of the event being delivered, by subscription id (cleared per event). */
  private readonly frames = new Map<string, LiveFrame>()
  /** Publishing connections not read until the queue drains. */
  private readonly held = new Set<Client>()
  /** Events queued so far, and delivered so far (counts, so a waiter needs no mark in the queue). */
  private queued = 0
  private delivered = 0
  /** Callbacks waiting for the delivery of what was queued when they came (in order of `until`). */
  private waiters: { until: number; then: () => void }[] = []

  constructor(
    private readonly index: LiveIndex,
    private readonly onDelivered: (deliveries: number) => void,
    /** Whether a subscription's connection may see the event (private kinds). */
    private readonly visible: (subscription: Subscription, event: NostrEvent) => boolean,
  ) {}

  /** Queues events for delivery, in order. */
  enqueue(events: readonly Committed[]): void {
    this.queue.push(...events)
    this.queued += events.length
    if (!this.scheduled) {
      this.scheduled = true
      setImmediate(() => this.run())
    }
  }

  /** Resolves once every event queued so far has been delivered; undefined when none waits. */
  caughtUp(): Promise<void> | undefined {
    if (this.delivered === this.queued) return undefined
    return new Promise(then => this.waiters.push({ until: this.queued, then }))
  }

  /** Called for each EVENT received: while the queue is long, the connection's later messages wait for it to drain. */
  throttle(client: Client): void {
    if (this.queue.length <= FANOUT_HOLD || this.held.has(client)) return
    this.held.add(client)
    client.hold('fanout')
  }

  private run(): void {
    let deliveries = 0
    let taken = 0
    while (taken < this.queue.length && deliveries < DELIVERIES_PER_TURN) {
      const { event, json, span } = this.queue[taken++] as Committed
      const before = deliveries
      const traced = span && fanOutSpan(span)
      for (const subscription of this.index.matching(event, this.matched)) {
        if (!this.visible(subscription, event) || subscription.sentBeforeFanOut?.delete(event.id)) continue
        let frame = this.frames.get(subscription.id)
        if (!frame) this.frames.set(subscription.id, (frame = liveFrame(subscription.framePrefix, json)))
        if (subscription.held) subscription.held.push({ id: event.id, frame })
        else subscription.client.sendLive(frame)
        deliveries++
      }
      this.frames.clear()
      this.matched.length = 0
      traced?.(deliveries - before)
    }
    this.queue = this.queue.slice(taken)
    this.delivered += taken
    if (this.held.size > 0 && this.queue.length <= FANOUT_RESUME) this.resume()
    this.onDelivered(deliveries)
    if (this.waiters.length > 0) this.wake()
    this.scheduled = this.queue.length > 0
    if (this.scheduled) setImmediate(() => this.run())
  }

  private wake(): void {
    const due = this.waiters.findIndex(w => w.until > this.delivered)
    const woken = due < 0 ? this.waiters : this.waiters.slice(0, due)
    this.waiters = due < 0 ? [] : this.waiters.slice(due)
    for (const { then } of woken) then()
  }

  private resume(): void {
    for (const client of this.held) client.release('fanout')
    this.held.clear()
  }
}
