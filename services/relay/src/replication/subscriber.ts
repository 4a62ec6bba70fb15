import { isEphemeral, prefixOf, type Reason } from '@msr/nostr'
import type { Logger } from '@msr/telemetry'
import type { VerifierPool } from '@msr/workers'
import type { Span } from '@opentelemetry/api'
import { remaining, sleep } from '../deadline.js'
import type { Part } from '../lifecycle.js'
import { acceptUnverified, isExpired, isInvalid, precheckReplicated, verifySignature, type ValidEvent } from '../pipeline/validate.js'
import type { Writer } from '../pipeline/writer.js'
import { annotate, replicationApplySpan } from '../tracing.js'
import type { BusMessage, ReplicationBus } from './bus.js'
import { CatchUp } from './catch-up.js'
import type { ReplicationObserver } from './gate.js'

/** What the subscriber is built from. */
export interface SubscriberDeps {
  bus: ReplicationBus
  writer: Writer
  verifier: VerifierPool
  /** Check signatures again (`[replication] verify`). */
  verify: boolean
  /** Delivers an ephemeral event to local live subscriptions (stored ones fan out from the writer). */
  fanOutEphemeral: (valid: ValidEvent) => void
  logger: Logger
  observer: ReplicationObserver
  /** Unix seconds. */
  now: () => number
  /** `[replication] catch_up_quiet`: how long no backlog message may arrive before the replica is caught up. */
  catchUpQuietMs: number
}

/** How long a stop waits for the messages being applied. */
const STOP_WAIT_MS = 2000

/**
 * Applies the other replicas' events: each message from this replica's subscription → its own dropped →
 * id and shape → signature (on the verifier pool, unless `verify` is off) → the writer's replicated apply
 * (store rules only) → acknowledged once committed. Fan-out of what was stored follows the commit (the
 * writer's listener); an ephemeral event is fanned out only. A failed write is not acknowledged, so the bus
 * delivers it again; an invalid event is acknowledged and counted (the origin should never have sent it).
 */
export class ReplicationSubscriber implements Part {
  readonly name = 'replication subscriber'
  private applying = 0
  /** When this replica has caught up with the topic (readiness). */
  readonly catchUp: CatchUp
  /** When this run started pulling (epoch ms): its own messages published since are echoes of its commits. */
  private startedAt = 0

  constructor(private readonly deps: SubscriberDeps) {
    const { logger, observer } = deps
    this.catchUp = new CatchUp(
      { applying: () => this.applying, logger, onCatchingUp: backlog => observer.catchingUp(backlog), onCaughtUp: (seconds, backlog) => observer.caughtUp(seconds, backlog) },
      deps.catchUpQuietMs,
    )
  }

  start(): void {
    this.startedAt = Date.now()
    this.catchUp.start(this.startedAt)
    this.deps.bus.subscribe(message => void this.receive(message))
  }

  /** The bus closes the stream; this waits (briefly) for the messages being applied. */
  async stop(deadline: number): Promise<void> {
    this.catchUp.stop()
    const end = Math.min(deadline, Date.now() + STOP_WAIT_MS)
    while (this.applying > 0 && remaining(end) > 0) await sleep(25)
  }

  private async receive(message: BusMessage): Promise<void> {
    const { bus, observer } = this.deps
    this.catchUp.received(message.publishedAt)
    // Its own echoes are dropped; its own messages from before this start are applied like any other: a stable
    // replica id whose disk was lost gets back, by the seek, what it published after its newest snapshot.
    if (message.attributes.origin === bus.replicaId && message.publishedAt >= this.startedAt) return (message.ack(), observer.received('own'))
    this.applying++
    const span = replicationApplySpan(message.attributes)
    try {
      const outcome = await span.run(() => this.apply(message, span.span))
      span.end(outcome === 'retry' ? 'error: not stored, delivered again' : outcome)
      if (outcome === 'retry') return message.nack()
      message.ack()
      observer.received(outcome, Math.max(0, Date.now() - message.publishedAt) / 1000)
    } catch (error) {
      span.end('error: not applied, delivered again', error)
      message.nack()
      observer.received('failed')
      this.deps.logger.error({ err: error }, 'replicated event could not be applied; the bus delivers it again')
    } finally {
      this.applying--
    }
  }

  /** Checks and applies one message; `span` (its apply span) gets the event id and goes with the write (its hints continue the trace). */
  private async apply(message: BusMessage, span: Span): Promise<'stored' | 'duplicate' | 'rejected' | 'ephemeral' | 'invalid' | 'retry'> {
    const checked = precheckReplicated(parse(message.data))
    annotate(span, () => ({ 'nostr.event_id': isInvalid(checked) ? (checked.eventId ?? '') : checked.event.id }))
    if (isInvalid(checked)) return this.invalid(checked.eventId, checked.reason)
    if (isExpired(checked.event, this.deps.now())) return 'rejected' // expired on its way: served nowhere, as everywhere
    const valid = this.deps.verify ? await verifySignature(this.deps.verifier, checked) : acceptUnverified(checked, 'replica, verify off')
    if (isInvalid(valid)) return prefixOf(valid.reason) === 'error' ? 'retry' : this.invalid(valid.eventId, valid.reason)
    if (isEphemeral(valid.event.kind)) return (this.deps.fanOutEphemeral(valid), 'ephemeral')
    const outcome = await this.deps.writer.submit(valid.event, valid.json, span, 'replica')
    if (outcome.status !== 'rejected') return outcome.status
    if (prefixOf(outcome.reason) === 'error') {
      this.deps.observer.received('failed')
      return 'retry'
    }
    return 'rejected' // refused by the store's rules (deleted, an older version): the same on every replica
  }

  private invalid(eventId: string | undefined, reason: Reason): 'invalid' {
    this.deps.logger.warn({ event: eventId, reason: prefixOf(reason) }, 'invalid event from the replication topic; dropped')
    return 'invalid'
  }
}

const parse = (data: Buffer): unknown => {
  try {
    return JSON.parse(data.toString('utf8'))
  } catch {
    return undefined
  }
}
