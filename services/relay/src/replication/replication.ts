import { randomBytes } from 'node:crypto'
import type { Logger } from '@msr/telemetry'
import type { VerifierPool } from '@msr/workers'
import type { RelayConfig } from '../config.js'
import type { Part } from '../lifecycle.js'
import type { Committed, Writer } from '../pipeline/writer.js'
import type { EventStore } from '../store/event-store.js'
import { PublishAcks } from './acks.js'
import { pubSubBus, type ReplicationBus } from './bus.js'
import { ReplicationDrainer } from './drainer.js'
import { BusHealth, ReplicationGate, type ReplicationObserver } from './gate.js'
import type { CatchUp } from './catch-up.js'
import { ReplicationSubscriber } from './subscriber.js'

/** A publish the bus has not confirmed within this is failed by the client library, and retried from the outbox. */
const PUBLISH_TIMEOUT_MS = 10_000

/** `[replication]` wired: the gate the EVENT path and fan-out go through, and the parts to start, in order. */
export interface Replication {
  gate: ReplicationGate
  bus: ReplicationBus
  /** Whether the replica has caught up with the topic since it started (readiness; snapshots wait for it). */
  catchUp: CatchUp
  /** The outbox drainer and the subscriber, to start after the bus (and after a bootstrap's seek). */
  parts: Part[]
}

/** What replication is built from; `fanOut` is called only once messages arrive or publishes are confirmed (after the relay exists). */
export interface ReplicationDeps {
  store: EventStore
  writer: Writer
  verifier: VerifierPool
  logger: Logger
  observer: ReplicationObserver
  /** Delivers events to local live subscriptions (the relay's fan-out). */
  fanOut: (events: readonly Committed[]) => void
  /** The bus (tests inject one); default: Google Cloud Pub/Sub (or its emulator, by PUBSUB_EMULATOR_HOST). */
  bus?: ReplicationBus
}

/**
 * The replication parts `[replication]` asks for, or undefined when its topic is empty (then nothing here is
 * created and no connection is opened). Client events are queued in the replication outbox from now on.
 * Call it before anything else listens to the writer's commits.
 */
export const replicationOf = (config: RelayConfig['replication'], deps: ReplicationDeps): Replication | undefined => {
  if (config.topic === '') return undefined
  const replicaId = config.replica_id || randomBytes(6).toString('hex')
  const bus =
    deps.bus ??
    pubSubBus(
      {
        topic: config.topic,
        subscription: config.subscription,
        replicaId,
        ephemeralId: config.replica_id === '',
        projectId: config.project_id || undefined,
        publishTimeoutMs: PUBLISH_TIMEOUT_MS,
      },
      deps.logger,
    )
  const { store, writer, logger, observer } = deps
  observer.catchingUp(0) // not ready until caught up: the restore and the seek come first
  store.replicating = true
  const acks = new PublishAcks()
  const health = new BusHealth({ logger, observer, waiting: () => store.replication.size() })
  const now = () => Math.floor(Date.now() / 1000)
  const gate = new ReplicationGate(
    { acks, bus, health, logger, observer, fanOut: deps.fanOut, isStored: id => store.get(id) !== undefined, now },
    { ackTimeoutMs: config.ack_timeout, onBusOutage: config.on_bus_outage },
  )
  const drainer = new ReplicationDrainer({ store, writer, bus, acks, gate, health, logger, observer }, config.shutdown_drain)
  // Before any other listener (the relay's fan-out) and before any OK: every client event is tracked from its commit.
  writer.onCommitted(batch => {
    const mine = batch.filter(c => c.source !== 'replica')
    for (const c of mine) acks.track(c.event.id)
    if (mine.length > 0) drainer.notify()
  })
  const subscriber = new ReplicationSubscriber({
    bus,
    writer,
    verifier: deps.verifier,
    verify: config.verify,
    fanOutEphemeral: valid => deps.fanOut([valid]),
    logger,
    observer,
    now,
    catchUpQuietMs: config.catch_up_quiet,
  })
  return { gate, bus, catchUp: subscriber.catchUp, parts: [drainer, subscriber] }
}
