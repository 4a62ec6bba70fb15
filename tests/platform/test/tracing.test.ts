// One trace across the platform (the observability issue): `npm start` with OTLP/JSON export to a receiver
// in this test; a client's 445 gives one trace whose spans come from the relay and the mailbox API, the
// registry update a descendant of the relay's `relay.event`. Incoming traceparent and X-Cloud-Trace-Context
// on HTTP requests are honoured, log lines inside a span carry its trace, and no span carries content. On the
// Pub/Sub emulator: the hint's trace through a pull consumer, and an EVENT's trace across two relay replicas.
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { createMailboxClient } from '@msr/mailbox-client'
import { ancestry, descendsFrom, startOtlpReceiver, type OtlpReceiver, type ReceivedSpan } from './otlp-receiver.js'
import {
  createHintBus,
  eventually,
  freePort,
  MAILBOX_CLI,
  newSigner,
  RELAY_CLI,
  RelayClient,
  removeDir,
  sign,
  spawnService,
  START,
  tempDir,
  useEmulator,
  waitReady,
  type Service,
} from './platform.js'

/** OTLP's SpanKind value for a server span. */
const SERVER = 2

/** A service on the Pub/Sub emulator exporting its spans over OTLP/HTTP JSON to the test's receiver, batched every 100 ms. */
const exportingTo = (endpoint: string, emulatorHost: string): Record<string, string> => ({
  PUBSUB_EMULATOR_HOST: emulatorHost,
  METADATA_SERVER_DETECTION: 'none',
  NODE_OPTIONS: '--import @msr/telemetry/register',
  OTEL_TRACES_EXPORTER: 'otlp',
  OTEL_EXPORTER_OTLP_ENDPOINT: endpoint,
  OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
  OTEL_BSP_SCHEDULE_DELAY: '100',
})

