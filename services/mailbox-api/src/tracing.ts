// The mailbox's own spans, one per operation, under the automatic HTTP/Express/pg spans (libs/telemetry starts
// those). Without a registered SDK every span is non-recording and these wrappers cost a call or two.
import { context, isSpanContextValid, SpanKind, SpanStatusCode, trace, type Attributes, type Context, type Span } from '@opentelemetry/api'
import type { Request, Response } from 'express'
import { contextFromAttributes } from '@msr/telemetry'
import { ApiError } from './errors.js'

const tracer = trace.getTracer('@msr/mailbox-api')

/**
 * What an operation's span records when it fails: an ApiError's code (a client's mistake, the span stays
 * OK unless the status is 5xx), anything else as `error` with the exception.
 */
const failed = (span: Span, error: unknown): void => {
  if (!span.isRecording()) return
  const clientError = error instanceof ApiError && error.status < 500
  span.setAttribute('mailbox.outcome', error instanceof ApiError ? error.code : 'error')
  if (clientError) return
  span.recordException(error instanceof Error ? error : String(error))
  span.setStatus({ code: SpanStatusCode.ERROR, message: error instanceof Error ? error.message : String(error) })
}

/**
 * Runs `fn` in an active span `name` (child of `parent`, else of the active context), ending with
 * `mailbox.outcome`: what `outcomeOf` makes of the result (`ok` without it), or the failure.
 */
export const operation = async <T>(
  name: string,
  attributes: Attributes,
  fn: (span: Span) => Promise<T>,
  opts: { parent?: Context | undefined; kind?: SpanKind; outcomeOf?: (result: T) => string; links?: Span[] } = {},
): Promise<T> => {
  const links = (opts.links ?? []).filter(s => isSpanContextValid(s.spanContext())).map(s => ({ context: s.spanContext() }))
  const span = tracer.startSpan(name, { kind: opts.kind ?? SpanKind.INTERNAL, attributes, links }, opts.parent ?? context.active())
  try {
    const result = await context.with(trace.setSpan(opts.parent ?? context.active(), span), () => fn(span))
    if (span.isRecording()) span.setAttribute('mailbox.outcome', opts.outcomeOf?.(result) ?? 'ok')
    return result
  } catch (error) {
    failed(span, error)
    throw error
  } finally {
    span.end()
  }
}

/** An Express handler run as `operation(name, attributes)`: deposit, list, ack, the registry's reads and updates. */
export const tracedRoute =
  (name: string, attributes: Attributes, handler: (req: Request, res: Response) => Promise<void>) =>
  (req: Request, res: Response): Promise<void> =>
    operation(name, attributes, () => handler(req, res))

/**
 * Where a hint's consume span hangs: the relay's publish (the trace context in the message attributes,
 * which a restart of either side does not lose), linked to the request or pull that carried it when that
 * is another trace (a Pub/Sub push is Google's request, not the relay's). Without attributes, the active context.
 */
export const hintParent = (attributes: Readonly<Record<string, string>> | undefined): { parent: Context; links: Span[] } => {
  const carrier = attributes && contextFromAttributes(attributes)
  const active = trace.getActiveSpan()
  if (!carrier) return { parent: context.active(), links: [] }
  if (active && !isSpanContextValid(active.spanContext())) return { parent: carrier, links: [] }
  // The local transport sends the same context as headers: its HTTP span is then already the relay's child.
  if (active && active.spanContext().traceId === trace.getSpanContext(carrier)?.traceId) return { parent: context.active(), links: [] }
  return { parent: carrier, links: active ? [active] : [] }
}
