import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { trace } from '@opentelemetry/api'
import { startTracing, tracingProblems, tracingWanted } from './tracing.js'

describe('tracingWanted', () => {
  it('asks for an exporter other than none, and respects OTEL_SDK_DISABLED', () => {
    assert.equal(tracingWanted({}), false)
    assert.equal(tracingWanted({ OTEL_TRACES_EXPORTER: '' }), false)
    assert.equal(tracingWanted({ OTEL_TRACES_EXPORTER: 'none' }), false)
    assert.equal(tracingWanted({ OTEL_TRACES_EXPORTER: 'otlp' }), true)
    assert.equal(tracingWanted({ OTEL_TRACES_EXPORTER: ' console , otlp' }), true)
    assert.equal(tracingWanted({ OTEL_TRACES_EXPORTER: 'otlp', OTEL_SDK_DISABLED: 'true' }), false)
    assert.equal(tracingWanted({ OTEL_TRACES_EXPORTER: 'bogus' }), false, 'an unknown exporter alone starts nothing')
  })
})

describe('startTracing', () => {
  it('registers nothing without an exporter: spans stay non-recording', async () => {
    const stop = await startTracing({ serviceName: 'msr-test', env: {} })
    assert.equal(trace.getTracer('t').startSpan('s').isRecording(), false)
    await stop()
  })
})

describe('tracingProblems', () => {
  it('names an exporter or OTLP protocol the SDK would quietly ignore, and nothing else', () => {
    assert.deepEqual(tracingProblems({ OTEL_TRACES_EXPORTER: 'otlp,console', OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json' }), [])
    assert.deepEqual(tracingProblems({ OTEL_TRACES_EXPORTER: 'otlp, bogus', OTEL_EXPORTER_OTLP_PROTOCOL: 'nonsense' }), [
      'OTEL_TRACES_EXPORTER: "bogus" is not one of otlp, console, zipkin, gcp, none; no spans go there',
      'OTEL_EXPORTER_OTLP_PROTOCOL: "nonsense" is not one of http/protobuf, http/json, grpc',
    ])
  })

  it('say that gcp (Cloud Trace) stands alone', () => {
    assert.deepEqual(tracingProblems({ OTEL_TRACES_EXPORTER: 'gcp' }), [])
    assert.deepEqual(tracingProblems({ OTEL_TRACES_EXPORTER: 'gcp,console' }), ['OTEL_TRACES_EXPORTER: "gcp" stands alone; the other exporters named beside it get no spans'])
    assert.equal(tracingWanted({ OTEL_TRACES_EXPORTER: 'gcp' }), true)
  })

  it('are said when tracing starts', async () => {
    const lines: string[] = []
    const stop = await startTracing({ env: { OTEL_TRACES_EXPORTER: 'bogus' }, warn: line => void lines.push(line) })
    await stop()
    assert.deepEqual(lines, ['OTEL_TRACES_EXPORTER: "bogus" is not one of otlp, console, zipkin, gcp, none; no spans go there'])
  })
})
