// The relay's spans, through @opentelemetry/api only. Without a registered SDK every span is non-recording:
// starting one is a call or two, and attributes are computed only when `span.isRecording()`.
import { context, SpanKind, SpanStatusCode, trace, type Attributes, type Span } from '@opentelemetry/api'
import { prefixOf, type Reason } from '@msr/nostr'

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

/** Runs `fn` with `span` active, so the log lines it writes carry the span's trace fields. */
export const inSpan = <T>(span: Span, fn: () => T): T => context.with(trace.setSpan(context.active(), span), fn)
