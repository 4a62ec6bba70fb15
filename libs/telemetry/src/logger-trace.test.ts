import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { context, trace } from '@opentelemetry/api'
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks'
import { AlwaysOffSampler, BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base'
import { createLogger } from './logger.js'

// A process-wide provider, as the SDK would register it; this file runs in its own process.
const exporter = new InMemorySpanExporter()
context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable())
trace.setGlobalTracerProvider(new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] }))
const tracer = trace.getTracer('logger-test')

function memoryStream() {
  const lines: Record<string, unknown>[] = []
  return { lines, write: (line: string) => { lines.push(JSON.parse(line) as Record<string, unknown>) } }
}

const TRACE = 'logging.googleapis.com/trace'
const SPAN = 'logging.googleapis.com/spanId'
const SAMPLED = 'logging.googleapis.com/trace_sampled'

describe('createLogger inside a span', () => {
  it('joins lines written inside a span to its trace, and only those', async () => {
    const out = memoryStream()
    const log = createLogger({ service: 'relay', projectId: 'proj', destination: out })
    log.info('before')
    const ids = await tracer.startActiveSpan('work', async span => {
      await Promise.resolve()
      log.warn('inside, after an await')
      span.end()
      return span.spanContext()
    })
    log.info('after')
    const [before, inside, after] = out.lines
    assert.equal(inside?.[TRACE], `projects/proj/traces/${ids.traceId}`)
    assert.equal(inside?.[SPAN], ids.spanId)
    assert.equal(inside?.[SAMPLED], true)
    for (const line of [before, after]) for (const key of [TRACE, SPAN, SAMPLED]) assert.equal(line && key in line, false, key)
    assert.equal(exporter.getFinishedSpans().length, 1)
  })

  it('writes the bare trace id when no project is known, and trace_sampled false for an unsampled span', () => {
    const out = memoryStream()
    const log = createLogger({ service: 'relay', destination: out })
    const unsampled = new BasicTracerProvider({ sampler: new AlwaysOffSampler() }).getTracer('off')
    const ids = unsampled.startActiveSpan('quiet', span => (log.info('inside'), span.end(), span.spanContext()))
    assert.equal(out.lines[0]?.[TRACE], ids.traceId)
    assert.equal(out.lines[0]?.[SPAN], ids.spanId)
    assert.equal(out.lines[0]?.[SAMPLED], false)
  })
})
