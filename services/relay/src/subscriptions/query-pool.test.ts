import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { EventStore } from '../store/event-store.js'
import { QueryPool } from './query-pool.js'
import type { BackfillRequest } from './query-worker.js'

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
