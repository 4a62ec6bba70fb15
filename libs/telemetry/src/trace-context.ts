// A span's W3C trace context as plain strings, and back: what crosses the hint bus (outbox, Pub/Sub attributes,
// the local transport's headers). Always W3C here, whatever OTEL_PROPAGATORS says: both ends must read it.
import { isSpanContextValid, ROOT_CONTEXT, trace, type Context, type Span, type TextMapGetter } from '@opentelemetry/api'
import { W3CTraceContextPropagator } from '@opentelemetry/core'

/** W3C trace context headers: `traceparent`, and `tracestate` when there is one. */
export type TraceCarrier = { traceparent: string; tracestate?: string }

const w3c = new W3CTraceContextPropagator()
/** Where the Pub/Sub client library's own OpenTelemetry support puts the context (its publish span, deeper than ours). */
const PUBSUB_LIBRARY_KEY = 'googclient_traceparent'
const TRACEPARENT = /^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$/
/** Longest tracestate carried (the W3C limit is 32 members of at most 256 characters; real ones are short). */
const MAX_TRACESTATE = 512

/** The trace context of `span`, or undefined when it has none (no SDK registered: nothing to carry). */
export const traceCarrierOf = (span: Span): TraceCarrier | undefined => {
  if (!isSpanContextValid(span.spanContext())) return undefined
  const headers: Record<string, string> = {}
  w3c.inject(trace.setSpan(ROOT_CONTEXT, span), headers, { set: (carrier, key, value) => void (carrier[key] = value) })
  const { traceparent, tracestate } = headers
  if (traceparent === undefined) return undefined
  return { traceparent, ...(tracestate && tracestate.length <= MAX_TRACESTATE && { tracestate }) }
}

/** A carrier read back from storage or a message: only well-formed values, else undefined. */
export const parseTraceCarrier = (value: unknown): TraceCarrier | undefined => {
  if (typeof value !== 'object' || value === null) return undefined
  const { traceparent, tracestate } = value as Record<string, unknown>
  if (typeof traceparent !== 'string' || !TRACEPARENT.test(traceparent)) return undefined
  return { traceparent, ...(typeof tracestate === 'string' && tracestate.length <= MAX_TRACESTATE && { tracestate }) }
}

const getter: TextMapGetter<Readonly<Record<string, string | undefined>>> = {
  keys: carrier => Object.keys(carrier),
  get: (carrier, key) => carrier[key],
}

/**
 * The parent context a message's attributes (or headers) name: the Pub/Sub library's `googclient_traceparent`
 * if present, else `traceparent`. Undefined when neither holds a valid context.
 */
export const contextFromAttributes = (attributes: Readonly<Record<string, string | undefined>>): Context | undefined => {
  const library = attributes[PUBSUB_LIBRARY_KEY]
  const carrier = library !== undefined ? { traceparent: library } : attributes
  const extracted = w3c.extract(ROOT_CONTEXT, carrier, getter)
  const spanContext = trace.getSpanContext(extracted)
  return spanContext && isSpanContextValid(spanContext) ? extracted : undefined
}
