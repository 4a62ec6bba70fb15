// PublishAcks: what an EVENT's OK and fan-out wait on, whatever order the drainer's publish, its confirmation
// and the writer's answer for the commit arrive in.
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { PublishAcks } from './acks.js'

describe('PublishAcks', () => {
  it('waits for a tracked event until the bus confirms it', async () => {
    const acks = new PublishAcks()
    acks.track('a')
    assert.equal(acks.isPending('a'), true)
    assert.equal(await acks.wait('a', 20), 'timeout')
    const waiting = acks.wait('a', 1000)
    acks.published('a')
    assert.equal(await waiting, 'published')
    assert.equal(acks.isPending('a'), false)
  })

  it('does not wait again when the drainer published and had it confirmed before the commit was heard of', async () => {
    const acks = new PublishAcks()
    acks.track('b') // the drainer read the committed entry first and sent it
    acks.published('b')
    acks.track('b') // the writer's answer for the commit, later
    assert.equal(acks.isPending('b'), false)
    assert.equal(await acks.wait('b', 20), 'published')
  })

  it('does not wait for an event confirmed before anyone tracked it', async () => {
    const acks = new PublishAcks()
    acks.published('c')
    acks.track('c')
    assert.equal(await acks.wait('c', 20), 'published')
    assert.equal(acks.size, 0)
  })
})
