import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { startTestRelay } from '../test/harness.js'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { gcBetween, gcText, parseRelayGc, readRelayGc, relayGcReader } from './relay-gc.js'

/** prom-client's histogram as the relay's /metrics serves it (buckets first, `le` before `kind`). */
const metrics = (young: [count: number, within10ms: number, seconds: number], major: [number, number, number]): string =>
  [
    '# HELP nodejs_gc_duration_seconds Garbage collection duration by kind, one of major, minor, incremental or weakcb.',
    '# TYPE nodejs_gc_duration_seconds histogram',
    ...(
      [
        ['minor', young],
        ['major', major],
        ['incremental', [3, 3, 0.012]],
        ['weakcb', [9, 9, 0.5]],
      ] as const
    ).flatMap(([kind, [count, within, seconds]]) => [
      `nodejs_gc_duration_seconds_bucket{le="0.001",kind="${kind}"} 0`,
      `nodejs_gc_duration_seconds_bucket{le="0.01",kind="${kind}"} ${within}`,
      `nodejs_gc_duration_seconds_bucket{le="+Inf",kind="${kind}"} ${count}`,
      `nodejs_gc_duration_seconds_sum{kind="${kind}"} ${seconds}`,
      `nodejs_gc_duration_seconds_count{kind="${kind}"} ${count}`,
    ]),
    'nodejs_gc_duration_seconds_other{kind="minor"} 99',
    'msr_relay_connections 3',
  ].join('\n')

describe("the bench's reading of the relay's collections", () => {
  it('reads counts, time and pauses over 10 ms per kind, weak callbacks left out', () => {
    const gc = parseRelayGc(metrics([120, 118, 0.0985], [5, 4, 0.0314]))
    assert.deepEqual(gc.young, { count: 120, ms: 98.5, over10ms: 2 })
    assert.deepEqual(gc.markCompact, { count: 5, ms: 31.4, over10ms: 1 })
    assert.deepEqual(gc.incremental, { count: 3, ms: 12, over10ms: 0 })
  })

  it('gives what happened between two readings, in one line', () => {
    const gc = gcBetween(parseRelayGc(metrics([100, 100, 0.05], [2, 2, 0.01])), parseRelayGc(metrics([130, 127, 0.09], [3, 2, 0.025])))
    assert.deepEqual(gc.young, { count: 30, ms: 40, over10ms: 3 })
    assert.deepEqual(gc.markCompact, { count: 1, ms: 15, over10ms: 1 })
    assert.equal(gcText(gc), 'young 30 (40 ms, 3 over 10 ms), mark-compact 1 (15 ms, 1 over 10 ms), incremental marking 0 ms (event loop, from /metrics)')
  })

  it('reads a running relay, and is refused without its key', async () => {
    const key = 'bench-gc-key-0123456789'
    const relay = await startTestRelay({ 'metrics.enabled': true, 'metrics.auth': key })
    try {
      // The relay runs in this process: garbage made here is collected by its isolate, and observed by its metrics.
      const before = await readRelayGc(relay.url, key)
      let kept: object[] = []
      for (let i = 0; i < 2_000_000; i++) kept = i % 1000 === 0 ? [] : [...kept.slice(-1), { i }]
      await new Promise(resolve => setTimeout(resolve, 50))
      const gc = gcBetween(before, await readRelayGc(relay.url, key))
      assert.ok(gc.young.count > 0 && gc.young.ms > 0, JSON.stringify(gc))
      for (const kind of [gc.young, gc.markCompact, gc.incremental]) assert.ok(kind.ms >= 0 && kind.over10ms >= 0 && kind.over10ms <= kind.count, JSON.stringify(gc))
      // Without the key the relay hides the endpoint.
      await assert.rejects(readRelayGc(relay.url, 'not-the-key-0123456789'), /\/metrics: HTTP 404/)
    } finally {
      await relay.close()
    }
  })

  it('primes its reader: /metrics is read once before the reader is handed out, so no timed phase pays for the first fetch', async () => {
    let reads = 0
    const server = createServer((req, res) => {
      reads++
      res.end(req.headers.authorization === 'Bearer k' ? metrics([10, 10, 0.01], [1, 1, 0.002]) : '')
    })
    await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
    try {
      const read = await relayGcReader(`ws://127.0.0.1:${(server.address() as AddressInfo).port}`, 'k')
      assert.equal(reads, 1)
      assert.equal((await read())?.young.count, 10)
      assert.equal(reads, 2)
    } finally {
      server.closeAllConnections()
      await new Promise(resolve => server.close(resolve))
    }
  })
})
