import type { Message, Subscription, Topic } from '@google-cloud/pubsub'
import { pubSubLibrary } from '@msr/hints'
import type { Logger } from '@msr/telemetry'
import { remaining, within } from '../deadline.js'
import type { Part } from '../lifecycle.js'

/** One event received from the topic. */
export interface BusMessage {
  /** The canonical JSON the origin stored. */
  data: Buffer
  attributes: Record<string, string>
  /** When the bus accepted it (epoch milliseconds). */
  publishedAt: number
  ack(): void
  nack(): void
}

/** The events topic as the replication parts see it: publish, and this replica's subscription. */
export interface ReplicationBus extends Part {
  readonly replicaId: string
  /** The subscription this replica pulls (its full id, for logs). */
  readonly subscriptionName: string
  /** Resolves with the message id once the bus has the message; rejects otherwise (after the publish timeout at most). */
  publish(data: Buffer, attributes: Record<string, string>): Promise<string>
  /** Starts the streaming pull; `onMessage` gets every message, the replica's own included. */
  subscribe(onMessage: (message: BusMessage) => void): void
  /**
   * Marks every message the topic (or the subscription) retains that was published at or after `time` as
   * not yet acknowledged, so it is delivered again; older ones as acknowledged. Call before `subscribe`.
   */
  seek(time: Date): Promise<void>
}

/** Settings of the bus, from `[replication]`. */
export interface BusOptions {
  topic: string
  /** A subscription id, or `auto`: `<topic>-<replicaId>`, created at start. */
  subscription: string
  replicaId: string
  /** Whether the replica id was made up at this start (an `auto` subscription of such an id is deleted at stop). */
  ephemeralId: boolean
  projectId?: string | undefined
  publishTimeoutMs: number
}

/** Publisher batching: at most this long before a batch goes (Pub/Sub's per-request cost, against OK latency). */
const BATCH_MS = 10
/** Messages pulled and not yet acknowledged, at most (flow control of the streaming pull). */
const MAX_UNACKED = 1000
/** Pause before pulling again after the stream failed for good. */
const REOPEN_MS = 1000
/** gRPC ALREADY_EXISTS. */
const ALREADY_EXISTS = 6
/** Pub/Sub deletes a subscription nobody pulled for this long; one day is the shortest it allows. */
const EXPIRE_AFTER_SECONDS = 86_400
/** Pub/Sub label values: at most 63 lowercase letters, digits, `_` and `-`. */
const LABEL_VALUE_LENGTH = 63

/** A replica id as a Pub/Sub label value: lowercased, other characters than letters, digits, `_` and `-` as `_`. */
export const labelValue = (id: string): string => id.toLowerCase().replace(/[^a-z0-9_-]/g, '_').slice(0, LABEL_VALUE_LENGTH)

/**
 * What an `auto` subscription is made with: labels that say whose it is (`msr-relay` = `replica`, `replica_id`),
 * and, when the id is made up at each start (Cloud Run), a one-day expiration, so one a killed replica never
 * deleted goes by itself, and a filter that keeps this replica's own messages from it (Pub/Sub acknowledges
 * them itself: 1/N of the delivered bytes saved; the emulator stores the filter and ignores it). A stable id
 * keeps Pub/Sub's default expiration (31 days: its replica comes back to the backlog) and gets no filter: its
 * replica, started again on a lost disk, must get back by the seek what it published under that id.
 */
export const autoSubscriptionOptions = (replicaId: string, ephemeralId: boolean) => ({
  ackDeadlineSeconds: 60,
  labels: { 'msr-relay': 'replica', replica_id: labelValue(replicaId) },
  // The id's characters (config: letters, digits, - _ . ~ + %) need no escaping in a filter's string.
  ...(ephemeralId && { expirationPolicy: { ttl: { seconds: EXPIRE_AFTER_SECONDS } }, filter: `NOT attributes.origin = "${replicaId}"` }),
})

/**
 * The Google Cloud Pub/Sub bus of `[replication]`: one topic, no ordering key (the store's rules do not
 * depend on order), one streaming-pull subscription per replica. Without PUBSUB_EMULATOR_HOST the client
 * library reaches Google; with it, the emulator.
 */
export const pubSubBus = (options: BusOptions, logger: Logger): ReplicationBus => {
  const client = new (pubSubLibrary().PubSub)({ ...(options.projectId && { projectId: options.projectId }) })
  const topic: Topic = client.topic(options.topic, { batching: { maxMilliseconds: BATCH_MS }, gaxOpts: { timeout: options.publishTimeoutMs } })
  const auto = options.subscription === 'auto'
  const name = auto ? `${options.topic}-${options.replicaId}` : options.subscription
  let subscription: Subscription | undefined
  let stopped = false

  /** Makes an `auto` subscription (labelled, expiring when ephemeral); a named one must exist (infra makes it), or the relay does not start. */
  const open = async (): Promise<void> => {
    const failed = (what: string) => (error: { code?: number; message?: string }) => {
      throw new Error(`[replication] ${what}: ${error.message ?? String(error)}`)
    }
    if (!auto) {
      const [exists] = await client.subscription(name).exists().catch(failed(`could not look up subscription ${name}`))
      if (!exists) throw new Error(`[replication] subscription ${name} does not exist (make it, or set subscription = "auto")`)
      return
    }
    await topic.createSubscription(name, autoSubscriptionOptions(options.replicaId, options.ephemeralId)).catch((error: { code?: number; message?: string }) => {
      if (error.code !== ALREADY_EXISTS) failed(`could not create subscription ${name} on topic ${options.topic}`)(error)
    })
  }

  const subscribe = (onMessage: (message: BusMessage) => void): void => {
    const pulled = (subscription = client.subscription(name, { flowControl: { maxMessages: MAX_UNACKED, allowExcessMessages: false }, streamingOptions: { maxStreams: 1 } }))
    pulled.on('message', (m: Message) => onMessage({ data: m.data, attributes: m.attributes, publishedAt: m.publishTime.getTime(), ack: () => m.ack(), nack: () => m.nack() }))
    // The library retries what it can; an error here closed the stream: pull again after a pause.
    pulled.on('error', (error: unknown) => {
      logger.warn({ err: error, subscription: name }, 'replication subscription stream failed; pulling again')
      setTimeout(() => void (!stopped && !pulled.isOpen && pulled.open()), REOPEN_MS).unref()
    })
  }

  const stop = async (deadline: number): Promise<void> => {
    stopped = true
    const closing = (async () => {
      await subscription?.close()
      await topic.flush()
      // A per-start id's subscription would only collect a backlog nobody reads: delete it (Cloud Run).
      if (auto && options.ephemeralId) await client.subscription(name).delete().catch((error: unknown) => logger.warn({ err: error, subscription: name }, 'could not delete the replication subscription'))
      await client.close()
    })()
    if (!(await within(closing, remaining(deadline)))) logger.warn({ subscription: name }, 'the replication bus did not close in time')
  }

  return {
    name: 'replication bus',
    replicaId: options.replicaId,
    subscriptionName: name,
    start: open,
    stop,
    publish: (data, attributes) => topic.publishMessage({ data, attributes }),
    subscribe,
    seek: async time => {
      await client.subscription(name).seek(time).catch((error: { message?: string }) => {
        throw new Error(`[replication] could not seek subscription ${name} to ${time.toISOString()}: ${error.message ?? String(error)}`)
      })
    },
  }
}