describe('tracing across the platform (npm start, OTLP http/json)', () => {
  let dir: string
  let receiver: OtlpReceiver
  let platform: Service
  let relayUrl: string
  let mailboxUrl: string

  before(async () => {
    dir = await tempDir()
    receiver = await startOtlpReceiver()
    const [relay, mailbox, pg] = [await freePort(), await freePort(), await freePort()]
    relayUrl = `ws://127.0.0.1:${relay}`
    mailboxUrl = `http://127.0.0.1:${mailbox}`
    platform = spawnService(START, [], {
      RELAY_PORT: String(relay),
      MAILBOX_PORT: String(mailbox),
      RELAY_DATA__PATH: join(dir, 'relay'),
      MAILBOX_DATA_DIR: join(dir, 'postgres'),
      MAILBOX_EMBEDDED_PG_PORT: String(pg),
      LOG_LEVEL: 'debug',
      GOOGLE_CLOUD_PROJECT: 'msr-test-project',
      OTEL_TRACES_EXPORTER: 'otlp',
      OTEL_EXPORTER_OTLP_ENDPOINT: receiver.endpoint,
      OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
      OTEL_BSP_SCHEDULE_DELAY: '100',
    })
    await waitReady(platform, `${mailboxUrl}/readyz`, 'the mailbox API')
    await waitReady(platform, `${relayUrl.replace('ws:', 'http:')}/readyz`, 'the relay')
  })

  after(async () => {
    await platform?.stop()
    await receiver?.close()
    await removeDir(dir)
  })

  /** The first received span matching `predicate`, waiting for the exporters' next batch. */
  const span = (predicate: (s: ReceivedSpan) => boolean, what: string): Promise<ReceivedSpan> =>
    eventually(async () => receiver.spans.find(predicate), `${what} (received: ${[...new Set(receiver.spans.map(s => `${s.service}:${s.name}`))].join(', ')}; refused: ${receiver.refused.join('; ')})`)

  it('a 445 with an h tag gives one trace from relay.event to the mailbox registry update', async () => {
    const group = `group-${randomBytes(6).toString('hex')}`
    const content = `mls ciphertext ${randomBytes(8).toString('hex')}`
    const client = await RelayClient.connect(relayUrl)
    const message = sign(newSigner(), 445, [['h', group], ['k', '7']], content)
    try {
      await client.auth(newSigner(), relayUrl)
      assert.deepEqual(await client.publish(message), ['OK', message.id, true, ''])
    } finally {
      client.close()
    }
    const event = await span(s => s.service === 'msr-relay' && s.name === 'relay.event' && s.attributes['nostr.event_id'] === message.id, 'the relay.event span of the 445')
    assert.equal(event.attributes['nostr.kind'], 445)
    assert.equal(event.attributes['nostr.outcome'], 'stored')
    const update = await span(
      s => s.service === 'msr-mailbox' && s.name === 'mailbox.registry.update' && s.traceId === event.traceId,
      "the mailbox's registry update in the 445's trace",
    )
    const trace = () => receiver.spans.filter(s => s.traceId === event.traceId)
    // The two services export in batches of their own: the relay's publish span may arrive after the
    // mailbox's spans, so the chain is complete only once it has.
    await eventually(
      async () => (descendsFrom(trace(), update, event) ? true : undefined),
      'the registry update under relay.event',
    ).catch(() => undefined)
    assert.ok(descendsFrom(trace(), update, event), `registry update under relay.event: ${ancestry(trace(), update).join(' ← ')}`)
    const publish = trace().find(s => s.name === 'relay.hint.publish')
    const consume = trace().find(s => s.name === 'mailbox.hint.consume')
    assert.ok(publish && consume, `publish and consume spans in the trace: ${trace().map(s => s.name).join(', ')}`)
    assert.ok(descendsFrom(trace(), publish, event), 'the hint publish is a child of the EVENT span (through the outbox)')
    assert.ok(descendsFrom(trace(), consume, publish), 'the consume continues the publish')
    assert.equal(consume.attributes['mailbox.outcome'], 'applied')
    // The automatic spans: the push request's HTTP server span and the transaction's pg queries.
    const httpServer = await span(s => s.traceId === event.traceId && s.service === 'msr-mailbox' && s.kind === SERVER && /POST/.test(s.name), 'the push request as an HTTP server span')
    assert.ok(descendsFrom(trace(), httpServer, publish), 'the local transport carried the context as headers')
    const query = await span(s => s.traceId === event.traceId && s.service === 'msr-mailbox' && s.name.startsWith('pg.query:INSERT'), 'a pg query span in the trace')
    assert.ok(descendsFrom(trace(), query, consume), 'the queries run inside the consume span')
    // No content, no tag values anywhere in the trace.
    for (const s of trace())
      for (const [key, value] of Object.entries(s.attributes)) {
        assert.ok(!String(value).includes(content), `${s.name}.${key} carries the content`)
        assert.ok(!String(value).includes(group), `${s.name}.${key} carries the group id`)
      }
    // The mailbox's log line written inside the consume span names its trace in the Cloud Logging form.
    const line = await eventually(
      async () => platform.output.find(l => l.includes('"hint consumed"') && l.includes(message.id)),
      "the mailbox's hint consumed log line",
    )
    const logged = JSON.parse(line) as Record<string, unknown>
    assert.equal(logged['logging.googleapis.com/trace'], `projects/msr-test-project/traces/${event.traceId}`)
    assert.equal(logged['logging.googleapis.com/spanId'], consume.spanId)
    assert.equal(logged['logging.googleapis.com/trace_sampled'], true)
  })

  it("honours an incoming traceparent, and Cloud Run's X-Cloud-Trace-Context, on the mailbox API", async () => {
    const client = createMailboxClient({ baseUrl: mailboxUrl, signer: newSigner().secretKey })
    const w3cTrace = randomBytes(16).toString('hex')
    const w3cParent = randomBytes(8).toString('hex')
    await fetch(`${mailboxUrl}/api/v1/openapi.json`, { headers: { traceparent: `00-${w3cTrace}-${w3cParent}-01` } })
    const child = await span(s => s.traceId === w3cTrace && s.service === 'msr-mailbox' && s.kind === SERVER, 'the HTTP server span in the traceparent trace')
    assert.equal(child.parentSpanId, w3cParent)

    const cloudTrace = randomBytes(16).toString('hex')
    await fetch(`${mailboxUrl}/api/v1/openapi.json`, { headers: { 'x-cloud-trace-context': `${cloudTrace}/1234567;o=1` } })
    const cloudChild = await span(s => s.traceId === cloudTrace && s.service === 'msr-mailbox' && s.kind === SERVER, 'the HTTP server span in the X-Cloud-Trace-Context trace')
    assert.equal(cloudChild.parentSpanId, BigInt(1234567).toString(16).padStart(16, '0'))
    await client.groups.get('no-such-group').catch(() => undefined)
    const get = await span(s => s.name === 'mailbox.registry.get', 'the registry get operation span')
    assert.ok(get.parentSpanId, 'under the automatic HTTP/Express spans')
  })

  it('makes no span for probes and scrapes', async () => {
    await fetch(`${mailboxUrl}/readyz`)
    await fetch(`${mailboxUrl}/healthz`)
    await span(s => s.name === 'mailbox.registry.get', 'spans of the earlier requests')
    assert.equal(receiver.spans.filter(s => /readyz|healthz/.test(String(s.attributes['url.path'] ?? s.attributes['http.target'] ?? s.name))).length, 0)
  })
})

