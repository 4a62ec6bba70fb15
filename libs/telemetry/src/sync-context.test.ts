import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { createContextKey, ROOT_CONTEXT } from '@opentelemetry/api'
import { SyncContextManager } from './sync-context.js'

const key = createContextKey('test')

describe('SyncContextManager', () => {
  it('keeps a context active for the synchronous call, nested, and restores it even when the call throws', () => {
    const manager = new SyncContextManager()
    const outer = ROOT_CONTEXT.setValue(key, 'outer')
    const inner = ROOT_CONTEXT.setValue(key, 'inner')
    const seen = manager.with(outer, () => [manager.active().getValue(key), manager.with(inner, () => manager.active().getValue(key)), manager.active().getValue(key)])
    assert.deepEqual(seen, ['outer', 'inner', 'outer'])
    assert.throws(() => manager.with(outer, () => { throw new Error('boom') }))
    assert.equal(manager.active(), ROOT_CONTEXT)
  })

  it('does not follow a promise (what spares the process the promise hooks), and binds functions', async () => {
    const manager = new SyncContextManager()
    const ctx = ROOT_CONTEXT.setValue(key, 'v')
    const later = await manager.with(ctx, async () => {
      await Promise.resolve()
      return manager.active().getValue(key)
    })
    assert.equal(later, undefined)
    const bound = manager.bind(ctx, (n: number) => [manager.active().getValue(key), n])
    assert.deepEqual(bound(3), ['v', 3])
    assert.equal(manager.bind(ctx, 'not a function'), 'not a function')
  })
})
