// The outbox keeps each hint's trace context (its EVENT span's) through a restart, and still reads the bare
// hint entries older versions wrote.
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, it } from 'node:test'
import { encodeHint } from '@msr/hints'
import { BasicTracerProvider } from '@opentelemetry/sdk-trace-base'
import { openDatabases } from './databases.js'
import { EventStore } from './event-store.js'
import { signed } from '../testing/fixtures.js'

const tracer = new BasicTracerProvider().getTracer('outbox-test')
let dir: string

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'msr-outbox-'))
})

afterEach(() => rmSync(dir, { recursive: true, force: true }))

describe('outbox trace context', () => {
  it("keeps the EVENT span's W3C context with the hint across a reopen", async () => {
    const span = tracer.startSpan('relay.event')
    const { traceId, spanId } = span.spanContext()
    const message = signed(1, { kind: 445, tags: [['h', 'g1']] })
    const untraced = signed(2, { kind: 445, tags: [['h', 'g1']] })
    let store = EventStore.open(dir, { hints: true })
    await store.write(tx => [tx.apply(message.event, Buffer.from(message.json), span), tx.apply(untraced.event, Buffer.from(untraced.json))])
    await store.close()

    store = EventStore.open(dir, { hints: true })
    const [first, second] = store.outbox.peek(10)
    assert.equal(first?.hint?.id, message.event.id)
    assert.deepEqual(first?.trace, { traceparent: `00-${traceId}-${spanId}-01` })
    assert.equal(second?.hint?.id, untraced.event.id)
    assert.equal(second?.trace, undefined, 'no span, no context')
    assert.deepEqual([...store.outbox.all()].map(h => h.id), [message.event.id, untraced.event.id], 'a snapshot reads both as hints')
    await store.close()
  })

  it('reads an entry written by an older version (the bare hint), and drops a corrupt context only', async () => {
    const hint = { v: 1 as const, id: 'a'.repeat(64), kind: 445 as const, pubkey: 'b'.repeat(64), created_at: 1, group: 'g1' }
    const dbs = openDatabases(dir)
    const key = (n: number) => Buffer.from([0, 0, 0, 0, 0, 0, 0, n])
    await dbs.outbox.put(key(1), encodeHint(hint))
    await dbs.outbox.put(key(2), Buffer.from(JSON.stringify({ hint, trace: { traceparent: 'not a traceparent' } })))
    await dbs.outbox.put(key(3), Buffer.from('{"hint":{"v":2}}'))
    await dbs.root.close()

    const store = EventStore.open(dir, { hints: true })
    const entries = store.outbox.peek(10)
    assert.deepEqual(entries.map(e => [e.hint?.id, e.trace]), [
      [hint.id, undefined],
      [hint.id, undefined],
      [undefined, undefined],
    ])
    await store.close()
  })
})
