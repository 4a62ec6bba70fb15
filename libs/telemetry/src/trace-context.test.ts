import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { trace } from '@opentelemetry/api'
import { BasicTracerProvider } from '@opentelemetry/sdk-trace-base'
import { contextFromAttributes, parseTraceCarrier, traceCarrierOf } from './trace-context.js'

const tracer = new BasicTracerProvider().getTracer('trace-context-test')
const TRACE = '0af7651916cd43dd8448eb211c80319c'

describe('trace carriers', () => {
  it("carry a span's W3C context, and nothing for a span without one (no SDK)", () => {
    const span = tracer.startSpan('s')
    const { traceId, spanId } = span.spanContext()
    assert.deepEqual(traceCarrierOf(span), { traceparent: `00-${traceId}-${spanId}-01` })
    assert.equal(traceCarrierOf(trace.wrapSpanContext({ traceId: '0'.repeat(32), spanId: '0'.repeat(16), traceFlags: 0 })), undefined)
  })

  it('read back only well-formed values', () => {
    assert.deepEqual(parseTraceCarrier({ traceparent: `00-${TRACE}-b7ad6b7169203331-01`, tracestate: 'a=1' }), {
      traceparent: `00-${TRACE}-b7ad6b7169203331-01`,
      tracestate: 'a=1',
    })
    for (const bad of [undefined, null, 'x', {}, { traceparent: 'nope' }, { traceparent: `00-${TRACE.toUpperCase()}-b7ad6b7169203331-01` }])
      assert.equal(parseTraceCarrier(bad), undefined, JSON.stringify(bad))
  })

  it("name the parent of a message: the Pub/Sub library's context first, else traceparent, else none", () => {
    const parentOf = (attributes: Record<string, string>) => {
      const ctx = contextFromAttributes(attributes)
      return ctx && trace.getSpanContext(ctx)?.spanId
    }
    assert.equal(parentOf({ traceparent: `00-${TRACE}-b7ad6b7169203331-01` }), 'b7ad6b7169203331')
    assert.equal(parentOf({ traceparent: `00-${TRACE}-b7ad6b7169203331-01`, googclient_traceparent: `00-${TRACE}-00f067aa0ba902b7-01` }), '00f067aa0ba902b7')
    assert.equal(parentOf({ kind: '445' }), undefined)
    assert.equal(parentOf({ traceparent: '00-00000000000000000000000000000000-b7ad6b7169203331-01' }), undefined)
  })
})
