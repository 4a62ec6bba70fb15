// GET /metrics: Prometheus text only with the key (Bearer or ?auth=), 404 otherwise; the key never leaks.
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { readFileSync } from 'node:fs'
import { documentedMetrics } from '@msr/telemetry'
import { samples } from './client-helpers.js'
import { AUTH_ON, newSigner, now, sign, startTestRelay, tampered, TestClient, testConfig, type TestRelay } from './harness.js'


const README = new URL('../../../../README.md', import.meta.url)
const KEY = 'metrics-key-0123456789abcdef'

const get = async (relay: TestRelay, path: string, headers: Record<string, string> = {}) => {
  const res = await fetch(`http://127.0.0.1:${relay.port}${path}`, { headers })
  return { status: res.status, type: res.headers.get('content-type') ?? '', body: await res.text() }
}


/** Every response body seen, to check none carries the key. */
const bodies: string[] = []
const fetchMetrics = async (relay: TestRelay, path = '/metrics', headers: Record<string, string> = {}) => {
  const res = await get(relay, path, headers)
  bodies.push(res.body)
  return res
}

describe('/metrics enabled', () => {
  let relay: TestRelay
  let notFoundBody: string

  before(async () => {
    relay = await startTestRelay(
      {
        'metrics.enabled': true,
        'metrics.auth': KEY,
        ...AUTH_ON,
        'rate_limiter.event': [{ name: 'reactions', description: 'reactions', period: '1m', limit: 1, kinds: [7] }],
        'rate_limiter.req_per_minute': 5,
      },
      { logLevel: 'trace' },
    )
    notFoundBody = (await get(relay, '/no-such-page')).body
  })
  after(() => relay?.close())

  it('serves Prometheus text with the key as a Bearer token, counting what clients did', async () => {
    const watcher = await TestClient.connect(relay.url)
    const client = await TestClient.connect(relay.url)
    try {
      await client.authOk(newSigner())
      assert.equal((await client.auth(newSigner(), { challenge: 'not-the-challenge' }))[2], false)

      const author = newSigner()
      watcher.send(['REQ', 'live', { authors: [author.pubkey] }])
      await watcher.collectUntilEose('live')
      const stored = sign(author, { content: 'stored' })
      await client.publishOk(stored)
      assert.deepEqual(await watcher.nextEvent('live'), stored)
      assert.equal((await client.publish(stored))[3].startsWith('duplicate:'), true)
      const forged = tampered(sign(author, { content: 'forged' }), { sig: 'ab'.repeat(64) })
      assert.deepEqual((await client.publish(forged)).slice(2), [false, 'invalid: bad signature'])
      await client.publishOk(sign(author, { kind: 7, content: '+' }))
      assert.deepEqual((await client.publish(sign(author, { kind: 7, content: '-' }))).slice(2), [false, 'rate-limited: reactions'])
      assert.equal((await client.query({ authors: [author.pubkey] })).length, 2)
      assert.deepEqual(await client.count('n', { authors: [author.pubkey] }), ['COUNT', 'n', { count: 2 }])

      const res = await fetchMetrics(relay, '/metrics', { Authorization: `Bearer ${KEY}` })
      assert.equal(res.status, 200)
      assert.match(res.type, /^text\/plain/)
      const m = samples(res.body)
      const at = (name: string) => {
        const value = m.get(name)
        assert.ok(value !== undefined, `${name} is missing from:\n${res.body.slice(0, 4000)}`)
        return value
      }
      assert.equal(at('msr_relay_connections'), 2)
      assert.ok(at('msr_relay_connections_total') >= 2)
      assert.ok(at('msr_relay_messages_total{verb="EVENT"}') >= 5)
      assert.ok(at('msr_relay_messages_total{verb="REQ"}') >= 2)
      assert.ok(at('msr_relay_messages_total{verb="COUNT"}') >= 1)
      assert.equal(at('msr_relay_messages_total{verb="AUTH"}'), 2)
      assert.equal(at('msr_relay_events_total{kind="1",outcome="stored"}'), 1)
      assert.equal(at('msr_relay_events_total{kind="7",outcome="stored"}'), 1)
      assert.equal(at('msr_relay_events_total{kind="1",outcome="duplicate"}'), 1)
      assert.equal(at('msr_relay_events_total{kind="1",outcome="invalid"}'), 1)
      assert.equal(at('msr_relay_events_total{kind="7",outcome="rate-limited"}'), 1)
      assert.ok(at('msr_relay_write_seconds_count') >= 3)
      assert.ok(at('msr_relay_write_seconds_bucket{le="+Inf"}') >= 3)
      assert.ok(at('msr_relay_query_seconds_count{verb="REQ"}') >= 2)
      assert.ok(at('msr_relay_query_seconds_count{verb="COUNT"}') >= 1)
      assert.ok(at('msr_relay_fanout_deliveries_total') >= 1)
      assert.equal(at('msr_relay_auth_failures_total{reason="challenge"}'), 1)
      assert.equal(at('msr_relay_auth_successes_total'), 1)
      assert.equal(at('msr_relay_rate_limited_total{rule="reactions"}'), 1)
      assert.match(res.body, /^# TYPE msr_relay_write_seconds histogram$/m)
      assert.match(res.body, /^# TYPE msr_relay_connections gauge$/m)
    } finally {
      await Promise.all([watcher.close(), client.close()])
    }
  })

  it('counts other kinds by class, and an event too broken to have a kind as unknown', async () => {
    const client = await TestClient.connect(relay.url)
    try {
      const author = newSigner()
      await client.publishOk(sign(author, { kind: 30023, content: 'article', tags: [['d', 'a']] }))
      await client.publishOk(sign(author, { kind: 40001, content: 'other' }))
      client.send(['EVENT', { kind: 'one', content: 'broken' }])
      await client.next(m => m[0] === 'NOTICE' || m[0] === 'OK')
      const m = samples((await fetchMetrics(relay, '/metrics', { Authorization: `Bearer ${KEY}` })).body)
      assert.equal(m.get('msr_relay_events_total{kind="addressable",outcome="stored"}'), 1)
      assert.equal(m.get('msr_relay_events_total{kind="regular",outcome="stored"}'), 1)
      assert.equal(m.get('msr_relay_events_total{kind="unknown",outcome="invalid"}'), 1)
      assert.ok(m.has('msr_relay_snapshot_age_seconds'))
    } finally {
      await client.close()
    }
  })

  it('serves every metric README lists for the relay, with the labels it names, and no other', async () => {
    const body = (await fetchMetrics(relay, '/metrics', { Authorization: `Bearer ${KEY}` })).body
    const listed = documentedMetrics(readFileSync(README, 'utf8'), 'relay-metrics')
    assert.ok(listed.size >= 25, 'README lists the relay metrics between its markers')
    for (const [name, { type }] of listed) assert.match(body, new RegExp(`^# TYPE ${name} ${type}$`, 'm'), `README lists ${name} (${type})`)
    const served = [...body.matchAll(/^# TYPE (msr_relay_\w+) /gm)].map(([, name]) => name as string)
    assert.deepEqual(served.filter(name => !listed.has(name)), [], 'metrics served but missing from README')
    for (const line of body.split('\n').filter(l => l.startsWith('msr_relay_'))) {
      const [, series = '', labels = ''] = /^(\w+?)(?:\{(.*)\})? /.exec(line) ?? []
      const named = [...labels.matchAll(/(\w+)="/g)].map(([, label]) => label).filter(label => label !== 'le')
      const base = listed.has(series) ? series : series.replace(/_(bucket|sum|count)$/, '')
      assert.deepEqual(named.sort(), listed.get(base)?.labels, `labels of ${line}`)
    }
  })

  it('counts REQ pages by the thread that scanned them: the event loop for a connection querying alone', async () => {
    const pages = async () => samples((await fetchMetrics(relay, '/metrics', { Authorization: `Bearer ${KEY}` })).body).get('msr_relay_req_pages_total{thread="event_loop"}') ?? 0
    const before = await pages()
    // Quiet for longer than the window in which another connection's query means "not alone" (20 ms).
    await new Promise(resolve => setTimeout(resolve, 50))
    const client = await TestClient.connect(relay.url)
    try {
      await client.query({ kinds: [1], limit: 1 })
    } finally {
      await client.close()
    }
    assert.equal(await pages(), before + 1)
  })

  it('counts a rejected AUTH by the check it failed, and a REQ/COUNT rate limit by its rule', async () => {
    const client = await TestClient.connect(relay.url)
    try {
      assert.equal((await client.auth(newSigner(), { parts: { created_at: now() - 3600 } }))[2], false)
      assert.equal((await client.auth(newSigner(), { relay: 'wss://other.example' }))[2], false)
      for (let i = 0; i < 5; i++) await client.query({ kinds: [1], limit: 1 })
      client.send(['REQ', 'over', { kinds: [1] }])
      assert.match(String((await client.next(m => m[0] === 'CLOSED' && m[1] === 'over'))[2]), /^rate-limited: /)
      const m = samples((await fetchMetrics(relay, '/metrics', { Authorization: `Bearer ${KEY}` })).body)
      assert.equal(m.get('msr_relay_auth_failures_total{reason="created_at"}'), 1)
      assert.equal(m.get('msr_relay_auth_failures_total{reason="relay"}'), 1)
      assert.equal(m.get('msr_relay_rate_limited_total{rule="req_per_minute"}'), 1)
    } finally {
      await client.close()
    }
  })

  it('accepts the key as ?auth= and a lower-case bearer scheme', async () => {
    assert.equal((await fetchMetrics(relay, `/metrics?auth=${encodeURIComponent(KEY)}`)).status, 200)
    assert.equal((await fetchMetrics(relay, '/metrics', { Authorization: `bearer ${KEY}` })).status, 200)
  })

  it('answers 404, like any unknown page, without the key or with a wrong one', async () => {
    const wrong: Array<[string, Record<string, string>]> = [
      ['/metrics', {}],
      ['/metrics', { Authorization: 'Bearer wrong-key-wrong-key-wrong' }],
      ['/metrics', { Authorization: `Bearer ${KEY.slice(0, -1)}` }],
      ['/metrics', { Authorization: `Bearer ${KEY}x` }],
      ['/metrics', { Authorization: `Bearer x${KEY}` }],
      ['/metrics', { Authorization: `Bearer ${KEY.toUpperCase()}` }],
      ['/metrics', { Authorization: `Basic ${KEY}` }],
      ['/metrics', { Authorization: KEY }],
      ['/metrics', { Authorization: 'Bearer ' }],
      [`/metrics?auth=${KEY.slice(0, 16)}`, {}],
      [`/metrics?auth=${KEY}0`, {}],
      ['/metrics?auth=', {}],
      [`/metrics?key=${KEY}`, {}],
      [`/metrics/?auth=${KEY}`, {}],
    ]
    for (const [path, headers] of wrong) {
      const res = await fetchMetrics(relay, path, headers)
      assert.equal(res.status, 404, `${path} ${JSON.stringify(headers)}`)
      assert.equal(res.body, notFoundBody)
    }
  })

  it('never shows the key in a response or in the logs', () => {
    assert.ok(bodies.length > 10)
    for (const body of bodies) assert.ok(!body.includes(KEY), 'a response contains the metrics key')
    assert.ok(relay.logs.length > 0, 'logs were captured')
    assert.ok(!JSON.stringify(relay.logs).includes(KEY), 'the logs contain the metrics key')
    assert.ok(!JSON.stringify(relay.logs).includes(KEY.slice(0, 16)), 'the logs contain part of the metrics key')
  })
})

describe('/metrics disabled', () => {
  let relay: TestRelay

  before(async () => {
    relay = await startTestRelay({ 'metrics.enabled': false, 'metrics.auth': KEY })
  })
  after(() => relay?.close())

  it('answers 404 even with the right key', async () => {
    assert.equal((await get(relay, '/metrics', { Authorization: `Bearer ${KEY}` })).status, 404)
    assert.equal((await get(relay, `/metrics?auth=${KEY}`)).status, 404)
  })
})

describe('/metrics enabled without a key', () => {
  it('cannot be configured: the relay refuses to start without a key of 16 characters', () => {
    assert.throws(() => testConfig('/nonexistent', { 'metrics.enabled': true }), /metrics\.auth/)
    assert.throws(() => testConfig('/nonexistent', { 'metrics.enabled': true, 'metrics.auth': 'short' }), /metrics\.auth/)
  })
})
