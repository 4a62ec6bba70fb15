import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { defaultTextMapGetter, ROOT_CONTEXT, trace, TraceFlags, type TextMapPropagator } from '@opentelemetry/api'
import { CompositePropagator, W3CTraceContextPropagator } from '@opentelemetry/core'
import { CloudTraceContextPropagator } from './cloud-trace-context.js'

const TRACE = '105445aa7843bc8bf206b12000100000'
const parent = (headers: Record<string, string>, propagator: TextMapPropagator = new CloudTraceContextPropagator()) =>
  trace.getSpanContext(propagator.extract(ROOT_CONTEXT, headers, defaultTextMapGetter))

describe('X-Cloud-Trace-Context', () => {
  it('reads TRACE/SPAN;o=1 as a remote parent (span id decimal → hex), sampled or not', () => {
    assert.deepEqual(parent({ 'x-cloud-trace-context': `${TRACE}/1;o=1` }), { traceId: TRACE, spanId: '0000000000000001', traceFlags: TraceFlags.SAMPLED, isRemote: true })
    assert.equal(parent({ 'x-cloud-trace-context': `${TRACE}/18446744073709551615;o=0` })?.spanId, 'ffffffffffffffff')
    assert.equal(parent({ 'x-cloud-trace-context': `${TRACE}/12345` })?.traceFlags, TraceFlags.NONE)
  })

  it('ignores what is not one: bad ids, a zero or too large span, other text', () => {
    for (const value of ['', 'nonsense', `${TRACE}/0;o=1`, `${TRACE}/18446744073709551616;o=1`, `${'0'.repeat(32)}/5;o=1`, `${TRACE.slice(1)}/5;o=1`, `${TRACE}/-5`])
      assert.equal(parent({ 'x-cloud-trace-context': value }), undefined, value)
  })

  it('loses to a traceparent on the same request when placed before the W3C propagator', () => {
    const composite = new CompositePropagator({ propagators: [new CloudTraceContextPropagator(), new W3CTraceContextPropagator()] })
    const headers = { 'x-cloud-trace-context': `${TRACE}/1;o=1`, traceparent: `00-${'a'.repeat(32)}-${'b'.repeat(16)}-01` }
    assert.equal(parent(headers, composite)?.traceId, 'a'.repeat(32))
    assert.equal(parent({ 'x-cloud-trace-context': `${TRACE}/1;o=1` }, composite)?.traceId, TRACE)
  })
})
