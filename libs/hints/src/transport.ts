/**
 * The two ways a hint reaches the mailbox (DESIGN.md §5): Google Cloud Pub/Sub, or the local transport
 * that POSTs the same push envelope straight to the mailbox's push endpoint.
 */
import type { ClientConfig, Topic } from '@google-cloud/pubsub'
import { encodePushEnvelope } from './envelope.js'
import { DEFAULT_TOPICS, encodeHint, hintAttributes, orderingKeyOf, topicOf, type Hint, type HintTrace } from './hint.js'
import { pubSubLibrary } from './pubsub-library.js'

/** Carries hints to the bus; the relay's outbox drainer retries what it rejects. */
export interface HintTransport {
  readonly name: 'local' | 'pubsub'
  /**
   * Resolves with the message id once the bus has the message; rejects (with a message naming the cause,
   * never a token) otherwise. `trace` goes into the message attributes (and the local transport's headers).
   */
  publish(hint: Hint, opts?: { trace?: HintTrace | undefined }): Promise<string>
  /** Flushes what is in flight and releases connections. */
  close(): Promise<void>
}

/** Why a call failed, in one line: undici hides the socket error in `cause`. */
const causeOf = (err: unknown): string => {
  if (!(err instanceof Error)) return String(err)
  const cause = err.cause as { code?: string; message?: string } | undefined
  // google-gax appends every retried attempt's error (" : Previous errors : [...]"): the first line says it.
  return cause?.code ?? cause?.message ?? err.message.split(' : Previous errors')[0] ?? err.message
}

/** The URL without credentials or query string, where a push token is often carried. */
const safeUrl = (raw: string): string => {
  try {
    const url = new URL(raw)
    return `${url.origin}${url.pathname}`
  } catch {
    return 'an invalid URL'
  }
}

/** Publishes are tracked so close() can wait for them, and refused once it has been called. */
const inFlight = () => {
  const pending = new Set<Promise<unknown>>()
  let closed = false
  return {
    run<T>(name: string, work: () => Promise<T>): Promise<T> {
      if (closed) return Promise.reject(new Error(`${name} transport is closed`))
      const p = work()
      pending.add(p)
      const forget = (): void => void pending.delete(p)
      p.then(forget, forget)
      return p
    },
    async settle(): Promise<void> {
      closed = true
      await Promise.allSettled([...pending])
    },
  }
}

/** POSTs each hint as a Pub/Sub push envelope to the mailbox (for `npm start` and tests). */
export const createLocalTransport = (opts: { pushUrl: string; token?: string; timeoutMs?: number; subscription?: string }): HintTransport => {
  const subscription = opts.subscription ?? 'projects/local/subscriptions/mailbox-hints'
  const timeoutMs = opts.timeoutMs ?? 10_000
  const target = `push to ${safeUrl(opts.pushUrl)}`
  const headers = { 'content-type': 'application/json', ...(opts.token && { authorization: `Bearer ${opts.token}` }) }
  const calls = inFlight()

  const post = async (hint: Hint, trace: HintTrace | undefined): Promise<string> => {
    const envelope = encodePushEnvelope({
      data: encodeHint(hint),
      attributes: hintAttributes(hint, trace),
      messageId: hint.id,
      orderingKey: orderingKeyOf(hint),
      subscription,
    })
    const signal = AbortSignal.timeout(timeoutMs)
    // The trace context as headers too: the receiving HTTP span joins the hint's trace.
    const response = await fetch(opts.pushUrl, { method: 'POST', headers: { ...headers, ...trace }, body: JSON.stringify(envelope), signal }).catch((err: unknown) => {
      throw new Error(`${target}: ${signal.aborted ? `no answer within ${timeoutMs} ms` : causeOf(err)}`)
    })
    await response.arrayBuffer().catch(() => undefined) // read to the end so the connection is reused
    if (!response.ok) throw new Error(`${target}: HTTP ${response.status}`)
    return hint.id
  }

  return {
    name: 'local',
    publish: (hint, { trace } = {}) => calls.run('local', () => post(hint, trace)),
    close: () => calls.settle(),
  }
}

/** What the Pub/Sub transport is made with. */
export interface PubSubTransportOptions {
  projectId?: string
  topics?: { group: string; dm: string }
  emulatorHost?: string
  maxDelayMs?: number
  timeoutMs?: number
  /** The longest wait between the gRPC channel's attempts to reconnect while the bus is unreachable. */
  maxReconnectBackoffMs?: number
  /** The client library's own publish spans (children of the active span, context in `googclient_traceparent`). */
  openTelemetry?: boolean
}

/**
 * The client's options. Without a cap, gRPC's reconnect backoff grows to 120 s during an outage: measured,
 * the first hint left the outbox 70 s after a 180 s outage of the emulator ended, whatever the outbox's own
 * retries did (every publish fails at once until the channel's next attempt).
 */
export const pubSubClientOptions = (opts: PubSubTransportOptions): ClientConfig & { 'grpc.max_reconnect_backoff_ms'?: number } => ({
  ...(opts.projectId !== undefined && { projectId: opts.projectId }),
  ...(opts.openTelemetry && { enableOpenTelemetryTracing: true }),
  // Naming the universe keeps the auth library from probing for a GCE metadata server on the emulator.
  ...(opts.emulatorHost !== undefined && { apiEndpoint: opts.emulatorHost, emulatorMode: true, universeDomain: 'googleapis.com' }),
  ...(opts.maxReconnectBackoffMs !== undefined && { 'grpc.max_reconnect_backoff_ms': opts.maxReconnectBackoffMs }),
})

/**
 * Publishes to one Pub/Sub topic per hint kind, ordered by group. Topics are made by infra, not here:
 * a missing one rejects the publish.
 */
export const createPubSubTransport = (opts: PubSubTransportOptions = {}): HintTransport => {
  // Without emulatorHost the library itself honours PUBSUB_EMULATOR_HOST.
  const client = new (pubSubLibrary().PubSub)(pubSubClientOptions(opts))
  const names = opts.topics ?? DEFAULT_TOPICS
  const topics = new Map<string, Topic>()
  const topicNamed = (name: string): Topic => {
    let topic = topics.get(name)
    // The library's own total timeout (retries included) is 600 s: an unreachable endpoint kept every
    // publish pending that long, piling up behind the outbox's own retries. It gives up with the caller.
    const gaxOpts = { timeout: opts.timeoutMs ?? 10_000 }
    if (!topic) topics.set(name, (topic = client.topic(name, { messageOrdering: true, batching: { maxMilliseconds: opts.maxDelayMs ?? 10 }, gaxOpts })))
    return topic
  }
  const calls = inFlight()

  const send = async (hint: Hint, trace: HintTrace | undefined): Promise<string> => {
    const name = topicOf(hint, names)
    const topic = topicNamed(name)
    const orderingKey = orderingKeyOf(hint)
    try {
      return await topic.publishMessage({ data: encodeHint(hint), attributes: hintAttributes(hint, trace), ...(orderingKey !== undefined && { orderingKey }) })
    } catch (err) {
      // A failed ordered publish pauses its key; the outbox retries in order, so let the retry through.
      if (orderingKey !== undefined) topic.resumePublishing(orderingKey)
      throw new Error(`publish to topic ${name}: ${causeOf(err)}`)
    }
  }

  return {
    name: 'pubsub',
    publish: (hint, { trace } = {}) => calls.run('pubsub', () => send(hint, trace)),
    close: async () => {
      // Flush first: otherwise what is batched waits out maxDelayMs before settling.
      await Promise.all([calls.settle(), ...[...topics.values()].map(t => t.flush())])
      await client.close()
    },
  }
}
