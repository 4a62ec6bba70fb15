import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { trace } from '@opentelemetry/api'
import { startTracing, tracingWanted } from './tracing.js'

describe('tracingWanted', () => {
  it('asks for an exporter other than none, and respects OTEL_SDK_DISABLED', () => {
    assert.equal(tracingWanted({}), false)
    assert.equal(tracingWanted({ OTEL_TRACES_EXPORTER: '' }), false)
    assert.equal(tracingWanted({ OTEL_TRACES_EXPORTER: 'none' }), false)
    assert.equal(tracingWanted({ OTEL_TRACES_EXPORTER: 'otlp' }), true)
    assert.equal(tracingWanted({ OTEL_TRACES_EXPORTER: ' console , otlp' }), true)
    assert.equal(tracingWanted({ OTEL_TRACES_EXPORTER: 'otlp', OTEL_SDK_DISABLED: 'true' }), false)
  })
})

describe('startTracing', () => {
  it('registers nothing without an exporter: spans stay non-recording', async () => {
    const stop = await startTracing({ serviceName: 'msr-test', env: {} })
    assert.equal(trace.getTracer('t').startSpan('s').isRecording(), false)
    await stop()
  })
})
