// The writer thread: outcomes in order, readable on the event loop as soon as they are answered, the answer
// only once the store's write has returned, a failed transaction storing nothing of its batch, hints with their trace context.
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, afterEach, before, beforeEach, describe, it } from 'node:test'
import type { VerifiedEvent } from '@msr/nostr'
import { BasicTracerProvider } from '@opentelemetry/sdk-trace-base'
import { EventStore } from '../store/event-store.js'
import { signed, type Ready } from '../testing/fixtures.js'
import { flushGate as gate } from '../testing/flush-gate.js'
import type { Pending, Transactions } from './writer.js'
import { writerThread } from './writer-thread.js'

const tracer = new BasicTracerProvider().getTracer('writer-thread-test')
let dir: string
let store: EventStore
let thread: Transactions

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'msr-writer-thread-'))
})
after(() => rm(dir, { recursive: true, force: true }))
beforeEach(async t => {
  store = EventStore.open(join(dir, t.name.replace(/\W+/g, '-')))
  thread = await writerThread(store, new URL('../testing/gated-write-worker.js', import.meta.url))
})
afterEach(async () => {
  await thread.close()
  await store.close()
})

const pending = (ready: Ready, span?: Pending['span'], source: Pending['source'] = 'client'): Pending => ({
  event: ready.event as VerifiedEvent,
  json: Buffer.from(ready.json),
  span,
  source,
  resolve: () => undefined,
})


describe('the writer thread', () => {
  it('answers each event of a batch in order, and the event loop reads what it stored at once', async () => {
    const profile = signed(1, { kind: 0, created_at: 1_700_000_100, content: 'new' })
    const older = signed(1, { kind: 0, created_at: 1_700_000_000, content: 'old' })
    const note = signed(2, { kind: 1, content: 'note' })
    const outcomes = await thread.apply([pending(profile), pending(older), pending(note), pending(note)])
    assert.deepEqual(outcomes, [
      { status: 'stored' },
      { status: 'rejected', reason: 'invalid: a newer version of this replaceable event is already stored' },
      { status: 'stored' },
      { status: 'duplicate' },
    ])
    assert.equal(store.get(note.event.id), note.json)
    assert.equal(store.get(older.event.id), undefined)
  })

  it('answers only once the store says the transaction is done, even when readers see it before', async () => {
    const note = signed(3, { kind: 1, content: 'durable' })
    await gate(store.path, 'hold')
    let answered = false
    const answer = thread.apply([pending(note)]).then(outcomes => ((answered = true), outcomes))
    for (let i = 0; (store.refresh(), store.get(note.event.id)) === undefined; i++) {
      assert.ok(i < 500, 'never committed')
      await new Promise(resolve => setTimeout(resolve, 10))
    }
    await new Promise(resolve => setTimeout(resolve, 50))
    assert.equal(answered, false, 'answered before its flush')
    await gate(store.path, 'release')
    assert.deepEqual(await answer, [{ status: 'stored' }])
  })

  it('stores nothing of a batch whose transaction failed, rejects it, and goes on with the next', async () => {
    const good = signed(4, { kind: 1, content: 'good' })
    const broken: Pending = { ...pending(signed(5, { kind: 1 })), json: Buffer.from('{"id":') }
    await assert.rejects(thread.apply([pending(good), broken]), /JSON/)
    store.refresh()
    assert.equal(store.get(good.event.id), undefined)
    assert.deepEqual(await thread.apply([pending(good)]), [{ status: 'stored' }])
  })

  it("queues a stored 445's hint with its EVENT's trace context, and removes, queues and expires through the thread", async () => {
    store.hintsEnabled = true
    const span = tracer.startSpan('relay.event')
    const { traceId, spanId } = span.spanContext()
    const message = signed(6, { kind: 445, tags: [['h', 'g1']] })
    const expiring = signed(7, { kind: 1, tags: [['expiration', '1700000500']] })
    await thread.apply([pending(message, span), pending(expiring)])
    const [entry] = store.outbox.peek(10)
    assert.equal(entry?.hint?.id, message.event.id)
    assert.deepEqual(entry?.trace, { traceparent: `00-${traceId}-${spanId}-01` })
    await thread.removeHints([entry.key])
    assert.equal(store.outbox.size(), 0)
    await thread.queueHints(entry.hint ? [entry.hint] : [])
    assert.equal(store.outbox.peek(10)[0]?.hint?.id, message.event.id)
    assert.equal(await thread.deleteExpired(1_700_000_499, 10), 0)
    assert.equal(await thread.deleteExpired(1_700_000_500, 10), 1)
    assert.equal(store.get(expiring.event.id), undefined)
  })

  it('queues no hint while hints are off (a restore)', async () => {
    store.hintsEnabled = false
    await thread.apply([pending(signed(8, { kind: 445, tags: [['h', 'g1']] }))])
    assert.equal(store.outbox.size(), 0)
  })

  it("queues a client's stored event for replication in its own transaction, with its trace context; a replica's, a refused or a duplicate one not", async () => {
    store.replicating = true
    const span = tracer.startSpan('relay.event')
    const { traceId, spanId } = span.spanContext()
    const mine = signed(10, { kind: 1, content: 'mine' })
    const theirs = signed(11, { kind: 1, content: 'theirs' })
    const newer = signed(12, { kind: 0, created_at: 1_700_000_100 })
    const older = signed(12, { kind: 0, created_at: 1_700_000_000 })
    await thread.apply([pending(mine, span), pending(theirs, undefined, 'replica'), pending(newer), pending(older), pending(mine)])
    const entries = store.replication.peek(10)
    assert.deepEqual(entries.map(e => [e.id, e.kind, e.json.toString('utf8'), e.traceparent]), [
      [mine.event.id, 1, mine.json, `00-${traceId}-${spanId}-01`],
      [newer.event.id, 0, newer.json, undefined],
    ])
    assert.deepEqual(store.replication.peek(10, entries[0]?.key).map(e => e.id), [newer.event.id])
    await thread.removeReplicated(entries.map(e => e.key))
    assert.equal(store.replication.size(), 0)
    store.replicating = false
    await thread.apply([pending(signed(13, { kind: 1 }))])
    assert.equal(store.replication.size(), 0, 'queued while replication is off')
  })

  it('refuses work once closed', async () => {
    await thread.close()
    await assert.rejects(thread.apply([pending(signed(9, { kind: 1 }))]), /writer thread stopped/)
  })
})