describe('tracing through Pub/Sub (emulator, streaming pull)', () => {
  const pubsub = useEmulator('msr-tracing')

  it("carries the EVENT's trace in the message attributes to the pull consumer's registry update", async t => {
    const emulator = pubsub.current()
    if (!emulator) return t.skip(`no Pub/Sub emulator on this machine (${pubsub.missing}); the local-transport trace above still ran`)
    await createHintBus(emulator)
    const dir = await tempDir()
    const receiver = await startOtlpReceiver()
    const [relayPort, mailboxPort, pg] = [await freePort(), await freePort(), await freePort()]
    const relayUrl = `ws://127.0.0.1:${relayPort}`
    const common = { ...exportingTo(receiver.endpoint, emulator.host), GOOGLE_CLOUD_PROJECT: emulator.projectId }
    const relay = spawnService(RELAY_CLI, ['serve'], {
      ...common,
      OTEL_SERVICE_NAME: 'msr-relay',
      MSR_TRACE_CONTEXT: 'sync',
      PORT: String(relayPort),
      RELAY_DATA__PATH: join(dir, 'relay'),
      RELAY_AUTH__AUTH_REQUIRED_KINDS: '[]',
      RELAY_HINTS__TRANSPORT: 'pubsub',
      RELAY_HINTS__PROJECT_ID: emulator.projectId,
    })
    const mailbox = spawnService(MAILBOX_CLI, ['serve'], {
      ...common,
      OTEL_SERVICE_NAME: 'msr-mailbox',
      PORT: String(mailboxPort),
      MAILBOX_DATA_DIR: join(dir, 'postgres'),
      MAILBOX_EMBEDDED_PG_PORT: String(pg),
      HINTS_SUBSCRIPTION: 'mailbox-group-hints',
    })
    try {
      await waitReady(relay, `http://127.0.0.1:${relayPort}/readyz`, 'the relay')
      await waitReady(mailbox, `http://127.0.0.1:${mailboxPort}/readyz`, 'the mailbox API')
      const client = await RelayClient.connect(relayUrl)
      const message = sign(newSigner(), 445, [['h', `group-${randomBytes(6).toString('hex')}`], ['k', '1']], 'mls ciphertext')
      try {
        assert.deepEqual(await client.publish(message), ['OK', message.id, true, ''])
      } finally {
        client.close()
      }
      const find = (predicate: (s: ReceivedSpan) => boolean, what: string) =>
        eventually(async () => receiver.spans.find(predicate), `${what} (received: ${[...new Set(receiver.spans.map(s => `${s.service}:${s.name}`))].join(', ')})`)
      const event = await find(s => s.name === 'relay.event' && s.attributes['nostr.event_id'] === message.id, 'the relay.event span')
      const update = await find(s => s.name === 'mailbox.registry.update' && s.traceId === event.traceId, 'the registry update in the same trace')
      const trace = receiver.spans.filter(s => s.traceId === event.traceId)
      assert.equal(update.service, 'msr-mailbox')
      assert.ok(descendsFrom(trace, update, event), ancestry(trace, update).join(' ← '))
      const consume = trace.find(s => s.name === 'mailbox.hint.consume')
      assert.equal(consume?.attributes['mailbox.via'], 'pull')
    } finally {
      await relay.stop()
      await mailbox.stop()
      await receiver.close()
      await removeDir(dir)
    }
  })

  it("across relay replicas (two msr-relay serve processes): finds replica B's apply span, with its fan-out, in the trace of the EVENT sent to replica A", async t => {
    const emulator = pubsub.current()
    if (!emulator) return t.skip(`no Pub/Sub emulator on this machine (${pubsub.missing})`)
    await emulator.createTopic('msr-relay-events', { retentionSeconds: 86_400 })
    const dir = await tempDir()
    const receiver = await startOtlpReceiver()
    const [portA, portB] = [await freePort(), await freePort()]
    /** A replica exporting its spans to the receiver as `msr-relay-<id>`. */
    const replica = (id: string, port: number) =>
      spawnService(RELAY_CLI, ['serve'], {
        ...exportingTo(receiver.endpoint, emulator.host),
        OTEL_SERVICE_NAME: `msr-relay-${id}`,
        MSR_TRACE_CONTEXT: 'sync',
        PORT: String(port),
        RELAY_DATA__PATH: join(dir, id),
        RELAY_REPLICATION__TOPIC: 'msr-relay-events',
        RELAY_REPLICATION__REPLICA_ID: id,
        RELAY_REPLICATION__PROJECT_ID: emulator.projectId,
        RELAY_REPLICATION__CATCH_UP_QUIET: '"500ms"',
        RELAY_REPLICATION__ACK_TIMEOUT: '"10s"',
      })
    const [a, b] = [replica('a', portA), replica('b', portB)]
    try {
      await waitReady(a, `http://127.0.0.1:${portA}/readyz`, 'replica a')
      await waitReady(b, `http://127.0.0.1:${portB}/readyz`, 'replica b')
      const author = newSigner()
      const reader = await RelayClient.connect(`ws://127.0.0.1:${portB}`)
      const writer = await RelayClient.connect(`ws://127.0.0.1:${portA}`)
      const message = sign(author, 1, [], `replicated ${randomBytes(8).toString('hex')}`)
      try {
        reader.send(['REQ', 'live', { authors: [author.pubkey] }])
        await reader.next(m => m[0] === 'EOSE' && m[1] === 'live', 'the live subscription on b')
        assert.deepEqual(await writer.publish(message), ['OK', message.id, true, ''])
        await reader.next(m => m[0] === 'EVENT' && m[1] === 'live', 'the event delivered live on b')
      } finally {
        writer.close()
        reader.close()
      }
      const find = (predicate: (s: ReceivedSpan) => boolean, what: string) =>
        eventually(async () => receiver.spans.find(predicate), `${what} (received: ${[...new Set(receiver.spans.map(s => `${s.service}:${s.name}`))].join(', ')})`)
      const event = await find(s => s.service === 'msr-relay-a' && s.name === 'relay.event' && s.attributes['nostr.event_id'] === message.id, "a's relay.event span")
      const apply = await find(s => s.service === 'msr-relay-b' && s.name === 'relay.replication.apply' && s.attributes['nostr.event_id'] === message.id, "b's apply span")
      const fanout = await find(s => s.service === 'msr-relay-b' && s.name === 'relay.fanout' && s.traceId === event.traceId, "b's fan-out in the EVENT's trace")
      const publish = await find(s => s.service === 'msr-relay-a' && s.name === 'relay.replication.publish' && s.traceId === event.traceId, "a's publish span in the EVENT's trace")
      const trace = receiver.spans.filter(s => s.traceId === event.traceId)
      assert.equal(apply.traceId, event.traceId, "b's apply span is in the trace of the EVENT sent to a")
      assert.equal(publish.parentSpanId, event.spanId, 'the publish is a child of the EVENT (its context kept in the replication outbox)')
      assert.equal(apply.parentSpanId, publish.spanId, "the apply's parent is the message's traceparent: a's publish span")
      assert.ok(descendsFrom(trace, fanout, apply), `b's fan-out under its apply: ${ancestry(trace, fanout).join(' ← ')}`)
      assert.deepEqual(apply.attributes, { 'nostr.origin_replica': 'a', 'nostr.kind': 1, 'nostr.event_id': message.id, 'messaging.system': 'gcp_pubsub', 'nostr.outcome': 'stored' })
      assert.deepEqual(publish.attributes, { 'nostr.kind': 1, 'nostr.event_id': message.id, 'messaging.system': 'gcp_pubsub', 'nostr.outcome': 'published' })
      assert.equal(receiver.spans.filter(s => s.service === 'msr-relay-a' && s.name === 'relay.replication.apply').length, 0, 'a drops its own message without an apply span')
    } finally {
      await Promise.all([a.stop(), b.stop()])
      await receiver.close()
      await removeDir(dir)
    }
  })
})
