import type { Message } from '@google-cloud/pubsub'
import { decodeHint, pubSubLibrary } from '@msr/hints'
import { tracingActive, type Logger } from '@msr/telemetry'
import type { HintReceiver, ReceivedHint } from './domain/hints.js'

/** A running pull consumer. */
export interface HintsConsumer {
  /** Stops receiving, waits for the hints being handled, flushes their acks and closes the client. */
  close(): Promise<void>
}

/** What the pull consumer needs (HINTS_SUBSCRIPTION and friends, and the shared hint handler). */
export interface HintsConsumerOptions {
  /** A subscription name, or `projects/P/subscriptions/S`. */
  subscription: string
  /** The project of a short name (unset: the client library's detection). */
  projectId?: string | undefined
  /** `host:port` of a Pub/Sub emulator. */
  emulatorHost?: string | undefined
  /** Messages handled at once (flow control). */
  maxMessages: number
  receive: HintReceiver
  logger: Logger
}

const FULL_NAME = /^projects\/([^/]+)\/subscriptions\/[^/]+$/

/** The project a subscription lives in: the one its full name carries, else the configured one. */
export const subscriptionProject = (subscription: string, projectId: string | undefined): string | undefined => FULL_NAME.exec(subscription)?.[1] ?? projectId

/**
 * Client options for an emulator: plaintext, no credentials. Naming the universe stops the auth library
 * from probing for a GCE metadata server (and warning when there is none) just to learn it.
 */
const emulatorOptions = (host: string) => ({ apiEndpoint: host, emulatorMode: true, universeDomain: 'googleapis.com' })

const decodeMessage = (message: Message): ReceivedHint => {
  const decoded = decodeHint(message.data)
  return decoded.ok ? { ok: true, hint: decoded.hint, messageId: message.id, attributes: message.attributes } : { ok: false, reason: decoded.reason, messageId: message.id }
}

/**
 * Streaming pull through the same handler as the push route: a message is acked once its hint is
 * committed (or was already seen, or is malformed) and nacked when the database fails, so Pub/Sub
 * redelivers it. Messages arriving while closing are nacked for another instance.
 */
export const startHintsConsumer = (opts: HintsConsumerOptions): HintsConsumer => {
  const projectId = subscriptionProject(opts.subscription, opts.projectId)
  // With tracing on, the library's own subscriber spans join the relay's trace (googclient_traceparent).
  const pubsub = new (pubSubLibrary().PubSub)({
    ...(projectId && { projectId }),
    ...(opts.emulatorHost && emulatorOptions(opts.emulatorHost)),
    ...(tracingActive() && { enableOpenTelemetryTracing: true }),
  })
  const subscription = pubsub.subscription(opts.subscription, { flowControl: { maxMessages: opts.maxMessages, allowExcessMessages: false } })
  const inFlight = new Set<Promise<void>>()
  let closing = false

  const handle = async (message: Message): Promise<void> => {
    if (closing) return message.nack()
    try {
      await opts.receive(decodeMessage(message), 'pull')
      message.ack()
    } catch (error) {
      opts.logger.error({ err: error, messageId: message.id }, 'hint not applied; nacked for redelivery')
      message.nack()
    }
  }
  const onMessage = (message: Message): void => {
    const done: Promise<void> = handle(message).finally(() => inFlight.delete(done))
    inFlight.add(done)
  }
  subscription.on('message', onMessage)
  subscription.on('error', error => opts.logger.error({ err: error, subscription: opts.subscription }, 'hint subscription error'))

  const shutdown = async (): Promise<void> => {
    closing = true
    await Promise.allSettled([...inFlight])
    // Closing the subscription first: removing the last listener would start a close nobody awaits.
    await subscription.close()
    subscription.removeListener('message', onMessage)
    await pubsub.close()
  }
  let closed: Promise<void> | undefined
  return { close: () => (closed ??= shutdown()) }
}
