import assert from 'node:assert/strict'
import { constants, PerformanceObserver } from 'node:perf_hooks'
import { describe, it } from 'node:test'
import { createMetrics } from './metrics.js'

describe('createMetrics', () => {
  it('renders a registered counter under the prefix, with labels', async () => {
    const metrics = createMetrics({ prefix: 'msr_relay_', defaultMetrics: false })
    metrics.counter('events_total', 'Events accepted', ['kind']).inc({ kind: '1' }, 3)
    const text = await metrics.render()
    assert.match(text, /^# HELP msr_relay_events_total Events accepted$/m)
    assert.match(text, /^msr_relay_events_total\{kind="1"\} 3$/m)
    assert.match(metrics.contentType, /^text\/plain/)
  })

  it('registers gauges and histograms with custom buckets', async () => {
    const metrics = createMetrics({ prefix: 'msr_relay_', defaultMetrics: false })
    metrics.gauge('connections', 'Open sockets').set(2)
    metrics.histogram('query_seconds', 'Query time', [], [0.1, 1]).observe(0.5)
    const text = await metrics.render()
    assert.match(text, /^msr_relay_connections 2$/m)
    assert.match(text, /^msr_relay_query_seconds_bucket\{le="0.1"\} 0$/m)
    assert.match(text, /^msr_relay_query_seconds_bucket\{le="1"\} 1$/m)
  })

  it('gives each call its own registry, so the same name can be registered twice', async () => {
    const a = createMetrics({ prefix: 'x_', defaultMetrics: false })
    const b = createMetrics({ prefix: 'x_', defaultMetrics: false })
    a.counter('hits_total', 'Hits').inc()
    b.counter('hits_total', 'Hits')
    assert.match(await a.render(), /^x_hits_total 1$/m)
    assert.match(await b.render(), /^x_hits_total 0$/m)
  })

  it('collects process metrics by default', async () => {
    const text = await createMetrics({ prefix: 'msr_relay_' }).render()
    assert.match(text, /^process_cpu_user_seconds_total /m)
    assert.match(text, /^nodejs_eventloop_lag_seconds /m)
  })

  it('counts every collection in nodejs_gc_duration_seconds, not only the first of each observer callback', async () => {
    let young = 0
    const independent = new PerformanceObserver(list => {
      for (const entry of list.getEntries()) if ((entry as unknown as { detail: { kind: number } }).detail.kind === constants.NODE_PERFORMANCE_GC_MINOR) young++
    })
    independent.observe({ entryTypes: ['gc'] })
    const metrics = createMetrics({ prefix: 'msr_relay_' })
    // Garbage made over several turns of the event loop: many young collections, delivered in batches.
    let kept: object[] = []
    for (let turn = 0; turn < 20; turn++) {
      for (let i = 0; i < 200_000; i++) kept = i % 1000 === 0 ? [] : [...kept.slice(-1), { i }]
      await new Promise(resolve => setImmediate(resolve))
    }
    await new Promise(resolve => setTimeout(resolve, 50))
    independent.disconnect()
    const counted = Number(/^nodejs_gc_duration_seconds_count\{kind="minor"\} (\d+)$/m.exec(await metrics.render())?.[1])
    assert.ok(young > 40, `the test made too few young collections to tell: ${young}`)
    assert.equal(counted, young)
  })
})
