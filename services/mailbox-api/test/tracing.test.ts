// The mailbox API's own spans with an SDK registered in this process: one per operation (deposit, list, ack,
// registry update, hint consume) with its outcome, a pushed hint continuing the trace its attributes name,
// and nothing of an artifact in any attribute.
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { context, SpanStatusCode, trace } from '@opentelemetry/api'
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks'
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from '@opentelemetry/sdk-trace-base'
import request from 'supertest'
import { encodeHint, encodePushEnvelope, hintAttributes, type Hint } from '@msr/hints'
import { b64, buildTestApp, expectError, expectStatus, newSigner, now, qs, startPostgres, type TestApp, type TestPostgres } from './harness.js'

const exporter = new InMemorySpanExporter()
context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable())
trace.setGlobalTracerProvider(new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] }))

const PUSH_TOKEN = 'push-token-of-good-length'
const named = (name: string): ReadableSpan[] => exporter.getFinishedSpans().filter(s => s.name === name)

describe('mailbox spans', () => {
  let pg: TestPostgres
  let api: TestApp

  before(async () => {
    pg = await startPostgres()
    api = await buildTestApp(pg.pool, { HINTS_PUSH_TOKEN: PUSH_TOKEN })
  })

  after(async () => {
    await pg?.close()
  })

  it('one span per deposit, list and ack, with the outcome (an error code for a refusal)', async () => {
    exporter.reset()
    const [alice, bob] = [newSigner(), newSigner()]
    const artifact = b64(300)
    const deposited = await api.api.post('/keypackages', alice, { recipient: bob.pubkey, content_b64: artifact })
    expectStatus(deposited, 201)
    expectStatus(await api.api.get(`/keypackages${qs({ recipient: bob.pubkey })}`, bob), 200)
    expectError(await api.api.get(`/keypackages${qs({ recipient: bob.pubkey })}`, alice), 403, 'FORBIDDEN')
    expectStatus(await api.api.post(`/keypackages/${(deposited.body as { id: string }).id}/ack`, bob), 200)

    const [deposit] = named('mailbox.deposit')
    assert.deepEqual(deposit?.attributes, { 'mailbox.kind': 'keypackage', 'mailbox.outcome': 'ok' })
    const [listed, refused] = named('mailbox.list')
    assert.deepEqual(listed?.attributes, { 'mailbox.kind': 'keypackage', 'mailbox.items': 1, 'mailbox.outcome': 'ok' })
    assert.equal(refused?.attributes['mailbox.outcome'], 'FORBIDDEN')
    assert.equal(refused?.status.code, SpanStatusCode.UNSET, "a client's mistake is not the server failing")
    assert.equal(named('mailbox.ack')[0]?.attributes['mailbox.outcome'], 'ok')
    assert.ok(!JSON.stringify(exporter.getFinishedSpans().map(s => [s.attributes, s.events])).includes(artifact), 'no artifact in any span')
  })

  it("continues the relay's trace from a pushed hint's attributes: consume, then the registry update inside it", async () => {
    exporter.reset()
    const relaySpan = new BasicTracerProvider().getTracer('relay').startSpan('relay.hint.publish')
    const { traceId, spanId } = relaySpan.spanContext()
    const hint: Hint = { v: 1, id: 'c'.repeat(64), kind: 445, pubkey: 'd'.repeat(64), created_at: now(), group: `g-${Date.now()}`, epoch: 3 }
    const body = encodePushEnvelope({
      data: encodeHint(hint),
      attributes: hintAttributes(hint, { traceparent: `00-${traceId}-${spanId}-01` }),
      messageId: '1',
      subscription: 'projects/p/subscriptions/s',
    })
    const push = () => request(api.app).post('/internal/pubsub/push').set('Authorization', `Bearer ${PUSH_TOKEN}`).send(body)
    expectStatus(await push(), 204)
    expectStatus(await push(), 204)

    const [applied, duplicate] = named('mailbox.hint.consume')
    assert.ok(applied && duplicate)
    assert.equal(applied.spanContext().traceId, traceId)
    assert.equal(applied.parentSpanContext?.spanId, spanId, 'a child of the publish span the attributes name')
    assert.deepEqual(applied.attributes, { 'nostr.kind': 445, 'nostr.event_id': hint.id, 'mailbox.via': 'push', 'mailbox.outcome': 'applied' })
    assert.equal(applied.links.length, 0, 'no request span in this process to link to')
    assert.equal(duplicate.attributes['mailbox.outcome'], 'duplicate')
    const [update] = named('mailbox.registry.update')
    assert.equal(update?.parentSpanContext?.spanId, applied.spanContext().spanId)
    assert.deepEqual(update?.attributes, { 'mailbox.source': 'hint', 'mailbox.outcome': 'ok' })
    assert.ok(!JSON.stringify(exporter.getFinishedSpans().map(s => s.attributes)).includes(hint.group as string), 'no group id in any span')
  })
})
