import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { createBatcher } from './batcher.js'

/** A statement stand-in: records each batch, answers after a turn, fails as `fail` says. */
const recorder = (fail: (inputs: number[]) => Error | undefined = () => undefined) => {
  const batches: number[][] = []
  const run = async (inputs: number[]): Promise<string[]> => {
    batches.push(inputs)
    await new Promise(resolve => setImmediate(resolve))
    const error = fail(inputs)
    if (error) throw error
    return inputs.map(i => `out ${i}`)
  }
  return { run, batches }
}

const sqlError = (code: string) => Object.assign(new Error(`sqlstate ${code}`), { code })
const range = (n: number) => Array.from({ length: n }, (_, i) => i)

describe('createBatcher', () => {
  it('runs a call at once when idle, and the calls arriving meanwhile together, each answered with its own output', async () => {
    const { run, batches } = recorder()
    const call = createBatcher(run, { concurrency: 1 })
    assert.deepEqual(await Promise.all(range(5).map(i => call(i))), range(5).map(i => `out ${i}`))
    assert.deepEqual(batches, [[0], [1, 2, 3, 4]])
    assert.equal(await call(9), 'out 9')
  })

  it('keeps one statement in flight unless told otherwise, so a busy instance sends the fewest statements', async () => {
    const { run, batches } = recorder()
    const call = createBatcher(run)
    await Promise.all(range(7).map(i => call(i)))
    assert.deepEqual(batches, [[0], [1, 2, 3, 4, 5, 6]])
  })

  it('keeps at most `concurrency` statements in flight and `maxBatch` calls in one', async () => {
    const { run, batches } = recorder()
    const call = createBatcher(run, { concurrency: 2, maxBatch: 3 })
    await Promise.all(range(9).map(i => call(i)))
    assert.deepEqual(batches, [[0], [1], [2, 3, 4], [5, 6, 7], [8]])
  })

  it('when PostgreSQL refuses a value (class 22 or 23), runs the batch again call by call so only the culprit fails', async () => {
    for (const code of ['22003', '23505']) {
      const { run, batches } = recorder(inputs => (inputs.includes(3) ? sqlError(code) : undefined))
      const call = createBatcher(run, { concurrency: 1 })
      const results = await Promise.allSettled(range(6).map(i => call(i)))
      assert.deepEqual(results.map(r => r.status), ['fulfilled', 'fulfilled', 'fulfilled', 'rejected', 'fulfilled', 'fulfilled'])
      assert.equal((results[3] as PromiseRejectedResult).reason.code, code)
      assert.deepEqual(batches, [[0], [1, 2, 3, 4, 5], [1], [2], [3], [4], [5]])
    }
  })

  it('reports each statement’s size, not the one-by-one runs after a refused value', async () => {
    const { run } = recorder(inputs => (inputs.length > 1 && inputs.includes(2) ? sqlError('22P02') : undefined))
    const sizes: number[] = []
    const call = createBatcher(run, { concurrency: 1, onBatch: size => sizes.push(size) })
    await Promise.allSettled(range(4).map(i => call(i)))
    assert.deepEqual(sizes, [1, 3])
  })

  it('fails the whole batch for any other failure, and carries on with the next calls', async () => {
    let down = true
    const { run, batches } = recorder(() => (down ? sqlError('08006') : undefined))
    const call = createBatcher(run, { concurrency: 1 })
    const results = await Promise.allSettled(range(4).map(i => call(i)))
    assert.deepEqual(results.map(r => r.status), ['rejected', 'rejected', 'rejected', 'rejected'])
    assert.deepEqual(batches, [[0], [1, 2, 3]])
    down = false
    assert.deepEqual(await Promise.all([call(7), call(8)]), ['out 7', 'out 8'])
  })

  it('fails every call of a batch answered with the wrong number of outputs, never resolving one with another’s', async () => {
    const call = createBatcher(async (inputs: number[]) => inputs.slice(1), { concurrency: 1 })
    const results = await Promise.allSettled([call(1), call(2), call(3)])
    for (const r of results) assert.equal(r.status, 'rejected')
  })
})
