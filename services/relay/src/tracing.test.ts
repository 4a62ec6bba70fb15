import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { SpanStatusCode, trace } from '@opentelemetry/api'
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base'
import { annotate, endSpan, startSpan } from './tracing.js'

describe('relay spans', () => {
  it('costs no attributes while no SDK is registered', () => {
    const span = startSpan('relay.event')
    assert.equal(span.isRecording(), false)
    annotate(span, () => assert.fail('computed attributes for a non-recording span'))
    endSpan(span, 'nostr.outcome', 'error: boom')
  })

  it('records the prefix of a reason, never its text, and marks error: answers failed', () => {
    const exporter = new InMemorySpanExporter()
    trace.setGlobalTracerProvider(new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] }))
    endSpan(startSpan('relay.event'), 'nostr.outcome', 'blocked: pubkey abc is not allowed')
    endSpan(startSpan('relay.event'), 'nostr.outcome', 'error: internal error while storing the event; try again')
    endSpan(startSpan('relay.event'), 'nostr.outcome', 'stored')
    const [blocked, failed, stored] = exporter.getFinishedSpans()
    assert.deepEqual(blocked?.attributes, { 'nostr.outcome': 'blocked' })
    assert.equal(blocked?.status.code, SpanStatusCode.UNSET)
    assert.deepEqual(failed?.attributes, { 'nostr.outcome': 'error' })
    assert.equal(failed?.status.code, SpanStatusCode.ERROR)
    assert.deepEqual(stored?.attributes, { 'nostr.outcome': 'stored' })
  })
})
