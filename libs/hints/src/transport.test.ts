import assert from 'node:assert/strict'
import { createServer, type IncomingHttpHeaders, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { after, before, describe, it, type TestContext } from 'node:test'
import { PubSub, type Message } from '@google-cloud/pubsub'
import { findEmulator, startEmulator, type RunningEmulator } from './emulator.js'
import { decodePushEnvelope } from './envelope.js'
import { decodeHint, hintAttributes, type Hint } from './hint.js'
import { createLocalTransport, createPubSubTransport, pubSubClientOptions } from './transport.js'

// Keep google-auth-library off the network: no metadata server exists here.
process.env.METADATA_SERVER_DETECTION = 'none'

const TOKEN = 'local-push-secret'
const TRACE = { traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01', tracestate: 'rojo=00f067aa0ba902b7' }
const hex = (n: number): string => n.toString(16).padStart(64, '0')

let serial = 0
const groupHint = (group: string, epoch: number): Hint => ({ v: 1, id: hex(++serial), kind: 445, pubkey: hex(9999), created_at: 1_700_000_000, group, epoch })
const dmHint = (): Hint => ({ v: 1, id: hex(++serial), kind: 446, pubkey: hex(9999), created_at: 1_700_000_000, recipients: [hex(1), hex(2)] })

interface Received {
  method: string | undefined
  url: string | undefined
  headers: IncomingHttpHeaders
  body: unknown
}

/** A push endpoint on a loopback port that records each request and answers with `respond`. */
const pushEndpoint = async (respond: (res: ServerResponse) => void = res => res.writeHead(204).end()) => {
  const received: Received[] = []
  const server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      received.push({ method: req.method, url: req.url, headers: req.headers, body: JSON.parse(Buffer.concat(chunks).toString('utf8')) })
      respond(res)
    })
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/push`
  const close = (): Promise<void> => {
    server.closeAllConnections()
    return new Promise(resolve => server.close(() => resolve()))
  }
  return { url, received, close }
}

describe('local transport', () => {
  it('POSTs the push envelope of the hint with the Bearer token', async () => {
    const endpoint = await pushEndpoint()
    const transport = createLocalTransport({ pushUrl: endpoint.url, token: TOKEN })
    const hint = groupHint('g1', 4)
    assert.equal(transport.name, 'local')
    assert.equal(await transport.publish(hint, { trace: TRACE }), hint.id)
    await transport.close()
    await endpoint.close()

    const [request] = endpoint.received
    assert.ok(request)
    assert.equal(request.method, 'POST')
    assert.equal(request.url, '/push')
    assert.equal(request.headers.authorization, `Bearer ${TOKEN}`)
    assert.equal(request.headers['content-type'], 'application/json')
    assert.equal(request.headers.traceparent, TRACE.traceparent, 'the trace context as a header too')
    assert.equal(request.headers.tracestate, TRACE.tracestate)
    const { message, subscription } = request.body as { message: Record<string, unknown>; subscription: string }
    assert.equal(subscription, 'projects/local/subscriptions/mailbox-hints')
    assert.deepEqual(JSON.parse(Buffer.from(message.data as string, 'base64').toString('utf8')), hint)
    assert.deepEqual(message.attributes, hintAttributes(hint, TRACE))
    assert.equal(message.orderingKey, 'g1')
    assert.equal(message.messageId, hint.id)
    assert.deepEqual(decodePushEnvelope(request.body), { ok: true, hint, messageId: hint.id, attributes: hintAttributes(hint, TRACE) })
  })

  it('sends no Authorization without a token, no ordering key for a 446, and the given subscription', async () => {
    const endpoint = await pushEndpoint(res => res.writeHead(200).end('ok'))
    const transport = createLocalTransport({ pushUrl: endpoint.url, subscription: 'projects/p/subscriptions/s' })
    await transport.publish(dmHint())
    await transport.close()
    await endpoint.close()
    const [request] = endpoint.received
    assert.ok(request)
    assert.equal(request.headers.authorization, undefined)
    const { message, subscription } = request.body as { message: Record<string, unknown>; subscription: string }
    assert.equal('orderingKey' in message, false)
    assert.equal(subscription, 'projects/p/subscriptions/s')
  })

  it('rejects an answer other than 2xx with the URL and status, never the token', async () => {
    const endpoint = await pushEndpoint(res => res.writeHead(503).end('busy'))
    const transport = createLocalTransport({ pushUrl: `${endpoint.url}?token=${TOKEN}`, token: TOKEN })
    const err = await transport.publish(groupHint('g1', 1)).then(() => assert.fail('published'), (e: Error) => e)
    assert.equal(err.message, `push to ${endpoint.url}: HTTP 503`)
    await transport.close()
    await endpoint.close()
  })

  it('rejects when the endpoint does not answer in time or is not there', async () => {
    const endpoint = await pushEndpoint(() => undefined)
    const slow = createLocalTransport({ pushUrl: endpoint.url, token: TOKEN, timeoutMs: 200 })
    await assert.rejects(slow.publish(groupHint('g1', 1)), (e: Error) => e.message === `push to ${endpoint.url}: no answer within 200 ms`)
    await endpoint.close()
    const gone = createLocalTransport({ pushUrl: endpoint.url, token: TOKEN })
    await assert.rejects(gone.publish(groupHint('g1', 1)), (e: Error) => e.message === `push to ${endpoint.url}: ECONNREFUSED`)
  })

  it('waits for publishes in flight on close, then refuses new ones', async () => {
    const endpoint = await pushEndpoint(res => setTimeout(() => res.writeHead(204).end(), 100))
    const transport = createLocalTransport({ pushUrl: endpoint.url })
    let published = false
    const publishing = transport.publish(groupHint('g1', 1)).then(() => (published = true))
    await transport.close()
    assert.equal(published, true)
    await publishing
    await assert.rejects(transport.publish(groupHint('g1', 2)), /local transport is closed/)
    await endpoint.close()
  })
})

const emulator = findEmulator()

/** Receives `count` messages from a subscription, acking each, in delivery order. */
const pull = (client: PubSub, subscription: string, count: number, timeoutMs = 20_000): Promise<Message[]> =>
  new Promise((resolve, reject) => {
    const sub = client.subscription(subscription)
    const got: Message[] = []
    const finish = (err?: Error): void => {
      clearTimeout(timer)
      sub.removeAllListeners('message')
      void sub.close().then(() => (err ? reject(err) : resolve(got)), reject)
    }
    const timer = setTimeout(() => finish(new Error(`${subscription}: ${got.length} of ${count} messages after ${timeoutMs} ms`)), timeoutMs)
    sub.on('message', (m: Message) => {
      m.ack()
      if (got.push(m) === count) finish()
    })
    sub.on('error', finish)
  })

describe('Pub/Sub client options', () => {
  it("cap the gRPC channel's reconnect backoff (120 s unset, so a recovered bus went unnoticed for minutes) when asked", () => {
    assert.equal(pubSubClientOptions({ maxReconnectBackoffMs: 2000 })['grpc.max_reconnect_backoff_ms'], 2000)
    assert.equal(pubSubClientOptions({})['grpc.max_reconnect_backoff_ms'], undefined)
  })
})

describe('Pub/Sub transport, endpoint unreachable', () => {
  it('rejects a publish once its timeout has passed instead of retrying for the library default of 600 s', async () => {
    const closed = await pushEndpoint()
    await closed.close() // a loopback port nothing listens on any more
    const host = new URL(closed.url).host
    const transport = createPubSubTransport({ projectId: 'unreachable', emulatorHost: host, timeoutMs: 1500 })
    const guard = new Promise<never>((_, reject) => setTimeout(() => reject(new Error('still pending after 30 s')), 30_000).unref())
    await assert.rejects(Promise.race([transport.publish(groupHint('omega', 0)), guard]), (err: Error) => {
      assert.match(err.message, /^publish to topic mls-group-hints: Total timeout of API google\.pubsub\.v1\.Publisher exceeded 1500 milliseconds/)
      assert.doesNotMatch(err.message, /Previous errors/, 'one line, not every retried attempt')
      return true
    })
    await transport.close()
  })
})

describe('Pub/Sub transport against the emulator', () => {
  let emu: RunningEmulator | undefined
  let reader: PubSub | undefined
  let startMs = 0

  before(async () => {
    if ('missing' in emulator) return
    const t0 = performance.now()
    emu = await startEmulator()
    startMs = Math.round(performance.now() - t0)
    reader = new PubSub({ projectId: emu.projectId, apiEndpoint: emu.host, emulatorMode: true, universeDomain: 'googleapis.com' })
  })
  after(async () => {
    await reader?.close()
    await emu?.stop()
  })

  /** The running emulator, or undefined after marking the test skipped with why. */
  const running = (t: TestContext): RunningEmulator | undefined => {
    if ('missing' in emulator) return void t.skip(emulator.missing)
    t.diagnostic(`emulator ${emu?.host} started in ${startMs} ms`)
    return emu
  }

  /** Fresh topics, each with an ordered subscription named after it. */
  const topicsFor = async (emu: RunningEmulator, prefix: string) => {
    const topics = { group: `${prefix}-group-hints`, dm: `${prefix}-dm-hints` }
    for (const name of Object.values(topics)) {
      await emu.createTopic(name)
      await emu.createSubscription(name, `${name}-sub`, { enableMessageOrdering: true, ackDeadlineSeconds: 30 })
    }
    return topics
  }

  it('publishes 445s in order per group and a 446, with data, attributes and ordering key', async t => {
    const emu = running(t)
    if (!emu || !reader) return
    const topics = await topicsFor(emu, 'order')
    const transport = createPubSubTransport({ projectId: emu.projectId, emulatorHost: emu.host, topics })
    assert.equal(transport.name, 'pubsub')
    // Interleaved groups, published without waiting, as an outbox drainer would.
    const groupHints = [0, 1, 2, 3, 4, 5].flatMap(epoch => [groupHint('alpha', epoch), groupHint('beta', epoch)])
    const dm = dmHint()
    const ids = await Promise.all([...groupHints, dm].map(h => transport.publish(h, { trace: TRACE })))
    assert.equal(new Set(ids).size, ids.length)
    await transport.close()

    const byId = new Map([...groupHints, dm].map(h => [h.id, h]))
    const received = await pull(reader, `${topics.group}-sub`, groupHints.length)
    for (const m of received) {
      const decoded = decodeHint(m.data)
      assert.ok(decoded.ok)
      assert.deepEqual(decoded.hint, byId.get(decoded.hint.id))
      assert.deepEqual(m.attributes, hintAttributes(decoded.hint, TRACE))
      assert.equal(m.orderingKey, decoded.hint.group)
    }
    const epochsOf = (group: string) => received.map(m => JSON.parse(m.data.toString()) as Hint).filter(h => h.group === group).map(h => h.epoch)
    assert.deepEqual(epochsOf('alpha'), [0, 1, 2, 3, 4, 5])
    assert.deepEqual(epochsOf('beta'), [0, 1, 2, 3, 4, 5])

    const [dmMessage] = await pull(reader, `${topics.dm}-sub`, 1)
    assert.deepEqual(decodeHint(dmMessage?.data ?? ''), { ok: true, hint: dm })
    assert.deepEqual(dmMessage?.attributes, hintAttributes(dm, TRACE))
    assert.equal(dmMessage?.orderingKey, '')
  })

  it('rejects a publish to a missing topic, and publishes for the same group once the topic exists', async t => {
    const emu = running(t)
    if (!emu) return
    const topics = { group: 'absent-group-hints', dm: 'absent-dm-hints' }
    const transport = createPubSubTransport({ projectId: emu.projectId, emulatorHost: emu.host, topics })
    await assert.rejects(transport.publish(groupHint('gamma', 0)), /^Error: publish to topic absent-group-hints: 5 NOT_FOUND/)
    await assert.rejects(transport.publish(dmHint()), /^Error: publish to topic absent-dm-hints: 5 NOT_FOUND/)
    // The outbox retries the failed hint: its ordering key must not stay paused.
    await emu.createTopic(topics.group)
    assert.match(await transport.publish(groupHint('gamma', 0)), /^\d+$/)
    await transport.close()
  })

  it('flushes a batch still waiting on close, then refuses new publishes', async t => {
    const emu = running(t)
    if (!emu || !reader) return
    const topics = await topicsFor(emu, 'close')
    const transport = createPubSubTransport({ projectId: emu.projectId, emulatorHost: emu.host, topics, maxDelayMs: 60_000 })
    const hint = groupHint('delta', 0)
    const publishing = transport.publish(hint)
    const t0 = performance.now()
    await transport.close()
    assert.ok(performance.now() - t0 < 30_000, 'close waited out the batching delay')
    assert.match(await publishing, /^\d+$/)
    await assert.rejects(transport.publish(groupHint('delta', 1)), /pubsub transport is closed/)
    const [message] = await pull(reader, `${topics.group}-sub`, 1)
    assert.deepEqual(decodeHint(message?.data ?? ''), { ok: true, hint })
  })
})
