// The replication parts against a bus in memory (the end-to-end suite, test/replication.test.ts, runs them on
// the Pub/Sub emulator): a real LMDB store and the in-process writer.
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, afterEach, before, beforeEach, describe, it } from 'node:test'
import { createLogger } from '@msr/telemetry'
import { VerifierPool } from '@msr/workers'
import { BasicTracerProvider } from '@opentelemetry/sdk-trace-base'
import { loadRelayConfig } from '../config.js'
import { Writer } from '../pipeline/writer.js'
import { EventStore } from '../store/event-store.js'
import { signed, type Ready } from '../testing/fixtures.js'
import type { BusMessage, ReplicationBus } from './bus.js'
import type { ReplicationObserver } from './gate.js'
import { replicationOf, type Replication } from './replication.js'

/** A bus in memory: publishes wait until the test answers them; messages are handed to the subscriber by `deliver`. */
class MemoryBus implements ReplicationBus {
  readonly name = 'memory bus'
  readonly replicaId = 'me'
  readonly subscriptionName = 'memory'
  readonly published: Array<{ data: string; attributes: Record<string, string> }> = []
  private readonly answers: Array<(ok: boolean) => void> = []
  private onMessage: ((message: BusMessage) => void) | undefined
  /** Answers every publish at once (true), fails each (false), or leaves them waiting for `answer` (undefined). */
  mode: boolean | undefined = true

  start(): void {}
  async stop(): Promise<void> {}

  publish(data: Buffer, attributes: Record<string, string>): Promise<string> {
    this.published.push({ data: data.toString('utf8'), attributes })
    if (this.mode === true) return Promise.resolve(String(this.published.length))
    if (this.mode === false) return Promise.reject(new Error('bus unavailable'))
    return new Promise((resolve, reject) => this.answers.push(ok => (ok ? resolve('late') : reject(new Error('bus unavailable')))))
  }

  /** Answers every waiting publish. */
  answer(ok: boolean): void {
    for (const answer of this.answers.splice(0)) answer(ok)
  }

  get waiting(): number {
    return this.answers.length
  }

  subscribe(onMessage: (message: BusMessage) => void): void {
    this.onMessage = onMessage
  }
  async seek(): Promise<void> {}

  /** Hands one message to the subscriber; resolves with what it did with it. */
  deliver(data: string, attributes: Record<string, string>, publishedAt = Date.now()): Promise<'ack' | 'nack'> {
    return new Promise(resolve => this.onMessage?.({ data: Buffer.from(data), attributes, publishedAt, ack: () => resolve('ack'), nack: () => resolve('nack') }))
  }
}

/** Counts what the observer hears. */
const recorder = () => {
  const heard: string[] = []
  const observer: ReplicationObserver = {
    published: () => heard.push('published'),
    publishFailed: () => heard.push('publish failed'),
    okTimedOut: mode => heard.push(`timed out (${mode})`),
    outage: on => heard.push(on ? 'outage' : 'bus back'),
    received: outcome => heard.push(`received ${outcome}`),
    catchingUp: backlog => heard.push(`catching up (${backlog})`),
    caughtUp: (_, backlog) => heard.push(`caught up (${backlog})`),
  }
  return { heard, observer }
}

const until = async (condition: () => boolean, what: string): Promise<void> => {
  for (let i = 0; !condition(); i++) {
    assert.ok(i < 1000, `never: ${what}`)
    await new Promise(resolve => setTimeout(resolve, 10))
  }
}

const section = (env: Record<string, string>) => {
  const loaded = loadRelayConfig(undefined, { RELAY_REPLICATION__TOPIC: 'relay-events', RELAY_REPLICATION__ACK_TIMEOUT: '"100ms"', ...env })
  assert.ok(loaded.ok, loaded.ok ? '' : loaded.errors.join('\n'))
  return loaded.value.replication
}

