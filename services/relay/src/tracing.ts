// The relay's spans, through @opentelemetry/api only. Without a registered SDK every span is non-recording:
// starting one is a call or two, and attributes are computed only when `span.isRecording()`.
import { context, ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, TraceFlags, type Attributes, type Span } from '@opentelemetry/api'
import type { Hint } from '@msr/hints'
import { prefixOf, type Reason } from '@msr/nostr'
import { contextFromAttributes, type TraceCarrier } from '@msr/telemetry'

const tracer = trace.getTracer('@msr/relay')

/** Starts the span of one client message (`relay.event`, `relay.req`, `relay.count`). */
export const startSpan = (name: string): Span => tracer.startSpan(name, { kind: SpanKind.SERVER })

/** Sets attributes a caller computes only for a recording span. */
export const annotate = (span: Span, attributes: () => Attributes): void => {
  if (span.isRecording()) span.setAttributes(attributes())
}

/**
 * Ends a span with the answer the client got: `attribute` holds the reason's prefix (never its text, which may
 * quote the client), or `outcome` as given; an `error:` answer marks the span failed.
 */
export const endSpan = (span: Span, attribute: string, outcome: Reason | string): void => {
  if (span.isRecording()) {
    const prefix = outcome.includes(':') ? prefixOf(outcome as Reason) : outcome
    span.setAttribute(attribute, prefix)
    if (prefix === 'error') span.setStatus({ code: SpanStatusCode.ERROR, message: outcome })
  }
  span.end()
}

/**
 * A `relay.fanout` span under an EVENT's span, which has usually ended by then (fan-out follows the OK):
 * made only when that EVENT was sampled and something was delivered. Returns what records it with the
 * number of deliveries (the span starts when `fanOutSpan` was called).
 */
export const fanOutSpan = (event: Span): ((deliveries: number) => void) | undefined => {
  if ((event.spanContext().traceFlags & TraceFlags.SAMPLED) === 0) return undefined
  const startTime = Date.now()
  return deliveries => {
    if (deliveries === 0) return
    const span = tracer.startSpan('relay.fanout', { kind: SpanKind.INTERNAL, startTime, attributes: { 'nostr.deliveries': deliveries } }, trace.setSpan(ROOT_CONTEXT, event))
    span.end()
  }
}

/** A span that runs work inside itself and ends with an outcome. */
export interface RunningSpan {
  readonly span: Span
  run<T>(fn: () => T): T
  /** Ends with `outcome` as `nostr.outcome` (its prefix); an error marks it failed. */
  end(outcome: string, error?: unknown): void
}

/** `span` as a RunningSpan. */
const running = (span: Span): RunningSpan => ({
  span,
  run: fn => inSpan(span, fn),
  end: (outcome, error) => {
    if (error !== undefined && span.isRecording()) span.recordException(error instanceof Error ? error : String(error))
    endSpan(span, 'nostr.outcome', outcome)
  },
})

/**
 * The `relay.hint.publish` span of one hint, a child of its EVENT's span when the outbox kept that context
 * (after a restart too), else a root. Attributes: kind, event id, the transport (`local`, `pubsub`).
 */
export const hintPublishSpan = (hint: Hint, parent: TraceCarrier | undefined, transport: string): RunningSpan => {
  const parentContext = (parent && contextFromAttributes(parent)) ?? ROOT_CONTEXT
  const span = tracer.startSpan('relay.hint.publish', { kind: SpanKind.PRODUCER }, parentContext)
  annotate(span, () => ({ 'nostr.kind': hint.kind, 'nostr.event_id': hint.id, 'messaging.system': transport === 'pubsub' ? 'gcp_pubsub' : transport }))
  return running(span)
}

/**
 * The `relay.replication.publish` span of one replication-outbox entry on its origin: a child of its EVENT's
 * span when the entry kept that context (after a restart too), else a root. Attributes: kind, event id. Its
 * own context goes out in the message's `traceparent`, so the replicas' apply spans continue the trace.
 */
export const replicationPublishSpan = (entry: { id: string; kind: number; traceparent?: string | undefined }): RunningSpan => {
  const parentContext = (entry.traceparent && contextFromAttributes({ traceparent: entry.traceparent })) || ROOT_CONTEXT
  const span = tracer.startSpan('relay.replication.publish', { kind: SpanKind.PRODUCER }, parentContext)
  annotate(span, () => ({ 'nostr.kind': entry.kind, 'nostr.event_id': entry.id, 'messaging.system': 'gcp_pubsub' }))
  return running(span)
}

/**
 * The `relay.replication.apply` span of one message from another replica: a child of the message's
 * `traceparent` (the origin's publish span) when it has one, else a root. Attributes: the origin replica and
 * kind (from the message's attributes), the event id once parsed, and the outcome (`stored`, `duplicate`…).
 */
export const replicationApplySpan = (attributes: Readonly<Record<string, string>>): RunningSpan => {
  const span = tracer.startSpan('relay.replication.apply', { kind: SpanKind.CONSUMER }, contextFromAttributes(attributes) ?? ROOT_CONTEXT)
  annotate(span, () => ({
    'nostr.origin_replica': attributes.origin ?? '',
    ...(attributes.kind !== undefined && { 'nostr.kind': Number(attributes.kind) }),
    'messaging.system': 'gcp_pubsub',
  }))
  return running(span)
}

/**
 * Runs a whole operation (snapshot, restore, export, import) in an active span named `name`: `outcome` set
 * to `ok` or `error` (with the exception recorded), and whatever attributes `fn` adds through `span`.
 */
export const traced = async <T>(name: string, attributes: Attributes, fn: (span: Span) => Promise<T>): Promise<T> => {
  const span = tracer.startSpan(name, { kind: SpanKind.INTERNAL, attributes })
  try {
    const result = await inSpan(span, () => fn(span))
    span.setAttribute('outcome', 'ok')
    return result
  } catch (error) {
    if (span.isRecording()) {
      span.recordException(error instanceof Error ? error : String(error))
      span.setAttribute('outcome', 'error')
      span.setStatus({ code: SpanStatusCode.ERROR, message: error instanceof Error ? error.message : String(error) })
    }
    throw error
  } finally {
    span.end()
  }
}

/** Runs `fn` with `span` active, so the log lines it writes carry the span's trace fields. */
export const inSpan = <T>(span: Span, fn: () => T): T => context.with(trace.setSpan(context.active(), span), fn)
