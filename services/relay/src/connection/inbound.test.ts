import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { InboundOrder } from './inbound.js'

/** A handler that records messages; `auth…` messages are barriers, decided when the test says so. */
const setup = () => {
  const handled: string[] = []
  const holds: boolean[] = []
  const pending = new Map<string, () => void>()
  const order = new InboundOrder<string, string>('connection', {
    handle: (context, message) => {
      assert.equal(context, 'connection')
      handled.push(message)
      if (!message.startsWith('auth')) return
      return new Promise<void>(resolve => pending.set(message, resolve))
    },
    hold: (context, on) => void holds.push(on),
  })
  const decide = async (message: string) => {
    pending.get(message)?.()
    await new Promise(resolve => setImmediate(resolve))
  }
  return { order, handled, holds, decide }
}

describe('InboundOrder', () => {
  it('handles messages at once while no barrier is undecided', () => {
    const { order, handled } = setup()
    for (const m of ['req', 'event', 'close']) order.push(m)
    assert.deepEqual(handled, ['req', 'event', 'close'])
  })

  it('holds what follows an AUTH until it is decided, then handles it in order', async () => {
    const { order, handled, decide } = setup()
    for (const m of ['event-before', 'auth1', 'req', 'count', 'event-after']) order.push(m)
    assert.deepEqual(handled, ['event-before', 'auth1'])
    assert.equal(order.backlog, 3)
    await decide('auth1')
    assert.deepEqual(handled, ['event-before', 'auth1', 'req', 'count', 'event-after'])
    assert.equal(order.backlog, 0)
  })

  it('a second AUTH in the backlog becomes the next barrier', async () => {
    const { order, handled, decide } = setup()
    for (const m of ['auth1', 'req1', 'auth2', 'req2']) order.push(m)
    await decide('auth1')
    assert.deepEqual(handled, ['auth1', 'req1', 'auth2'])
    order.push('req3')
    await decide('auth2')
    assert.deepEqual(handled, ['auth1', 'req1', 'auth2', 'req2', 'req3'])
  })

  it('stops reading the socket past 256 waiting messages and resumes once they are handled', async () => {
    const { order, holds, decide, handled } = setup()
    order.push('auth1')
    for (let i = 0; i < 300; i++) order.push(`m${i}`)
    assert.deepEqual(holds, [true])
    await decide('auth1')
    assert.deepEqual(holds, [true, false])
    assert.equal(handled.length, 301)
  })
})
