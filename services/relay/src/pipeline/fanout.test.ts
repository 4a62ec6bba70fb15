import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import type { Client, HoldReason } from '../connection/client.js'
import { LiveIndex } from '../subscriptions/live-index.js'
import { createSubscription, type LiveFrame, type Subscription } from '../subscriptions/subscription.js'
import { publicKey, unsigned } from '../testing/fixtures.js'
import { FANOUT_HOLD, FanOut } from './fanout.js'
import type { Committed } from './writer.js'

/** The few members of Client that the fan-out touches: what was sent live and which holds are on. */
class ClientDouble {
  readonly live: LiveFrame[] = []
  readonly holds: HoldReason[] = []
  readonly authed = new Set<string>()
  sendLive(frame: LiveFrame) {
    this.live.push(frame)
  }
  hold(reason: HoldReason) {
    this.holds.push(reason)
  }
  release(reason: HoldReason) {
    this.holds.splice(this.holds.indexOf(reason), 1)
  }
}

const committed = (n: number, kind = 1): Committed => {
  const { event, json } = unsigned({ pubkey: publicKey(1), created_at: 1_700_000_000 + n, kind, tags: [], content: `${n}` })
  return { event, json: Buffer.from(json) }
}

const turn = () => new Promise(resolve => setImmediate(resolve))

const setup = () => {
  const index = new LiveIndex()
  let delivered = 0
  const fanOut = new FanOut(index, n => (delivered += n), () => true)
  const subscribe = (client: ClientDouble, id: string, filter = { kinds: [1] }): Subscription => {
    const subscription = createSubscription(client as unknown as Client, id, [filter])
    subscription.held = undefined
    index.add(subscription)
    return subscription
  }
  return { fanOut, subscribe, delivered: () => delivered }
}

const payloads = (client: ClientDouble) => client.live.map(f => f.payload.toString())

describe('FanOut', () => {
  it('delivers each matching event once per subscription, in commit order, over several turns', async () => {
    const { fanOut, subscribe, delivered } = setup()
    const a = new ClientDouble()
    const b = new ClientDouble()
    for (let i = 0; i < 10; i++) subscribe(a, `a${i}`)
    subscribe(b, 'b', { kinds: [7] })
    const batch = Array.from({ length: 3000 }, (_, i) => committed(i))
    fanOut.enqueue(batch.slice(0, 1500))
    fanOut.enqueue(batch.slice(1500))
    for (let i = 0; i < 5; i++) await turn()
    assert.equal(delivered(), 30_000)
    assert.equal(b.live.length, 0, 'a subscription to another kind gets nothing')
    const byId = new Map<string, string[]>()
    for (const text of payloads(a)) {
      const [, id, event] = JSON.parse(text) as [string, string, { content: string }]
      byId.set(id, [...(byId.get(id) ?? []), event.content])
    }
    const expected = batch.map((_, i) => `${i}`)
    for (let i = 0; i < 10; i++) assert.deepEqual(byId.get(`a${i}`), expected, `a${i}: every event, in order`)
  })

  it('builds one frame per (event, subscription id), shared by the connections using that id', async () => {
    const { fanOut, subscribe } = setup()
    const clients = [new ClientDouble(), new ClientDouble(), new ClientDouble()]
    for (const client of clients) subscribe(client, 'same')
    subscribe(clients[0] as ClientDouble, 'other')
    fanOut.enqueue([committed(1)])
    await turn()
    const [first, second, third] = clients.map(c => c.live[0])
    assert.ok(first === second && second === third, 'one frame object for the three "same" subscriptions')
    assert.notEqual(clients[0]?.live[1], first)
    assert.match(clients[0]?.live[1]?.payload.toString() ?? '', /^\["EVENT","other",\{/)
  })

  it('holds a live event for a subscription whose backfill runs', async () => {
    const { fanOut, subscribe } = setup()
    const client = new ClientDouble()
    const subscription = subscribe(client, 's')
    subscription.held = []
    fanOut.enqueue([committed(1)])
    await turn()
    assert.equal(client.live.length, 0)
    assert.equal(subscription.held.length, 1)
    assert.match(subscription.held[0]?.frame.payload.toString() ?? '', /^\["EVENT","s",\{"id":"/)
  })

  it('stops reading a publisher while the queue is longer than FANOUT_HOLD events, until it drains', async () => {
    const { fanOut } = setup()
    const publisher = new ClientDouble()
    fanOut.throttle(publisher as unknown as Client)
    assert.deepEqual(publisher.holds, [], 'not held while the queue is short')
    fanOut.enqueue(Array.from({ length: FANOUT_HOLD + 1 }, (_, i) => committed(i)))
    fanOut.throttle(publisher as unknown as Client)
    fanOut.throttle(publisher as unknown as Client)
    assert.deepEqual(publisher.holds, ['fanout'], 'held once')
    await turn()
    assert.deepEqual(publisher.holds, [], 'released once the queue drained')
  })
})
