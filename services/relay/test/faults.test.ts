// No crash paths: failures injected into the writer, the query workers and the verifier pool are each
// answered (OK false / CLOSED / NOTICE "error: …"), logged with the event or subscription id, counted in
// msr_relay_internal_errors_total, and the relay goes on serving everyone.
import assert from 'node:assert/strict'
import { after, afterEach, before, describe, it } from 'node:test'
import type { Transactions } from '../src/pipeline/writer.js'
import { AUTH_ON, authEvent, newSigner, sign, startTestRelay, TEST_PUBLIC_URL, TestClient, type TestRelay } from './harness.js'

const KEY = 'faults-metrics-key-0123456789'
let relay: TestRelay
let client: TestClient
let bystander: TestClient
const restore: Array<() => void> = []

before(async () => {
  relay = await startTestRelay(
    { ...AUTH_ON, 'metrics.enabled': true, 'metrics.auth': KEY, 'data.db_query_timeout': 200 },
    { logLevel: 'info' },
  )
  client = await TestClient.connect(relay.url)
  bystander = await TestClient.connect(relay.url)
})
afterEach(() => restore.splice(0).forEach(undo => undo()))
after(async () => {
  await client.close()
  await bystander.close()
  await relay.close()
})

/** Replaces `object[key]` for one test (put back after it). */
const inject = <T extends object, K extends keyof T>(object: T, key: K, value: T[K]): void => {
  const had = Object.prototype.hasOwnProperty.call(object, key)
  const previous = object[key]
  object[key] = value
  restore.push(() => (had ? (object[key] = previous) : delete object[key]))
}

/** The value of `msr_relay_internal_errors_total{where}` as /metrics shows it. */
const internalErrors = async (where: string): Promise<number> => {
  const res = await fetch(`http://127.0.0.1:${relay.port}/metrics`, { headers: { Authorization: `Bearer ${KEY}` } })
  const line = (await res.text()).split('\n').find(l => l.startsWith(`msr_relay_internal_errors_total{where="${where}"}`))
  return line ? Number(line.split(' ').at(-1)) : 0
}

/** The bystander still publishes and reads. */
const othersStillServed = async (): Promise<void> => {
  const note = sign(newSigner(), { content: 'bystander' })
  await bystander.publishOk(note)
  assert.deepEqual(
    (await bystander.query({ ids: [note.id] })).map(e => e.id),
    [note.id],
  )
}

/** The running writer's transactions (on the writer thread): faults are injected where the writer meets them. */
const transactions = (): Transactions => (relay.running.writer as unknown as { transactions: Transactions }).transactions

describe('the writer fails', () => {
  it('a transaction that fails answers OK false "error:", logs the event id, counts, and the next one is stored', async () => {
    const tx = transactions()
    const apply = tx.apply.bind(tx)
    let failures = 1
    inject(tx, 'apply', batch => (failures-- > 0 ? Promise.reject(new Error('simulated transaction failure')) : apply(batch)))
    const before = await internalErrors('write')
    const event = sign(newSigner(), { content: 'first try' })
    const ok = await client.publish(event)
    assert.deepEqual(ok.slice(2), [false, 'error: the event could not be stored; try again'])
    const logged = await relay.waitForLog(r => r.path === 'write' && r.firstId === event.id)
    assert.equal(logged.severity, 'ERROR')
    assert.equal(await internalErrors('write'), before + 1)
    // Nothing of it was stored: the same event goes through now.
    await client.publishOk(event)
    await othersStillServed()
  })

  it('a transaction that throws synchronously is answered the same way', async () => {
    const tx = transactions()
    const apply = tx.apply.bind(tx)
    let failures = 1
    inject(tx, 'apply', batch => {
      if (failures-- > 0) throw new Error('simulated bug in a transaction')
      return apply(batch)
    })
    const event = sign(newSigner())
    assert.deepEqual((await client.publish(event)).slice(2), [false, 'error: the event could not be stored; try again'])
    await client.publishOk(event)
  })

  it('a flush that fails is not OK true: the client is told to try again (a retry is a duplicate)', async () => {
    const tx = transactions()
    const apply = tx.apply.bind(tx)
    let failures = 1
    // Committed, then the flush reported failing (as the writer thread answers when EventStore.write rejects).
    inject(tx, 'apply', batch => apply(batch).then(outcomes => (failures-- > 0 ? Promise.reject(new Error('EIO: simulated fsync failure')) : outcomes)))
    const event = sign(newSigner())
    assert.deepEqual((await client.publish(event)).slice(2), [false, 'error: the event could not be stored; try again'])
    assert.deepEqual((await client.publish(event)).slice(2), [true, 'duplicate: already have this event'])
  })
})

