import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { createLogger } from '@msr/telemetry'
import { Lifecycle, startedPart, type Part } from './lifecycle.js'

const quietLogger = (lines: Record<string, unknown>[]) =>
  createLogger({ service: 'test', level: 'info', destination: { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) } })

const recorder = (log: string[], name: string, stop: (deadline: number) => Promise<void> = async () => undefined): Part => ({
  name,
  start: () => void log.push(`start ${name}`),
  stop: deadline => (log.push(`stop ${name}`), stop(deadline)),
})

describe('Lifecycle', () => {
  it('starts parts in order and stops them in reverse order, each with the same deadline', async () => {
    const log: string[] = []
    const deadlines: number[] = []
    const lifecycle = new Lifecycle(quietLogger([]))
    for (const name of ['store', 'workers', 'drainer', 'listener'])
      await lifecycle.start(recorder(log, name, async deadline => void deadlines.push(deadline)))
    const deadline = Date.now() + 5000
    await lifecycle.stop(deadline)
    assert.deepEqual(log, ['start store', 'start workers', 'start drainer', 'start listener', 'stop listener', 'stop drainer', 'stop workers', 'stop store'])
    assert.deepEqual(deadlines, [deadline, deadline, deadline, deadline])
  })

  it('a part that fails to stop is logged and the parts before it still stop', async () => {
    const log: string[] = []
    const lines: Record<string, unknown>[] = []
    const lifecycle = new Lifecycle(quietLogger(lines))
    await lifecycle.start(recorder(log, 'store'))
    await lifecycle.start(recorder(log, 'broken', () => Promise.reject(new Error('cannot stop'))))
    await lifecycle.stop(Date.now() + 1000)
    assert.deepEqual(log.slice(-2), ['stop broken', 'stop store'])
    assert.ok(lines.some(l => l.part === 'broken' && l.severity === 'ERROR'))
  })

  it('a part that overruns the deadline is left behind with a warning, and the rest still stop', async () => {
    const log: string[] = []
    const lines: Record<string, unknown>[] = []
    const lifecycle = new Lifecycle(quietLogger(lines))
    await lifecycle.start(startedPart('store', async () => void log.push('stop store')))
    await lifecycle.start(recorder(log, 'stuck', () => new Promise(() => undefined)))
    await lifecycle.stop(Date.now() + 50)
    assert.deepEqual(log.slice(-2), ['stop stuck', 'stop store'])
    assert.ok(lines.some(l => l.part === 'stuck' && l.severity === 'WARNING'))
  })

  it('a part whose start fails is not stopped, the ones started before it are', async () => {
    const log: string[] = []
    const lifecycle = new Lifecycle(quietLogger([]))
    await lifecycle.start(recorder(log, 'store'))
    await assert.rejects(lifecycle.start({ name: 'listener', start: () => Promise.reject(new Error('EADDRINUSE')), stop: async () => void log.push('stop listener') }))
    await lifecycle.stop(Date.now() + 1000)
    assert.deepEqual(log, ['start store', 'stop store'])
  })
})
