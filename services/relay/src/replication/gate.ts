import type { Reason } from '@msr/nostr'
import type { Logger } from '@msr/telemetry'
import { acceptUnverified, isInvalid, precheckStored } from '../pipeline/validate.js'
import type { Committed } from '../pipeline/writer.js'
import type { ReplicationEntry, StoreOutcome } from '../store/event-store.js'
import type { PublishAcks } from './acks.js'
import type { ReplicationBus } from './bus.js'

/** What the replication parts report to metrics. */
export interface ReplicationObserver {
  /** The bus confirmed one of this replica's events, `seconds` after its publish started. */
  published(seconds: number): void
  publishFailed(): void
  /** An EVENT's OK went out without the bus's confirmation, after ack_timeout. */
  okTimedOut(mode: 'refuse' | 'local'): void
  /** The bus is failing (publishes fail or go unconfirmed past ack_timeout) or works again. */
  outage(on: boolean): void
  /** A message from the topic, by what became of it; `lagSeconds` from its publication to its commit here. */
  received(outcome: 'own' | 'stored' | 'duplicate' | 'rejected' | 'ephemeral' | 'invalid' | 'failed', lagSeconds?: number): void
  /** Not caught up with the topic yet (not ready): `backlog` messages from before the start received so far. */
  catchingUp(backlog: number): void
  /** Caught up (ready), `seconds` after the subscriber started, having received `backlog` messages from before it. */
  caughtUp(seconds: number, backlog: number): void
}

/** How `[replication]` answers an EVENT. */
export interface GateOptions {
  ackTimeoutMs: number
  onBusOutage: 'refuse' | 'local'
}

/**
 * Whether the bus works, seen from this replica: down from a failed publish or an OK that waited past
 * ack_timeout, up again at the next confirmation. Each change is logged once and shown by a gauge.
 */
export class BusHealth {
  private down = false

  constructor(private readonly deps: { logger: Logger; observer: ReplicationObserver; waiting: () => number }) {}

  failing(why: string, context: Record<string, unknown> = {}): void {
    if (this.down) return
    this.down = true
    this.deps.observer.outage(true)
    this.deps.logger.warn({ ...context, waiting: this.deps.waiting() }, `replication bus outage: ${why}; events stay in the outbox and are retried`)
  }

  confirmed(): void {
    if (!this.down) return
    this.down = false
    this.deps.observer.outage(false)
    this.deps.logger.info({ waiting: this.deps.waiting() }, 'replication bus confirms publishes again')
  }
}

/** The refusal after ack_timeout under "refuse": the event is kept and will be published, so a retry is safe. */
export const notReplicated = (ms: number): Reason =>
  `error: not yet replicated: the replication bus did not confirm this event within ${ms / 1000} s; it is kept here and will be published when the bus answers, send it again later`

/** What the gate is built from. */
export interface GateDeps {
  acks: PublishAcks
  bus: ReplicationBus
  health: BusHealth
  logger: Logger
  observer: ReplicationObserver
  /** Delivers events to local live subscriptions (the relay's fan-out: private kinds and NIP-42 apply there). */
  fanOut: (events: readonly Committed[]) => void
  /** Whether the event is stored now (an inherited entry's event may have been replaced or deleted since). */
  isStored: (id: string) => boolean
  /** Unix seconds. */
  now: () => number
}

/**
 * Where `[replication]` meets the EVENT path: an OK waits for the bus's acknowledgment of the event (a
 * duplicate of a pending event too), and so does its local fan-out; events from other replicas fan out
 * as soon as they are committed; ephemeral events are published best effort. Entries the outbox held
 * before this start (inherited) have no OK and no fan-out waiting: each is fanned out once published.
 */
export class ReplicationGate {
  /** This replica's committed events whose live fan-out has not run yet (it waits for the bus). */
  private readonly undelivered = new Set<string>()
  /** Ids of inherited entries not yet published (see `inherit`). */
  private readonly inherited = new Set<string>()

  constructor(
    private readonly deps: GateDeps,
    private readonly options: GateOptions,
  ) {}

  /**
   * The outcome to answer once the bus confirmed the event, or ack_timeout passed: then "refuse" answers
   * `error:` (the event stays committed and queued), "local" the local outcome.
   */
  async confirm(id: string, outcome: StoreOutcome): Promise<StoreOutcome> {
    if (outcome.status === 'rejected' || !this.deps.acks.isPending(id)) return outcome
    if ((await this.deps.acks.wait(id, this.options.ackTimeoutMs)) === 'published') return outcome
    this.deps.observer.okTimedOut(this.options.onBusOutage)
    this.deps.health.failing(`no publish acknowledgment within ack_timeout (${this.options.ackTimeoutMs / 1000} s)`, { event: id, answered: this.options.onBusOutage })
    return this.options.onBusOutage === 'local' ? outcome : { status: 'rejected', reason: notReplicated(this.options.ackTimeoutMs) }
  }

  /**
   * Fans out a committed batch: another replica's events at once, this replica's once the bus confirmed each
   * (under "local", at ack_timeout at the latest). Their acknowledgments are tracked from the commit (by the
   * listener `replicationOf` adds first).
   */
  deliver(batch: Committed[]): void {
    const { fanOut } = this.deps
    const now = batch.filter(c => c.source === 'replica')
    if (now.length > 0) fanOut(now)
    const wait = this.options.onBusOutage === 'local' ? this.options.ackTimeoutMs : Infinity
    for (const c of batch) {
      if (c.source === 'replica') continue
      const { id } = c.event
      this.undelivered.add(id)
      void this.deps.acks.wait(id, wait).then(() => {
        fanOut([c])
        // The fan-out runs on the next turn (setImmediate, queued first): until then a backfill that sends
        // the event still marks it.
        setImmediate(() => this.undelivered.delete(id))
      })
    }
  }

  /**
   * An entry the outbox held when the drainer started: left by an earlier run (a restart) or queued again
   * by a restore. Nobody's OK or fan-out waits on it, so its live fan-out follows its publish (`published`);
   * until then a backfill that sends it marks it, as for this run's events.
   */
  inherit(id: string): void {
    this.inherited.add(id)
    this.undelivered.add(id)
  }

  /** The bus confirmed an entry: an inherited one is fanned out now, when still stored and not expired. */
  published(entry: ReplicationEntry): void {
    if (!this.inherited.delete(entry.id)) return
    const checked = precheckStored(parse(entry.json), this.deps.now())
    if (!isInvalid(checked) && this.deps.isStored(entry.id)) this.deps.fanOut([acceptUnverified(checked, 'own replication outbox')])
    setImmediate(() => this.undelivered.delete(entry.id)) // after the fan-out, as in deliver
  }

  /** Whether this event's live fan-out is still to come (see RequestDeps.fanOutPending). */
  fanOutPending(id: string): boolean {
    return this.undelivered.has(id)
  }

  /** Publishes an ephemeral event for the other replicas' subscribers; a failure is counted, not retried. */
  publishEphemeral(json: Buffer, kind: number): void {
    this.deps.bus.publish(json, { origin: this.deps.bus.replicaId, kind: String(kind) }).catch((error: unknown) => {
      this.deps.observer.publishFailed()
      this.deps.logger.debug({ err: error, kind }, 'ephemeral event not replicated')
    })
  }
}

const parse = (json: Buffer): unknown => {
  try {
    return JSON.parse(json.toString('utf8'))
  } catch {
    return undefined
  }
}