describe('replication parts', () => {
  let dir: string
  let store: EventStore
  let writer: Writer
  let bus: MemoryBus
  let verifier: VerifierPool
  let replication: Replication
  let heard: string[]
  const fannedOut: string[] = []
  const logger = createLogger({ service: 'relay-test', level: 'fatal' })

  /** Builds and starts the parts for `[replication]` with these environment overrides. */
  const start = async (env: Record<string, string> = {}): Promise<Replication> => {
    const recorded = recorder()
    heard = recorded.heard
    const built = replicationOf(section(env), {
      store,
      writer,
      verifier,
      logger,
      observer: recorded.observer,
      fanOut: events => fannedOut.push(...events.map(e => e.event.id)),
      bus,
    })
    assert.ok(built)
    for (const part of built.parts) await part.start()
    return built
  }

  before(async () => {
    verifier = await VerifierPool.start(1, 'auto')
  })
  after(() => verifier.close())
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'msr-replication-'))
    store = EventStore.open(dir)
    writer = new Writer(store, error => assert.fail(String(error)))
    bus = new MemoryBus()
    fannedOut.length = 0
  })
  afterEach(async () => {
    for (const part of [...replication.parts].reverse()) await part.stop(Date.now() + 3000)
    await writer.close()
    await store.close()
    await rm(dir, { recursive: true, force: true })
  })

  /** Stores a client's event and answers it as the EVENT path does. */
  const accept = async ({ event, json }: Ready, span?: Parameters<Writer['submit']>[2]) =>
    replication.gate.confirm(event.id, await writer.submit(event, Buffer.from(json), span))

  it("publishes a client's stored event with origin, kind and trace context; its OK waits for the acknowledgment; the entry goes once confirmed", async () => {
    replication = await start()
    bus.mode = undefined
    const provider = new BasicTracerProvider()
    const span = provider.getTracer('test').startSpan('relay.event')
    const { traceId, spanId } = span.spanContext()
    const note = signed(1, { content: 'replicate me' })
    let answered = false
    const ok = accept(note, span).then(outcome => ((answered = true), outcome))
    await until(() => bus.waiting === 1, 'the publish')
    assert.deepEqual(bus.published, [{ data: note.json, attributes: { origin: 'me', kind: '1', traceparent: `00-${traceId}-${spanId}-01` } }])
    await new Promise(resolve => setImmediate(resolve))
    assert.equal(answered, false, 'answered before the bus confirmed')
    bus.answer(true)
    assert.deepEqual(await ok, { status: 'stored' })
    await until(() => (store.refresh(), store.replication.size() === 0), 'the entry to be removed')
  })

  it('refuses with error: after ack_timeout while the bus fails, keeps the event, publishes it once the bus works; a duplicate waits for the same acknowledgment', async () => {
    replication = await start()
    bus.mode = false
    const note = signed(2, { content: 'during an outage' })
    const refused = await accept(note)
    assert.equal(refused.status, 'rejected')
    assert.match(refused.status === 'rejected' ? refused.reason : '', /^error: not yet replicated: /)
    assert.equal(store.get(note.event.id), note.json, 'committed here')
    assert.deepEqual(await accept(note), refused, 'a duplicate of a pending event is answered like it')
    assert.ok(heard.includes('outage') && heard.includes('publish failed') && heard.includes('timed out (refuse)'), heard.join(', '))
    bus.mode = true
    await until(() => (store.refresh(), store.replication.size() === 0), 'the outbox to drain once the bus works')
    assert.ok(bus.published.filter(p => p.data === note.json).length >= 2, 'published again after the failure')
    assert.deepEqual(await accept(note), { status: 'duplicate' })
    assert.equal(heard.at(-1) === 'bus back' || heard.includes('bus back'), true)
  })

  it('answers OK true on the local commit under on_bus_outage = "local"', async () => {
    replication = await start({ RELAY_REPLICATION__ON_BUS_OUTAGE: 'local' })
    bus.mode = undefined
    assert.deepEqual(await accept(signed(3, {})), { status: 'stored' })
    assert.ok(heard.includes('timed out (local)'))
    bus.answer(true)
  })

  it('publishes at start what an earlier run left in the outbox; a duplicate EVENT of it waits for that acknowledgment', async () => {
    store.replicating = true
    const left = signed(4, { content: 'left behind' })
    await writer.submit(left.event, Buffer.from(left.json))
    assert.equal(bus.published.length, 0)
    bus.mode = undefined
    replication = await start()
    const outcome = await writer.submit(left.event, Buffer.from(left.json))
    assert.deepEqual(outcome, { status: 'duplicate' })
    let answered = false
    const duplicate = replication.gate.confirm(left.event.id, outcome).then(answer => ((answered = true), answer))
    await until(() => bus.waiting === 1, 'the old entry to be published')
    await new Promise(resolve => setImmediate(resolve))
    assert.equal(answered, false, 'the duplicate was answered before the bus confirmed the event')
    bus.answer(true)
    assert.deepEqual(await duplicate, { status: 'duplicate' })
    await until(() => (store.refresh(), store.replication.size() === 0), 'the old entry to be removed')
    assert.deepEqual(bus.published.map(p => p.data), [left.json])
  })

  it('fans out locally, once the bus confirms it, what an earlier run or a restore left in the outbox (nobody waits for it): once each, not when replaced since; this run\'s events only from their commit', async () => {
    store.replicating = true
    const left = signed(14, { content: 'left behind, live subscribers never saw it' })
    const replaced = signed(15, { kind: 0, created_at: 1_700_000_000, content: '{"name":"old"}' })
    for (const e of [left, replaced]) await writer.submit(e.event, Buffer.from(e.json))
    const newer = signed(15, { kind: 0, created_at: 1_700_000_100, content: '{"name":"new"}' })
    assert.equal((await writer.submit(newer.event, Buffer.from(newer.json), undefined, 'replica')).status, 'stored')
    bus.mode = undefined
    replication = await start()
    writer.onCommitted(batch => replication.gate.deliver(batch)) // as the relay wires it
    assert.equal(replication.gate.fanOutPending(left.event.id), true, 'a backfill sending it before its fan-out marks it')
    const current = signed(16, { content: 'this run' })
    const ok = accept(current)
    await until(() => bus.waiting === 3, 'the publishes')
    await new Promise(resolve => setImmediate(resolve))
    assert.deepEqual(fannedOut, [], 'fanned out before the bus confirmed')
    bus.answer(true)
    assert.deepEqual(await ok, { status: 'stored' })
    await until(() => fannedOut.length >= 2, 'the fan-out')
    await new Promise(resolve => setTimeout(resolve, 50))
    assert.deepEqual([...fannedOut].sort(), [left.event.id, current.event.id].sort(), 'each once; the replaced event not at all')
    assert.equal(replication.gate.fanOutPending(left.event.id), false)
    await until(() => (store.refresh(), store.replication.size() === 0), 'the entries to be removed')
  })

  it('a stop keeps publishing until the outbox is empty, within shutdown_drain, cutting a back-off short; what the bus leaves unconfirmed stays for the next start', async () => {
    replication = await start({ RELAY_REPLICATION__SHUTDOWN_DRAIN: '"5s"' })
    bus.mode = false
    const notes = [signed(11, { content: 'one' }), signed(12, { content: 'two' })]
    for (const note of notes) assert.equal((await accept(note)).status, 'rejected')
    bus.mode = true // the bus is back, the drainer is backing off
    for (const part of [...replication.parts].reverse()) await part.stop(Date.now() + 8000)
    store.refresh()
    assert.equal(store.replication.size(), 0, 'entries left in the outbox at stop')
    for (const note of notes) assert.ok(bus.published.some(p => p.data === note.json))

    replication = await start({ RELAY_REPLICATION__SHUTDOWN_DRAIN: '"200ms"' })
    bus.mode = undefined // publishes go unanswered
    const stuck = signed(13, { content: 'never confirmed' })
    await writer.submit(stuck.event, Buffer.from(stuck.json))
    await until(() => bus.waiting === 1, 'the publish')
    for (const part of [...replication.parts].reverse()) await part.stop(Date.now() + 8000)
    bus.answer(false)
    store.refresh()
    assert.deepEqual([...store.replication.ids()], [stuck.event.id], 'the unconfirmed entry is kept for the next start')
  })

  it("applies other replicas' events under store rules only, drops its own and invalid ones, fans out ephemeral ones", async () => {
    replication = await start()
    const target = signed(5, { content: "bob's" })
    await writer.submit(target.event, Buffer.from(target.json), undefined, 'replica')
    const foreignDeletion = signed(6, { kind: 5, tags: [['e', target.event.id]] })
    assert.equal(await bus.deliver(foreignDeletion.json, { origin: 'other' }), 'ack')
    assert.equal(store.get(foreignDeletion.event.id), foreignDeletion.json, "a kind 5 aimed only at others' events, stored as its origin stored it")
    assert.equal(store.get(target.event.id), target.json, 'the target stays')
    const own = signed(7, {})
    assert.equal(await bus.deliver(own.json, { origin: 'me' }), 'ack')
    assert.equal(store.get(own.event.id), undefined, 'its own message is not applied')
    const forged = JSON.stringify({ ...JSON.parse(signed(8, {}).json), sig: 'cd'.repeat(64) })
    assert.equal(await bus.deliver(forged, { origin: 'other' }), 'ack')
    assert.equal(await bus.deliver('{"not":"an event"}', { origin: 'other' }), 'ack')
    const expired = signed(10, { tags: [['expiration', '1700000000']] })
    assert.equal(await bus.deliver(expired.json, { origin: 'other' }), 'ack')
    assert.equal(store.get(expired.event.id), undefined, 'an event that expired on its way is not stored')
    const ephemeral = signed(9, { kind: 20001 })
    assert.equal(await bus.deliver(ephemeral.json, { origin: 'other' }), 'ack')
    assert.deepEqual(fannedOut, [ephemeral.event.id])
    assert.equal(store.get(ephemeral.event.id), undefined)
    assert.deepEqual(heard.filter(h => h.startsWith('received')), ['received stored', 'received own', 'received invalid', 'received invalid', 'received rejected', 'received ephemeral'])
    assert.equal(store.replication.size(), 0, "another replica's event is not published again")
  })

  it('applies its own messages published before this start (a stable replica id whose disk was lost), drops its echoes', async () => {
    replication = await start()
    const lost = signed(11, { content: 'published under this id before its disk was lost' })
    assert.equal(await bus.deliver(lost.json, { origin: 'me' }, Date.now() - 60_000), 'ack')
    assert.equal(store.get(lost.event.id), lost.json, 'its own message from before the start is applied')
    const echo = signed(12, { content: 'an echo of this run' })
    assert.equal(await bus.deliver(echo.json, { origin: 'me' }), 'ack')
    assert.equal(store.get(echo.event.id), undefined, 'an echo is dropped')
    assert.equal(store.replication.size(), 0, 'neither is published again')
  })

  it('reports not ready from the start, counts the backlog from before the start, then ready once it is quiet', async () => {
    replication = await start({ RELAY_REPLICATION__CATCH_UP_QUIET: '"300ms"' })
    assert.equal(heard[0], 'catching up (0)', 'not ready before the subscriber even starts (restore, seek)')
    const old = signed(21, { content: 'from before the start' })
    assert.equal(await bus.deliver(old.json, { origin: 'other' }, Date.now() - 60_000), 'ack')
    assert.equal(await bus.deliver(signed(22, { content: 'live' }).json, { origin: 'other' }), 'ack')
    assert.equal(replication.catchUp.caughtUp, false)
    await replication.catchUp.reached()
    assert.deepEqual(heard.filter(h => h.startsWith('catching') || h.startsWith('caught')), ['catching up (0)', 'catching up (1)', 'caught up (1)'], 'the live message is not backlog')
  })
})
