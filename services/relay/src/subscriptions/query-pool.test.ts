import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { EventStore } from '../store/event-store.js'
import { publicKey, unsigned } from '../testing/fixtures.js'
import type { BackfillRequest, BackfillResponse } from './query-engine.js'
import { QueryPool } from './query-pool.js'
import { releaseSlab, slabBuffer } from './slabs.js'

let dir: string
let pool: QueryPool

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'msr-query-pool-'))
  await EventStore.open(dir).close()
  pool = await QueryPool.start(dir, 1)
})
after(async () => {
  await pool.close()
  await rm(dir, { recursive: true, force: true })
})

const request = (filters: unknown): Omit<BackfillRequest, 'op'> => ({
  filters: filters as BackfillRequest['filters'],
  limits: [10],
  prefix: '["EVENT","s",',
  now: 1_700_000_000,
  timeoutMs: 1000,
  wire: false,
  viewer: [],
  privateKinds: [],
})

const slabsInUse = () => Array.from(pool.arena.states).filter(state => state !== 0).length

describe('QueryPool: a query worker that dies', () => {
  it('answers undefined for the query it held, frees its slab, and its replacement answers the next one', async () => {
    // A request the worker cannot read makes it throw, uncaught: the worker thread ends.
    assert.equal(await pool.backfill(request(null)), undefined)
    assert.equal(slabsInUse(), 0, 'the dead worker left its slab claimed')
    const answer = await pool.backfill(request([{}]))
    assert.ok(answer, 'the replacement worker answered')
    assert.deepEqual([answer.frames, answer.framesEnd], [0, 0])
  })
})

describe('QueryPool: REQ pages of a connection querying alone, on the event loop', () => {
  const EVENTS = 3000
  let store: EventStore
  let inline: QueryPool
  let tight: QueryPool
  let answers: QueryPool

  before(async () => {
    const events = Array.from({ length: EVENTS }, (_, i) =>
      unsigned({ pubkey: publicKey(1), created_at: 1_600_000_000 + i, kind: 1, tags: [['t', i % 2 ? 'odd' : 'even']], content: `note ${i}` }),
    )
    store = EventStore.open(dir)
    await store.write(tx => events.map(e => tx.apply(e.event, Buffer.from(e.json))))
    inline = await QueryPool.start(dir, 1, { store, budgetMs: 1000 })
    // A budget no scan of thousands of events fits in: the scan stops at its first deadline check.
    tight = await QueryPool.start(dir, 1, { store, budgetMs: 0.000_001 })
    answers = await QueryPool.start(dir, 1)
  })
  after(async () => {
    await Promise.all([inline.close(), tight.close(), answers.close()])
    await store.close()
  })

  /** The frames of an answer as text, its slab freed. */
  const framesOf = (queries: QueryPool, answer: BackfillResponse | undefined): string => {
    assert.ok(answer)
    const length = answer.framesEnd + 36 * answer.frames
    const bytes = answer.slab >= 0 ? slabBuffer(queries.arena, answer.slab, length) : Buffer.from(answer.bytes as Uint8Array)
    const text = bytes.toString('utf8', 0, answer.framesEnd)
    if (answer.slab >= 0) releaseSlab(queries.arena, answer.slab)
    return text
  }
  const page = (filters: unknown, limit: number) => ({ ...request(filters), limits: [limit] })
  const connection = () => ({})

  it('answers a lone connection on the event loop with the bytes a worker sends', async () => {
    const alone = connection()
    const before = { ...inline.answered }
    for (const filter of [{ kinds: [1] }, { tags: { t: ['odd'] } }, { ids: ['00'.repeat(32)] }]) {
      const here = framesOf(inline, await inline.backfill(page([filter], 100), alone))
      assert.equal(here, framesOf(answers, await answers.backfill(page([filter], 100))))
    }
    assert.deepEqual(inline.answered, { inline: before.inline + 3, worker: before.worker })
    assert.equal(Array.from(inline.arena.states).filter(s => s !== 0).length, 0)
  })

  it("ends an answer with each frame's event id, in order, inline and on a worker", async () => {
    // One range (kinds), one tag value, and two tag values (two ranges merged): every id its own, in frame order.
    for (const filter of [{ kinds: [1] }, { tags: { t: ['odd'] } }, { tags: { t: ['odd', 'even'] } }]) {
      for (const [queries, requester] of [[inline, connection()], [answers, undefined]] as const) {
        const answer = await queries.backfill(page([filter], 300), requester)
        assert.ok(answer)
        const bytes = answer.slab >= 0 ? slabBuffer(queries.arena, answer.slab, answer.framesEnd + 36 * answer.frames) : Buffer.from(answer.bytes as Uint8Array)
        const framed = [...bytes.toString('utf8', 0, answer.framesEnd).matchAll(/\["EVENT","s",\{"id":"([0-9a-f]{64})"/g)].map(m => m[1])
        const listed = Array.from({ length: answer.frames }, (_, i) => bytes.toString('hex', answer.framesEnd + 32 * i, answer.framesEnd + 32 * i + 32))
        if (answer.slab >= 0) releaseSlab(queries.arena, answer.slab)
        assert.equal(framed.length, 300)
        assert.equal(new Set(listed).size, 300)
        assert.deepEqual(listed, framed)
      }
    }
  })

  it('sends to the workers while another connection queries', async () => {
    const [a, b] = [connection(), connection()]
    await inline.backfill(page([{ kinds: [1] }], 10), a).then(answer => framesOf(inline, answer))
    const before = { ...inline.answered }
    // b starts right after a: two connections query, so both go to the workers until one is quiet for a while.
    framesOf(inline, await inline.backfill(page([{ kinds: [1] }], 10), b))
    framesOf(inline, await inline.backfill(page([{ kinds: [1] }], 10), a))
    assert.deepEqual(inline.answered, { inline: before.inline, worker: before.worker + 2 })
    await new Promise(resolve => setTimeout(resolve, 40))
    framesOf(inline, await inline.backfill(page([{ kinds: [1] }], 10), a))
    assert.deepEqual(inline.answered, { inline: before.inline + 1, worker: before.worker + 2 })
  })

  it('sends to the workers while a page is on one', async () => {
    const alone = connection()
    const before = { ...tight.answered }
    // The first page outlasts the budget, so a worker has it; the second would fit, but waits its turn there.
    const long = tight.backfill(page([{ kinds: [1] }], 2500), alone)
    const short = tight.backfill(page([{ kinds: [1] }], 1), alone)
    framesOf(tight, await long)
    framesOf(tight, await short)
    assert.deepEqual(tight.answered, { inline: before.inline, worker: before.worker + 2 })
    framesOf(tight, await tight.backfill(page([{ kinds: [1] }], 1), alone))
    assert.deepEqual(tight.answered, { inline: before.inline + 1, worker: before.worker + 2 })
  })

  it('gives a page that outlasts the inline budget to a worker, which answers it whole', async () => {
    const alone = connection()
    const before = { ...tight.answered }
    const answer = await tight.backfill(page([{ kinds: [1] }], 2500), alone)
    assert.ok(answer)
    assert.equal(answer.timedOut, false)
    assert.equal(answer.frames, 2500)
    assert.deepEqual(tight.answered, { inline: before.inline, worker: before.worker + 1 })
    framesOf(tight, answer)
    assert.equal(Array.from(tight.arena.states).filter(s => s !== 0).length, 0, 'the dropped inline scan kept its slab')
  })
})
