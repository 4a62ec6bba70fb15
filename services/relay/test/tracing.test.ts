// Spans of the relay (relay.event, relay.req, relay.count) with an SDK registered in this process, as
// `--import @msr/telemetry/register` would: names, attributes, ends, and never an event's content or tag values.
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { SpanStatusCode, trace } from '@opentelemetry/api'
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from '@opentelemetry/sdk-trace-base'
import { newSigner, sign, startTestRelay, tampered, TEST_PUBLIC_URL, TestClient, waitUntil, type TestRelay } from './harness.js'
import { PushEndpoint } from './push-endpoint.js'

const exporter = new InMemorySpanExporter()
trace.setGlobalTracerProvider(new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] }))

const SECRET_CONTENT = 'the-secret-content-a1b2c3'
const SECRET_TAG = 'the-secret-tag-value-d4e5f6'

/** Finished spans of one name, once `count` of them have ended. */
const ended = async (name: string, count: number): Promise<ReadableSpan[]> => {
  const named = () => exporter.getFinishedSpans().filter(s => s.name === name)
  await waitUntil(() => named().length >= count, `${count} ${name} span(s) to end`)
  return named()
}

describe('relay tracing', () => {
  let relay: TestRelay
  let client: TestClient
  const alice = newSigner()
  const note = sign(alice, { kind: 1, content: SECRET_CONTENT, tags: [['t', SECRET_TAG]] })

  before(async () => {
    relay = await startTestRelay()
    client = await TestClient.connect(relay.url)
  })

  after(async () => {
    await client?.close()
    await relay?.close()
  })

  it('traces each EVENT from receipt to OK: kind, size, outcome and the steps it passed', async () => {
    await client.publishOk(note)
    assert.deepEqual((await client.publish(note)).slice(2), [true, 'duplicate: already have this event'])
    assert.equal((await client.publish(tampered(note, { content: 'changed' })))[2], false)
    const [stored, duplicate, invalid] = await ended('relay.event', 3)
    assert.deepEqual(stored?.attributes, {
      'nostr.kind': 1,
      'nostr.event_id': note.id,
      'nostr.event_size': Buffer.byteLength(JSON.stringify(note)),
      'nostr.outcome': 'stored',
    })
    assert.deepEqual(stored?.events.map(e => e.name), ['verified', 'admitted', 'committed'])
    assert.equal(duplicate?.attributes['nostr.outcome'], 'duplicate')
    assert.deepEqual(duplicate?.events.map(e => e.name), ['verified', 'admitted'])
    assert.equal(invalid?.attributes['nostr.outcome'], 'invalid')
    assert.deepEqual(invalid?.events, [])
    for (const span of [stored, duplicate, invalid]) assert.notEqual(span?.status.code, SpanStatusCode.ERROR)
  })

  it('traces a REQ until EOSE, and a refused one until CLOSED', async () => {
    assert.equal((await client.req('sub', { authors: [alice.pubkey] }, { '#t': [SECRET_TAG] })).length, 1)
    client.send(['REQ', 'bad', { kinds: 'not a list' }])
    await client.next(m => m[0] === 'CLOSED' && m[1] === 'bad')
    const [answered, refused] = await ended('relay.req', 2)
    const { 'nostr.scan_ms': scanMs, 'nostr.scan_thread': thread, ...rest } = answered?.attributes ?? {}
    assert.deepEqual(rest, { 'nostr.filters': 2, 'nostr.events_returned': 1, 'nostr.pages': 1, 'nostr.answer': 'eose' })
    assert.ok(typeof scanMs === 'number' && scanMs >= 0, 'the query time')
    assert.ok(thread === 'event_loop' || thread === 'worker', `the thread that scanned it: ${String(thread)}`)
    assert.deepEqual(refused?.attributes, { 'nostr.filters': 1, 'nostr.closed_reason': 'invalid' })
  })

  it('traces a COUNT until its answer', async () => {
    assert.deepEqual(await client.count('n', { '#t': [SECRET_TAG] }), ['COUNT', 'n', { count: 1 }])
    const [counted] = await ended('relay.count', 1)
    assert.deepEqual(counted?.attributes, { 'nostr.filters': 1, 'nostr.count': 1 })
  })

  it('never records content or tag values', () => {
    const spans = exporter.getFinishedSpans()
    assert.ok(spans.length >= 6)
    const recorded = JSON.stringify(spans.map(s => [s.name, s.attributes, s.events, s.status]))
    for (const secret of [SECRET_CONTENT, SECRET_TAG]) assert.equal(recorded.includes(secret), false, secret)
  })
})

describe('relay tracing: AUTH, fan-out, and the hint publish continuing the EVENT', () => {
  let push: PushEndpoint
  let relay: TestRelay
  let client: TestClient

  before(async () => {
    push = await new PushEndpoint().start()
    relay = await startTestRelay({
      'auth.enabled': true,
      'network.public_url': TEST_PUBLIC_URL,
      'auth.auth_required_kinds': [],
      'hints.transport': 'local',
      'hints.push_url': push.url,
    })
    client = await TestClient.connect(relay.url)
  })

  after(async () => {
    await client?.close()
    await relay?.close()
    await push?.close()
  })

  it('traces AUTH to its answer', async () => {
    exporter.reset()
    await client.authOk(newSigner())
    const bad = await client.auth(newSigner(), { relay: 'wss://elsewhere.example' })
    assert.equal(bad[2], false)
    const [accepted, refused] = await ended('relay.auth', 2)
    assert.equal(accepted?.attributes['nostr.outcome'], 'authenticated')
    assert.equal(refused?.attributes['nostr.outcome'], 'auth-required')
  })

  it("gives the hint publish the EVENT span as parent, sends that context on, and fans out under the EVENT", async () => {
    exporter.reset()
    const reader = await TestClient.connect(relay.url)
    try {
      await reader.req('live', { kinds: [445], limit: 0 })
      const message = sign(newSigner(), { kind: 445, tags: [['h', 'a1b2c3'], ['k', '2']], content: SECRET_CONTENT })
      await client.publishOk(message)
      const got = await push.waitFor(message.id)
      const [event] = (await ended('relay.event', 1)).filter(s => s.attributes['nostr.event_id'] === message.id)
      const [publish] = await ended('relay.hint.publish', 1)
      const [fanout] = await ended('relay.fanout', 1)
      assert.ok(event && publish && fanout)
      assert.equal(publish.spanContext().traceId, event.spanContext().traceId)
      assert.equal(publish.parentSpanContext?.spanId, event.spanContext().spanId, 'publish is a child of the EVENT (its context came through the outbox)')
      assert.deepEqual(publish.attributes, { 'nostr.kind': 445, 'nostr.event_id': message.id, 'messaging.system': 'local', 'nostr.outcome': 'published' })
      assert.equal(got.attributes.traceparent, `00-${event.spanContext().traceId}-${publish.spanContext().spanId}-01`, 'the bus carries the publish span')
      assert.equal(fanout.parentSpanContext?.spanId, event.spanContext().spanId)
      assert.equal(fanout.attributes['nostr.deliveries'], 1)
    } finally {
      await reader.close()
    }
  })
})
