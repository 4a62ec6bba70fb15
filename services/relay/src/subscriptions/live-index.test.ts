// LiveIndex.matching must find exactly the subscriptions with a matching filter, each once, while
// subscriptions come and go. Reproduce a property failure with PROPERTY_SEED=<seed in the message>.
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { parseFilter, type NostrEvent } from '@msr/nostr'
import type { Client } from '../connection/client.js'
import { chooser, mulberry32, oracleMatch, type RawFilter } from '../testing/fixtures.js'
import { LiveIndex } from './live-index.js'
import { createSubscription, type Subscription } from './subscription.js'

const SEED = Number(process.env.PROPERTY_SEED || 7_654_321)
const OPERATIONS = 3000
const EVENTS_PER_CHECK = 40
const CHECK_EVERY = 25

const client = {} as Client

const subscribe = (id: string, raws: RawFilter[]): Subscription =>
  createSubscription(
    client,
    id,
    raws.map(raw => {
      const parsed = parseFilter(raw)
      assert.ok(parsed.ok, `seed ${SEED}: ${JSON.stringify(raw)}`)
      return parsed.value
    }),
  )

const event = (fields: Partial<NostrEvent>): NostrEvent => ({
  id: 'a'.repeat(64),
  pubkey: 'b'.repeat(64),
  created_at: 100,
  kind: 1,
  tags: [],
  content: '',
  sig: '0'.repeat(128),
  ...fields,
})

describe('LiveIndex', () => {
  it('delivers an event matching two filters of one subscription once, and stops after remove', () => {
    const index = new LiveIndex()
    const sub = subscribe('s', [{ authors: ['b'.repeat(64)] }, { kinds: [1] }, { '#t': ['x'] }, {}])
    index.add(sub)
    const e = event({ tags: [['t', 'x'], ['t', 'x']] })
    assert.deepEqual(index.matching(e), [sub])
    assert.deepEqual(index.matching(e), [sub])
    assert.equal(index.size, 1)
    index.remove(sub)
    assert.deepEqual(index.matching(e), [])
    assert.equal(index.size, 0)
  })

  it('never delivers through a filter with an empty list', () => {
    const index = new LiveIndex()
    for (const raw of [{ ids: [] }, { authors: [] }, { kinds: [] }, { '#t': [] }, { kinds: [1], '#t': [] }]) index.add(subscribe(JSON.stringify(raw), [raw]))
    assert.deepEqual(index.matching(event({ tags: [['t', 'x']] })), [])
  })

  it('tests only the filters filed under the event\'s own id, author, kind and tag values, however many others there are', () => {
    const index = new LiveIndex()
    const other = (i: number) => i.toString(16).padStart(64, '0')
    for (let i = 0; i < 10_000; i++) {
      const shapes: RawFilter[] = [{ kinds: [7, 1000 + i] }, { authors: [other(i)] }, { '#p': [other(i)] }, { ids: [other(i)] }, { authors: [other(i)], kinds: [1] }]
      index.add(subscribe(`u${i}`, [shapes[i % shapes.length] as RawFilter]))
    }
    const unrelated = event({ kind: 1, tags: [['p', 'c'.repeat(64)], ['e', 'd'.repeat(64)]] })
    assert.deepEqual(index.matching(unrelated), [])
    assert.equal(index.tested, 0, 'no filter tested for an event nobody subscribed to')
    const mine = subscribe('mine', [{ kinds: [1] }])
    index.add(mine)
    index.add(subscribe('everything', [{ since: 50 }]))
    assert.deepEqual(index.matching(unrelated).map(s => s.id).sort(), ['everything', 'mine'])
    assert.equal(index.tested, 2, 'its kind bucket and the catch-all')
    assert.deepEqual(index.matching(event({ kind: 1, pubkey: other(1) })).map(s => s.id).sort(), ['everything', 'mine', 'u1'])
    assert.equal(index.tested, 3)
  })

  it(`matching equals the naive scan under add/remove churn (${OPERATIONS} operations, seed ${SEED})`, () => {
    const c = chooser(mulberry32(SEED))
    const authors = Array.from({ length: 4 }, c.hex)
    const refs = Array.from({ length: 4 }, c.hex)
    const words = ['', 'x', 'y', 'X', 'x'.repeat(300)]
    const letters = ['e', 'p', 't', 'T', 'd']
    const kinds = [0, 1, 7, 30023]
    const valuesFor = (letter: string) => (letter === 'e' || letter === 'p' ? refs : words)
    const ids = Array.from({ length: 30 }, c.hex)

    const randomEvent = (): NostrEvent =>
      event({
        id: c.pick(ids),
        pubkey: c.pick(authors),
        kind: c.pick(kinds),
        created_at: c.int(10),
        tags: Array.from({ length: c.int(5) }, () => {
          const letter = c.pick([...letters, 'tt'])
          return c.chance(0.05) ? [letter] : [letter, c.pick(valuesFor(letter))]
        }),
      })

    const randomFilter = (): RawFilter => {
      const f: RawFilter = {}
      if (c.chance(0.15)) f.ids = c.some(ids, 3)
      if (c.chance(0.35)) f.authors = c.some(authors, 2)
      if (c.chance(0.4)) f.kinds = c.some(kinds, 2)
      for (let n = c.int(3); n > 0; n--) {
        const letter = c.pick(letters)
        f[`#${letter}`] = c.some(valuesFor(letter), 2)
      }
      if (c.chance(0.2)) f.since = c.int(10)
      if (c.chance(0.2)) f.until = c.int(10)
      return f
    }

    const index = new LiveIndex()
    const live = new Map<Subscription, RawFilter[]>()
    let checks = 0
    let delivered = 0
    for (let op = 1; op <= OPERATIONS; op++) {
      if (live.size > 0 && c.chance(0.45)) {
        const sub = c.pick([...live.keys()])
        index.remove(sub)
        live.delete(sub)
      } else {
        const raws = Array.from({ length: 1 + c.int(3) }, randomFilter)
        const sub = subscribe(`sub${op}`, raws)
        index.add(sub)
        live.set(sub, raws)
      }
      if (op % CHECK_EVERY !== 0) continue
      assert.equal(index.size, live.size, `seed ${SEED}, op ${op}: size`)
      for (let n = 0; n < EVENTS_PER_CHECK; n++) {
        const e = randomEvent()
        const got = index.matching(e)
        const expected = [...live].filter(([, raws]) => raws.some(raw => oracleMatch(raw, e))).map(([sub]) => sub)
        const where = `seed ${SEED}, op ${op}, event ${JSON.stringify(e)}`
        assert.equal(new Set(got).size, got.length, `${where}: a subscription was returned twice`)
        assert.deepEqual(got.map(s => s.id).sort(), expected.map(s => s.id).sort(), where)
        checks++
        delivered += got.length
      }
    }
    assert.ok(delivered > checks, `seed ${SEED}: only ${delivered} deliveries in ${checks} checks`)
  })
})
