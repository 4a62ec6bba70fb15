import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { Worker } from 'node:worker_threads'
import { claimSlab, createArena, openArena, releaseSlab, slabBuffer } from './slabs.js'

describe('slab arena', () => {
  it('hands out each slab once until it is released', () => {
    const arena = openArena(createArena(3, 1024))
    const claimed = [claimSlab(arena), claimSlab(arena), claimSlab(arena)]
    assert.deepEqual([...claimed].sort(), [0, 1, 2])
    assert.equal(claimSlab(arena), -1, 'every slab in use')
    releaseSlab(arena, 1)
    assert.equal(claimSlab(arena), 1)
  })

  it('gives views of the slab memory, not copies', () => {
    const arena = openArena(createArena(2, 16))
    slabBuffer(arena, 1).write('hello')
    assert.equal(slabBuffer(arena, 1, 5).toString(), 'hello')
    assert.equal(slabBuffer(arena, 0, 5).toString('hex'), '0000000000')
  })

  it('is shared with a worker thread: what the worker writes and claims, the event loop sees', async () => {
    const init = createArena(2, 64)
    const source = `
      const { workerData, parentPort } = require('node:worker_threads')
      const states = new Int32Array(workerData.states)
      Atomics.compareExchange(states, 0, 0, 1)
      Buffer.from(workerData.data, 0, 64).write('from the worker')
      parentPort.postMessage('done')`
    const worker = new Worker(source, { eval: true, workerData: init })
    await new Promise(resolve => worker.once('message', resolve))
    await worker.terminate()
    const arena = openArena(init)
    assert.equal(slabBuffer(arena, 0, 15).toString(), 'from the worker')
    assert.equal(claimSlab(arena), 1, 'slab 0 is held by the worker')
  })
})