describe('OK true means on disk', () => {
  it('the OK waits until the writer has the transaction that holds the event on disk', async () => {
    const tx = transactions()
    const apply = tx.apply.bind(tx)
    let open!: () => void
    const gate = new Promise<void>(resolve => (open = resolve))
    let applied = false
    inject(tx, 'apply', batch => apply(batch).then(outcomes => ((applied = true), gate.then(() => outcomes))))
    const event = sign(newSigner(), { content: 'durable' })
    client.send(['EVENT', event])
    // Committed (readable) while the answer is held…
    for (let i = 0; !applied; i++) {
      assert.ok(i < 500, 'the event was never committed')
      await new Promise(resolve => setTimeout(resolve, 10))
    }
    assert.ok(relay.running.store.get(event.id))
    // …and a round trip later (on another connection: one of this connection's would wait for the OK) still no OK.
    await bystander.sync()
    assert.deepEqual(client.takeAll(m => m[0] === 'OK' && m[1] === event.id), [])
    open()
    assert.deepEqual((await client.next(m => m[0] === 'OK' && m[1] === event.id)).slice(2), [true, ''])
  })
})

describe('a query worker fails', () => {
  it('a REQ whose worker died (no answer) is CLOSED "error:" and the relay keeps serving', async () => {
    inject(relay.running.queries, 'backfill', async () => undefined)
    client.send(['REQ', 'dead', {}])
    const reply = await client.next(m => m[0] === 'CLOSED' && m[1] === 'dead')
    assert.equal(reply[2], 'error: the query could not be answered; try again')
    restore.splice(0).forEach(undo => undo())
    await othersStillServed()
  })

  it('a REQ and a COUNT whose worker hangs are CLOSED "error:" after db_query_timeout and a grace period, logged with their ids', async () => {
    const hang = () => new Promise<undefined>(() => undefined)
    inject(relay.running.queries, 'backfill', hang)
    inject(relay.running.queries, 'count', hang)
    const before = await internalErrors('req')
    client.send(['REQ', 'hung', {}])
    client.send(['COUNT', 'hung-count', {}])
    const reply = await client.next(m => m[0] === 'CLOSED' && m[1] === 'hung')
    assert.equal(reply[2], 'error: the query could not be answered; try again')
    const counted = await client.next(m => m[0] === 'CLOSED' && m[1] === 'hung-count')
    assert.equal(counted[2], 'error: the count could not be answered; try again')
    await relay.waitForLog(r => r.path === 'req' && r.subscription === 'hung')
    assert.equal(await internalErrors('req'), before + 1)
    restore.splice(0).forEach(undo => undo())
    await othersStillServed()
  })

  it('a query that throws is CLOSED "error:", logged and counted', async () => {
    inject(relay.running.queries, 'backfill', () => Promise.reject(new Error('simulated worker failure')))
    inject(relay.running.queries, 'count', () => Promise.reject(new Error('simulated worker failure')))
    const before = await internalErrors('count')
    client.send(['REQ', 'thrown', {}])
    client.send(['COUNT', 'thrown-count', {}])
    assert.match(String((await client.next(m => m[0] === 'CLOSED' && m[1] === 'thrown'))[2]), /^error: /)
    assert.match(String((await client.next(m => m[0] === 'CLOSED' && m[1] === 'thrown-count'))[2]), /^error: /)
    await relay.waitForLog(r => r.path === 'count' && r.subscription === 'thrown-count')
    assert.equal(await internalErrors('count'), before + 1)
    restore.splice(0).forEach(undo => undo())
    await othersStillServed()
  })
})

describe('the verifier pool fails', () => {
  it("a verdict of 'error' (no worker could check) is OK false \"error:\" and the event can be sent again", async () => {
    const verifier = relay.running.verifier
    inject(verifier, 'verify', async () => 'error' as const)
    const event = sign(newSigner())
    assert.deepEqual((await client.publish(event)).slice(2), [false, 'error: signature check failed; try again'])
    restore.splice(0).forEach(undo => undo())
    await client.publishOk(event)
  })

  it('a verification that rejects is OK false "error:", logged with the event id and counted', async () => {
    inject(relay.running.verifier, 'verify', () => Promise.reject(new Error('simulated pool failure')))
    const before = await internalErrors('event')
    const event = sign(newSigner())
    const ok = await client.publish(event)
    assert.equal(ok[2], false)
    assert.match(ok[3], /^error: /)
    await relay.waitForLog(r => r.path === 'event' && r.event === event.id)
    assert.equal(await internalErrors('event'), before + 1)
    restore.splice(0).forEach(undo => undo())
    await othersStillServed()
  })

  it('an AUTH whose verification rejects gets OK false "error:" (NIP-42) and the messages behind it are still handled', async () => {
    inject(relay.running.verifier, 'verify', () => Promise.reject(new Error('simulated pool failure')))
    const fresh = await TestClient.connect(relay.url)
    try {
      const before = await internalErrors('auth')
      const auth = authEvent(newSigner(), await fresh.challenge(), TEST_PUBLIC_URL)
      fresh.send(['AUTH', auth])
      fresh.send(['REQ', 'after', { limit: 0 }])
      const ok = await fresh.next(m => m[0] === 'OK' || m[0] === 'NOTICE')
      assert.deepEqual(ok.slice(0, 3), ['OK', auth.id, false])
      assert.match(String(ok[3]), /^error: /)
      assert.deepEqual(await fresh.next(m => m[1] === 'after'), ['EOSE', 'after'])
      assert.equal(await internalErrors('auth'), before + 1)
    } finally {
      await fresh.close()
    }
  })
})
