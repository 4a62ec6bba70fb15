import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { EventStore } from '../store/event-store.js'
import { unsigned } from '../testing/fixtures.js'
import { inProcess, STORE_FULL, Writer, WRITE_FAILED, type Committed, type Transactions } from './writer.js'

let dir: string
let store: EventStore

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'msr-writer-'))
  store = EventStore.open(dir)
})
after(async () => {
  await store.close()
  await rm(dir, { recursive: true, force: true })
})

const note = (i: number) => unsigned({ pubkey: 'ab'.repeat(32), created_at: 1_700_000_000 + i, kind: 1, tags: [], content: `n${i}` })
const submit = (writer: Writer, i: number) => {
  const { event, json } = note(i)
  return writer.submit(event, Buffer.from(json))
}

describe('Writer', () => {
  it('answers and tells its listeners in submission order even when a later transaction finishes first', async () => {
    const write = store.write.bind(store)
    const delays = [60, 0]
    store.write = fn => write(fn).then(result => new Promise(resolve => setTimeout(() => resolve(result), delays.shift() ?? 0)))
    try {
      const answered: number[] = []
      const committed: string[] = []
      const writer = new Writer(store, error => assert.fail(String(error)))
      writer.onCommitted((batch: Committed[]) => committed.push(...batch.map(c => c.event.content)))
      const first = submit(writer, 1).then(() => answered.push(1))
      await new Promise(resolve => setImmediate(resolve)) // the first batch is on its way
      const second = submit(writer, 2).then(() => answered.push(2))
      await Promise.all([first, second])
      assert.deepEqual(answered, [1, 2])
      assert.deepEqual(committed, ['n1', 'n2'])
    } finally {
      delete (store as Partial<EventStore>).write
    }
  })

  it('a listener that throws is reported and the other listeners still hear of the batch', async () => {
    const errors: unknown[] = []
    const writer = new Writer(store, error => errors.push(error))
    const heard: number[] = []
    writer.onCommitted(() => {
      throw new Error('listener bug')
    })
    writer.onCommitted(batch => heard.push(batch.length))
    assert.equal((await submit(writer, 3)).status, 'stored')
    assert.deepEqual(heard, [1])
    assert.equal(errors.length, 1)
  })

  it('a batch whose commit fails answers each of its events with error: and later batches still commit', async () => {
    const errors: Array<{ events: number; firstId?: string }> = []
    const writer = new Writer(store, (_error, context) => errors.push(context))
    const write = store.write.bind(store)
    store.write = (() => Promise.reject(new Error('EIO: simulated'))) as EventStore['write']
    const a = note(4)
    const b = note(5)
    const outcomes = await Promise.all([writer.submit(a.event, Buffer.from(a.json)), writer.submit(b.event, Buffer.from(b.json))])
    store.write = write
    delete (store as Partial<EventStore>).write
    assert.deepEqual(outcomes, [
      { status: 'rejected', reason: WRITE_FAILED },
      { status: 'rejected', reason: WRITE_FAILED },
    ])
    assert.deepEqual(errors, [{ events: 2, firstId: a.event.id }])
    assert.equal((await writer.submit(a.event, Buffer.from(a.json))).status, 'stored')
  })

  it('keeps at most two transactions in flight and commits what queued meanwhile as one (group commit)', async () => {
    const real = inProcess(store)
    const sizes: number[] = []
    const gates: Array<() => void> = []
    const held: Transactions = {
      ...real,
      apply: (batch, maxBytes) => {
        sizes.push(batch.length)
        return new Promise<void>(resolve => gates.push(resolve)).then(() => real.apply(batch, maxBytes))
      },
    }
    const writer = new Writer(store, error => assert.fail(String(error)), held)
    const turn = () => new Promise(resolve => setImmediate(resolve))
    const answers = [submit(writer, 10)]
    await turn()
    answers.push(submit(writer, 11))
    await turn()
    answers.push(submit(writer, 12), submit(writer, 13))
    await turn()
    answers.push(submit(writer, 14))
    await turn()
    assert.deepEqual(sizes, [1, 1], 'a third transaction started while two were in flight')
    gates.shift()?.()
    await answers[0]
    await turn()
    assert.deepEqual(sizes, [1, 1, 3], 'what queued meanwhile is one transaction')
    while (gates.length > 0 || sizes.length < 3) {
      gates.shift()?.()
      await turn()
    }
    assert.deepEqual((await Promise.all(answers)).map(o => o.status), ['stored', 'stored', 'stored', 'stored', 'stored'])
  })

  it('answers a batch that failed for lack of room "storage is full" rather than "try again"', async () => {
    const writer = new Writer(store, () => undefined)
    const write = store.write.bind(store)
    store.write = (() => Promise.reject(new Error('MDB_MAP_FULL: Environment mapsize limit reached'))) as EventStore['write']
    const outcome = await submit(writer, 20)
    store.write = write
    delete (store as Partial<EventStore>).write
    assert.deepEqual(outcome, { status: 'rejected', reason: STORE_FULL })
  })
})
