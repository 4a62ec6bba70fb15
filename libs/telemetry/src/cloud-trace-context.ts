// Cloud Run's own trace header, read on incoming requests. Google's propagator package for it is deprecated
// (archived in October 2026, in favour of W3C), yet Cloud Run still sends the header, so it is read here.
import { isSpanContextValid, trace, TraceFlags, type Context, type TextMapGetter, type TextMapPropagator } from '@opentelemetry/api'

const HEADER = 'x-cloud-trace-context'
/** `TRACE_ID/SPAN_ID;o=OPTIONS`: 32 hex digits, a decimal unsigned 64-bit span id, `o=1` when sampled. */
const FORMAT = /^([0-9a-fA-F]{32})\/(\d{1,20})(?:;o=([0-9]+))?$/

/**
 * Extracts `X-Cloud-Trace-Context` into a remote parent; injects nothing (outgoing requests carry W3C
 * `traceparent`, which Google's services read too). Put it before the W3C propagator in a composite, so
 * that a `traceparent` on the same request wins.
 */
export class CloudTraceContextPropagator implements TextMapPropagator {
  inject(): void {}

  extract(context: Context, carrier: unknown, getter: TextMapGetter): Context {
    const raw = getter.get(carrier, HEADER)
    const value = (Array.isArray(raw) ? raw[0] : raw)?.trim()
    const match = value === undefined ? null : FORMAT.exec(value)
    if (!match) return context
    const [, traceId, decimalSpanId, options] = match as unknown as [string, string, string, string | undefined]
    const spanNumber = BigInt(decimalSpanId)
    if (spanNumber === 0n || spanNumber >= 2n ** 64n) return context
    const spanContext = {
      traceId: traceId.toLowerCase(),
      spanId: spanNumber.toString(16).padStart(16, '0'),
      traceFlags: options === '1' ? TraceFlags.SAMPLED : TraceFlags.NONE,
      isRemote: true,
    }
    return isSpanContextValid(spanContext) ? trace.setSpanContext(context, spanContext) : context
  }

  fields(): string[] {
    return [HEADER]
  }
}
