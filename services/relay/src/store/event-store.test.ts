import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, it } from 'node:test'
import { parseFilter, type Filter } from '@msr/nostr'
import { publicKey, signed, unsigned, type Ready } from '../testing/fixtures.js'
import { EventStore, type StoreOutcome } from './event-store.js'

const T = 1_700_000_000
const ALICE = 1
const BOB = 2
const MALLORY = 3
const alice = publicKey(ALICE)
const bob = publicKey(BOB)

let dir: string
let store: EventStore

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'msr-store-'))
  store = EventStore.open(dir)
})

afterEach(async () => {
  await store.close()
  rmSync(dir, { recursive: true, force: true })
})

/** Applies events in one transaction, in order, then makes the commit visible (as the writer does). */
const put = async (...events: Ready[]): Promise<StoreOutcome[]> => {
  const outcomes = await store.write(tx => events.map(e => tx.apply(e.event, Buffer.from(e.json))))
  store.refresh()
  return outcomes
}

const putOne = async (event: Ready): Promise<StoreOutcome> => (await put(event))[0] as StoreOutcome

const filter = (raw: Record<string, unknown>): Filter => {
  const parsed = parseFilter(raw)
  assert.ok(parsed.ok)
  return parsed.value
}

const bounds = (now = T) => ({ limit: 10_000, now, deadline: Infinity, clock: () => 0 })

/** Ids the store serves for a filter, in serving order. */
const ids = (raw: Record<string, unknown>, now = T): string[] => store.query(filter(raw), bounds(now)).events.map(e => e.id)

const count = (raws: Record<string, unknown>[], now = T): number => store.count(raws.map(filter), bounds(now)).count

describe('a write transaction that throws', () => {
  it('stores nothing of what it did before the throw, and rejects', async () => {
    const note = signed(ALICE, { kind: 1, content: 'half-done' })
    await assert.rejects(
      store.write(tx => {
        tx.apply(note.event, Buffer.from(note.json))
        throw new Error('simulated bug after the first event')
      }),
      /simulated bug/,
    )
    store.refresh()
    assert.equal(store.get(note.event.id), undefined)
    assert.deepEqual(await put(note), [{ status: 'stored' }])
  })
})

const assertRejected = (outcome: StoreOutcome | undefined, prefix: 'invalid' | 'blocked') => {
  assert.equal(outcome?.status, 'rejected', JSON.stringify(outcome))
  if (outcome?.status === 'rejected') assert.ok(outcome.reason.startsWith(`${prefix}: `), outcome.reason)
}

/** Two events of the same address and second, returned as [lowest id, highest id]. */
const sameSecond = (n: number, kind: number, tags: string[][] = []): [Ready, Ready] => {
  const a = signed(n, { kind, created_at: T, tags, content: 'a' })
  const b = signed(n, { kind, created_at: T, tags, content: 'b' })
  return a.event.id < b.event.id ? [a, b] : [b, a]
}

describe('EventStore: basics', () => {
  it('stores an event, serves its canonical JSON, and answers duplicate on a second write', async () => {
    const note = signed(ALICE, { content: 'hi', tags: [['t', 'x']] })
    assert.deepEqual(await put(note, note), [{ status: 'stored' }, { status: 'duplicate' }])
    assert.deepEqual(await put(note), [{ status: 'duplicate' }])
    assert.equal(store.get(note.event.id), note.json)
    assert.deepEqual(store.query(filter({}), bounds()).events, [{ id: note.event.id, json: note.json }])
    assert.equal(store.size(), 1)
  })

  it('serves newest first, ties by lowest id, honouring limit and skip', async () => {
    const events = [0, 1, 1, 1, 2].map((dt, i) => signed(ALICE, { created_at: T + dt, content: String(i) }))
    await put(...events)
    const expected = [...events].sort((a, b) => b.event.created_at - a.event.created_at || (a.event.id < b.event.id ? -1 : 1)).map(e => e.event.id)
    assert.deepEqual(ids({}), expected)
    assert.deepEqual(store.query(filter({}), { ...bounds(), limit: 2 }).events.map(e => e.id), expected.slice(0, 2))
    assert.deepEqual(store.query(filter({}), { ...bounds(), limit: 0 }).events, [])
    const skip = new Set([expected[0] as string, expected[2] as string])
    assert.deepEqual(store.query(filter({}), { ...bounds(), limit: 2 }, skip).events.map(e => e.id), [expected[1], expected[3]])
  })
})

describe('EventStore: query plans by range size', () => {
  /** `n` kind-1 notes by `pubkey`, one a second from T, each with these tags. */
  const notes = (pubkey: string, n: number, tags: string[][] = [], from = 0) =>
    Array.from({ length: n }, (_, i) => unsigned({ pubkey, created_at: T + from + i, kind: 1, tags, content: `${from + i}` }))
  const carol = 'c0'.repeat(32)

  it('answers from a small tag range rather than a large author+kind range, and serves the same events', async () => {
    const many = notes(carol, 700)
    const tagged = notes(carol, 3, [['t', 'rare']], 1000)
    await put(...many, ...tagged)
    const raw = { authors: [carol], kinds: [1], '#t': ['rare'] }
    assert.equal(store.plan(filter(raw)).index, 'tag')
    assert.deepEqual(ids(raw), tagged.map(r => r.event.id).reverse())
  })

  it('answers from a small author+kind range rather than a large tag range', async () => {
    await put(...notes(alice, 700, [['t', 'common']]), ...notes(carol, 3, [['t', 'common']], 1000))
    const raw = { authors: [carol], kinds: [1], '#t': ['common'] }
    assert.equal(store.plan(filter(raw)).index, 'author_kind')
    assert.equal(ids(raw).length, 3)
  })

  it('without a small range, prefers a plan that reads kinds from the stored bytes to one that parses tags', async () => {
    await put(...notes(carol, 600, [['h', 'g']]))
    const plan = store.plan(filter({ kinds: [1], '#h': ['g'] }))
    assert.deepEqual([plan.index, plan.check.parse, plan.check.kinds], ['tag', false, true])
    assert.equal(ids({ kinds: [1], '#h': ['g'] }).length, 600)
    assert.equal(ids({ kinds: [7], '#h': ['g'] }).length, 0)
  })

  it('answers authors without kinds from one author+kind range per kind stored, merged newest first', async () => {
    const dave = 'da'.repeat(32)
    // Carol's kinds interleaved in time, two of them in the same second (ties by lowest id across ranges).
    const events = [
      [1, 0],
      [7, 1],
      [40000, 2],
      [1, 3],
      [7, 3],
      [30023, 4],
    ].map(([kind, dt], i) => unsigned({ pubkey: carol, created_at: T + (dt as number), kind: kind as number, tags: kind === 30023 ? [['d', 'x']] : [], content: `${i}` }))
    await put(...events, ...notes(alice, 5))
    const plan = store.plan(filter({ authors: [carol, dave] }))
    assert.equal(plan.index, 'author')
    assert.deepEqual(
      plan.prefixes.map(p => [p.subarray(0, 32).toString('hex'), p.readUInt16BE(32)]),
      [1, 7, 30023, 40000].map(kind => [carol, kind]),
    )
    const newestFirst = [...events].sort((a, b) => b.event.created_at - a.event.created_at || (a.event.id < b.event.id ? -1 : 1)).map(r => r.event.id)
    assert.deepEqual(ids({ authors: [carol, dave] }), newestFirst)
    assert.deepEqual(ids({ authors: [carol], since: T + 1, until: T + 3 }), newestFirst.slice(1, 5))
    assert.deepEqual(store.query(filter({ authors: [carol] }), { ...bounds(), limit: 2 }).events.map(e => e.id), newestFirst.slice(0, 2))
    assert.equal(count([{ authors: [carol, alice] }]), events.length + 5)
    assert.deepEqual(store.plan(filter({ authors: [dave] })).prefixes, [])
    assert.deepEqual(ids({ authors: [dave] }), [])
  })

  it('answers authors from another index, checking each author, when their kinds make too many ranges', async () => {
    // 4,097 kinds: one range more than an author plan opens.
    const kinds = Array.from({ length: 4_097 }, (_, i) => unsigned({ pubkey: carol, created_at: T + (i % 50), kind: 40_000 + i, tags: [], content: '' }))
    await put(...kinds, ...notes(alice, 3, [], 100))
    const plan = store.plan(filter({ authors: [carol] }))
    assert.deepEqual([plan.index, plan.check.authors], ['time', true])
    const withKinds = store.plan(filter({ authors: [carol], kinds: Array.from({ length: 4_097 }, (_, i) => 40_000 + i) }))
    assert.deepEqual([withKinds.index, withKinds.check.authors], ['kind', true])
    // More authors than an author plan takes: not even looked up.
    assert.equal(store.plan(filter({ authors: Array.from({ length: 4_097 }, (_, i) => i.toString(16).padStart(64, '0')) })).index, 'time')
    const newest = [...kinds].sort((a, b) => b.event.created_at - a.event.created_at || (a.event.id < b.event.id ? -1 : 1))
    assert.deepEqual(store.query(filter({ authors: [carol] }), { ...bounds(), limit: 3 }).events.map(e => e.id), newest.slice(0, 3).map(r => r.event.id))
    assert.equal(count([{ authors: [carol] }]), kinds.length)
  })

  it('serves ids newest first, ties by lowest id, within since and until', async () => {
    const events = [5, 1, 1, 3, 9].map((dt, i) => unsigned({ pubkey: carol, created_at: T + dt, kind: 1, tags: [], content: String(i) }))
    await put(...events)
    const all = events.map(r => r.event.id)
    const expected = [...events].sort((a, b) => b.event.created_at - a.event.created_at || (a.event.id < b.event.id ? -1 : 1))
    assert.deepEqual(ids({ ids: [...all, 'ff'.repeat(32)] }), expected.map(r => r.event.id))
    assert.deepEqual(ids({ ids: all, since: T + 2, until: T + 5 }), expected.filter(r => r.event.created_at >= T + 2 && r.event.created_at <= T + 5).map(r => r.event.id))
  })
})

describe('EventStore: replaceable events (0, 3, 10000–19999)', () => {
  for (const kind of [0, 3, 10002, 19999]) {
    it(`kind ${kind}: a newer version replaces the stored one`, async () => {
      const v1 = signed(ALICE, { kind, created_at: T })
      const v2 = signed(ALICE, { kind, created_at: T + 1 })
      assert.deepEqual(await put(v1, v2), [{ status: 'stored' }, { status: 'stored' }])
      assert.deepEqual(ids({ authors: [alice], kinds: [kind] }), [v2.event.id])
      assert.equal(store.get(v1.event.id), undefined)
      assert.deepEqual(ids({ ids: [v1.event.id] }), [])
    })

    it(`kind ${kind}: an older version arriving later is refused with invalid: and not stored`, async () => {
      const v1 = signed(ALICE, { kind, created_at: T })
      const v2 = signed(ALICE, { kind, created_at: T + 1 })
      await putOne(v2)
      assertRejected(await putOne(v1), 'invalid')
      assert.deepEqual(ids({ kinds: [kind] }), [v2.event.id])
      assert.equal(store.get(v1.event.id), undefined)
    })
  }

  it('same second: the lowest id wins in both arrival orders', async () => {
    const [lowA, highA] = sameSecond(ALICE, 0)
    assert.deepEqual(await put(highA, lowA), [{ status: 'stored' }, { status: 'stored' }])
    assert.deepEqual(ids({ authors: [alice], kinds: [0] }), [lowA.event.id])

    const [lowB, highB] = sameSecond(BOB, 0)
    await putOne(lowB)
    assertRejected(await putOne(highB), 'invalid')
    assert.deepEqual(ids({ authors: [bob], kinds: [0] }), [lowB.event.id])
  })

  it('keeps one version per author and kind, and ignores d tags', async () => {
    const events = [
      signed(ALICE, { kind: 0, created_at: T }),
      signed(BOB, { kind: 0, created_at: T }),
      signed(ALICE, { kind: 3, created_at: T }),
      signed(ALICE, { kind: 10002, created_at: T, tags: [['d', 'x']] }),
    ]
    const newer = signed(ALICE, { kind: 10002, created_at: T + 1, tags: [['d', 'y']] })
    await put(...events, newer)
    assert.equal(count([{}]), 4)
    assert.deepEqual(ids({ kinds: [10002] }), [newer.event.id])
  })

  it('regular kinds next to the boundaries are never replaced', async () => {
    const events = [1, 2, 4, 9999, 40000].flatMap(kind => [signed(ALICE, { kind, created_at: T }), signed(ALICE, { kind, created_at: T + 1 })])
    await put(...events)
    assert.equal(count([{}]), events.length)
  })
})

describe('EventStore: a newer version that is gone still keeps older ones out', () => {
  /** Every order of a list (for three or four items). */
  const orders = <T>(items: T[]): T[][] =>
    items.length <= 1 ? [items] : items.flatMap((item, i) => orders([...items.slice(0, i), ...items.slice(i + 1)]).map(rest => [item, ...rest]))

  it('V1, V2 and a deletion of V2 by e leave no version served, in every arrival order', async () => {
    for (const [i, order] of orders(['V1', 'V2', 'D']).entries()) {
      const n = 10 + i // one author per order, so the orders do not meet
      const v1 = signed(n, { kind: 30023, created_at: T + 10, tags: [['d', 'post']], content: 'v1' })
      const v2 = signed(n, { kind: 30023, created_at: T + 20, tags: [['d', 'post']], content: 'v2' })
      const d = signed(n, { kind: 5, created_at: T + 30, tags: [['e', v2.event.id]] })
      const byName: Record<string, Ready> = { V1: v1, V2: v2, D: d }
      await put(...order.map(name => byName[name] as Ready))
      assert.deepEqual(ids({ authors: [publicKey(n)] }), [d.event.id], order.join(', '))
      assertRejected(await putOne(v1), 'invalid')
      assertRejected(await putOne(v2), 'blocked')
    }
  })

  it('same second: a deleted lowest id still beats the other version, in every arrival order', async () => {
    for (const [i, order] of orders(['low', 'high', 'D']).entries()) {
      const n = 20 + i
      const [low, high] = sameSecond(n, 10002)
      const d = signed(n, { kind: 5, created_at: T + 1, tags: [['e', low.event.id]] })
      const byName: Record<string, Ready> = { low, high, D: d }
      await put(...order.map(name => byName[name] as Ready))
      assert.deepEqual(ids({ authors: [publicKey(n)] }), [d.event.id], order.join(', '))
    }
  })

  it('a deleted newest version refuses an older one with invalid:', async () => {
    const v1 = signed(ALICE, { kind: 0, created_at: T })
    const v2 = signed(ALICE, { kind: 0, created_at: T + 1 })
    await put(v2, signed(ALICE, { kind: 5, created_at: T + 2, tags: [['e', v2.event.id]] }))
    assertRejected(await putOne(v1), 'invalid')
    assert.deepEqual(ids({ kinds: [0] }), [])
  })

  it('an expired and swept newest version refuses an older one; sent again, it is stored (and still expired)', async () => {
    const v1 = signed(ALICE, { kind: 30023, created_at: T, tags: [['d', 'post']] })
    const v2 = signed(ALICE, { kind: 30023, created_at: T + 1, tags: [['d', 'post'], ['expiration', String(T + 5)]] })
    await put(v2)
    assert.equal(await store.write(tx => tx.deleteExpired(T + 10, 100)), 1)
    store.refresh()
    assertRejected(await putOne(v1), 'invalid')
    assert.deepEqual(ids({ kinds: [30023] }, T + 10), [])
    assert.deepEqual(await put(v2), [{ status: 'stored' }])
    assert.deepEqual(ids({ kinds: [30023] }, T + 10), [])
    assert.deepEqual(ids({ kinds: [30023] }, T), [v2.event.id])
  })
})

describe('EventStore: addressable events (30000–39999)', () => {
  it('replaces by kind, author and d, wherever the d tag stands', async () => {
    const v1 = signed(ALICE, { kind: 30023, created_at: T, tags: [['t', 'x'], ['d', 'post']] })
    const v2 = signed(ALICE, { kind: 30023, created_at: T + 1, tags: [['p', bob], ['t', 'y'], ['d', 'post']] })
    const other = signed(ALICE, { kind: 30023, created_at: T, tags: [['d', 'other']] })
    const bobs = signed(BOB, { kind: 30023, created_at: T, tags: [['d', 'post']] })
    await put(v1, other, bobs, v2)
    assert.deepEqual(ids({ authors: [alice], kinds: [30023], '#d': ['post'] }), [v2.event.id])
    assert.deepEqual(new Set(ids({ kinds: [30023] })), new Set([v2.event.id, other.event.id, bobs.event.id]))
    assert.deepEqual(ids({ '#t': ['x'] }), [])
  })

  it('refuses an older version with invalid:', async () => {
    const v1 = signed(ALICE, { kind: 30000, created_at: T, tags: [['d', 'list']] })
    const v2 = signed(ALICE, { kind: 30000, created_at: T + 1, tags: [['d', 'list']] })
    await putOne(v2)
    assertRejected(await putOne(v1), 'invalid')
    assert.deepEqual(ids({ kinds: [30000] }), [v2.event.id])
  })

  it('same second: the lowest id wins in both arrival orders', async () => {
    const [lowA, highA] = sameSecond(ALICE, 39999, [['d', 'x']])
    await put(highA, lowA)
    assert.deepEqual(ids({ authors: [alice] }), [lowA.event.id])
    const [lowB, highB] = sameSecond(BOB, 39999, [['d', 'x']])
    await putOne(lowB)
    assertRejected(await putOne(highB), 'invalid')
    assert.deepEqual(ids({ authors: [bob] }), [lowB.event.id])
  })

  it('treats a missing d tag, an empty d and a valueless d as the same address', async () => {
    const none = signed(ALICE, { kind: 30023, created_at: T, tags: [['t', 'x']] })
    const empty = signed(ALICE, { kind: 30023, created_at: T + 1, tags: [['d', '']] })
    const valueless = signed(ALICE, { kind: 30023, created_at: T + 2, tags: [['d']] })
    assert.deepEqual(await put(none, empty, valueless), [{ status: 'stored' }, { status: 'stored' }, { status: 'stored' }])
    assert.deepEqual(ids({ kinds: [30023] }), [valueless.event.id])
    assertRejected(await putOne(signed(ALICE, { kind: 30023, created_at: T + 1, tags: [] })), 'invalid')
  })

  it('uses the first d tag when there are several', async () => {
    const v1 = signed(ALICE, { kind: 30023, created_at: T, tags: [['d', 'a'], ['d', 'b']] })
    const v2 = signed(ALICE, { kind: 30023, created_at: T + 1, tags: [['d', 'a']] })
    const v3 = signed(ALICE, { kind: 30023, created_at: T + 2, tags: [['d', 'b'], ['d', 'a']] })
    await put(v1, v2, v3)
    assert.deepEqual(new Set(ids({ kinds: [30023] })), new Set([v2.event.id, v3.event.id]))
  })

  it('keeps long d values (hashed keys) apart and replaces within each', async () => {
    const d1 = 'x'.repeat(300)
    const d2 = `${'x'.repeat(299)}y`
    const a1 = signed(ALICE, { kind: 30023, created_at: T, tags: [['d', d1]] })
    const b1 = signed(ALICE, { kind: 30023, created_at: T, tags: [['d', d2]] })
    const a2 = signed(ALICE, { kind: 30023, created_at: T + 1, tags: [['d', d1]] })
    await put(a1, b1, a2)
    assert.deepEqual(ids({ '#d': [d1] }), [a2.event.id])
    assert.deepEqual(ids({ '#d': [d2] }), [b1.event.id])
  })
})

describe('EventStore: NIP-09 deletion by e', () => {
  it("deletes the author's own event and refuses its re-publication with blocked:", async () => {
    const note = signed(ALICE, { content: 'oops', tags: [['t', 'x']] })
    const deletion = signed(ALICE, { kind: 5, created_at: T + 1, tags: [['e', note.event.id]] })
    await put(note)
    assert.deepEqual(await put(deletion), [{ status: 'stored' }])
    assert.deepEqual(ids({ ids: [note.event.id] }), [])
    assert.deepEqual(ids({ '#t': ['x'] }), [])
    assert.deepEqual(ids({ kinds: [5] }), [deletion.event.id])
    assertRejected(await putOne(note), 'blocked')
    assert.equal(count([{ authors: [alice] }]), 1)
  })

  it("a stranger's deletion naming a deleted event does not let it back in (tombstones are per deleter)", async () => {
    const keyPackage = signed(ALICE, { kind: 443, content: 'key package' })
    await put(keyPackage, signed(ALICE, { kind: 5, created_at: T + 1, tags: [['e', keyPackage.event.id]] }))
    // The target is gone, so nothing shows it was Alice's: the stranger's request is stored, and changes nothing.
    const mallorys = signed(MALLORY, { kind: 5, created_at: T + 2, tags: [['e', keyPackage.event.id]] })
    assert.deepEqual(await put(mallorys), [{ status: 'stored' }])
    assertRejected(await putOne(keyPackage), 'blocked')
    assert.deepEqual(ids({ kinds: [443] }), [])
  })

  it("a stranger's deletion arriving first neither blocks the event nor weakens its author's deletion", async () => {
    const keyPackage = signed(ALICE, { kind: 443, content: 'key package' })
    await put(signed(MALLORY, { kind: 5, created_at: T + 2, tags: [['e', keyPackage.event.id]] }))
    assert.deepEqual(await put(keyPackage), [{ status: 'stored' }])
    await put(signed(ALICE, { kind: 5, created_at: T + 1, tags: [['e', keyPackage.event.id]] }))
    assertRejected(await putOne(keyPackage), 'blocked')
    assert.deepEqual(ids({ kinds: [443] }), [])
  })

  it("refuses a deletion aimed only at another author's events, and keeps them", async () => {
    const bobsNote = signed(BOB, { content: 'mine' })
    await put(bobsNote)
    assertRejected(await putOne(signed(ALICE, { kind: 5, created_at: T + 1, tags: [['e', bobsNote.event.id]] })), 'blocked')
    assert.deepEqual(ids({}), [bobsNote.event.id])
  })

  it("with mixed targets, deletes only the author's own", async () => {
    const own = signed(ALICE, { content: 'own' })
    const foreign = signed(BOB, { content: 'foreign' })
    await put(own, foreign)
    const deletion = signed(ALICE, { kind: 5, created_at: T + 1, tags: [['e', foreign.event.id], ['e', own.event.id]] })
    assert.deepEqual(await put(deletion), [{ status: 'stored' }])
    assert.deepEqual(new Set(ids({})), new Set([foreign.event.id, deletion.event.id]))
    assert.deepEqual(await put(foreign), [{ status: 'duplicate' }])
  })

  it('a deletion that arrives before its target refuses the target later', async () => {
    const note = signed(ALICE, { content: 'later' })
    assert.deepEqual(await put(signed(ALICE, { kind: 5, created_at: T + 1, tags: [['e', note.event.id]] })), [{ status: 'stored' }])
    assertRejected(await putOne(note), 'blocked')
    assert.deepEqual(ids({ kinds: [1] }), [])
  })

  it("a deletion naming another author's not-yet-seen event cannot keep it out", async () => {
    const bobsNote = signed(BOB, { content: 'not yet here' })
    await put(signed(ALICE, { kind: 5, created_at: T + 1, tags: [['e', bobsNote.event.id]] }))
    assert.deepEqual(await put(bobsNote), [{ status: 'stored' }])
    assert.deepEqual(ids({ authors: [bob] }), [bobsNote.event.id])
  })

  it('deleting a deletion has no effect', async () => {
    const note = signed(ALICE, { content: 'gone' })
    const first = signed(ALICE, { kind: 5, created_at: T + 1, tags: [['e', note.event.id]] })
    const second = signed(ALICE, { kind: 5, created_at: T + 2, tags: [['e', first.event.id]] })
    await put(note, first)
    await put(second)
    assert.ok(ids({ kinds: [5] }).includes(first.event.id))
    assert.deepEqual(await put(first), [{ status: 'duplicate' }])
    assertRejected(await putOne(note), 'blocked')
  })

  it('deleting a deletion that has not arrived yet has no effect either', async () => {
    const note = signed(ALICE, { content: 'gone' })
    const first = signed(ALICE, { kind: 5, created_at: T + 1, tags: [['e', note.event.id]] })
    const second = signed(ALICE, { kind: 5, created_at: T + 2, tags: [['e', first.event.id]] })
    await put(note, second)
    assert.deepEqual(await put(first), [{ status: 'stored' }])
    assert.deepEqual(ids({ ids: [note.event.id] }), [])
    assertRejected(await putOne(note), 'blocked')
  })
})

describe('EventStore: NIP-09 deletion by a', () => {
  const address = (kind: number, pubkey: string, d: string) => `${kind}:${pubkey}:${d}`

  it("deletes versions up to the deletion's created_at, then accepts only newer ones", async () => {
    const v1 = signed(ALICE, { kind: 30023, created_at: T, tags: [['d', 'post']] })
    const keep = signed(ALICE, { kind: 30023, created_at: T, tags: [['d', 'other']] })
    await put(v1, keep)
    const deletion = signed(ALICE, { kind: 5, created_at: T + 5, tags: [['a', address(30023, alice, 'post')]] })
    assert.deepEqual(await put(deletion), [{ status: 'stored' }])
    assert.deepEqual(ids({ kinds: [30023] }), [keep.event.id])

    assertRejected(await putOne(signed(ALICE, { kind: 30023, created_at: T + 3, tags: [['d', 'post']] })), 'blocked')
    assertRejected(await putOne(signed(ALICE, { kind: 30023, created_at: T + 5, tags: [['d', 'post']] })), 'blocked')
    const v3 = signed(ALICE, { kind: 30023, created_at: T + 8, tags: [['d', 'post']] })
    assert.deepEqual(await put(v3), [{ status: 'stored' }])
    assert.deepEqual(ids({ '#d': ['post'] }), [v3.event.id])
    // Older than the current version but newer than the deletion: the replaceable rule refuses it.
    assertRejected(await putOne(signed(ALICE, { kind: 30023, created_at: T + 7, tags: [['d', 'post']] })), 'invalid')
    // Covered by the deletion: still refused as deleted.
    assertRejected(await putOne(signed(ALICE, { kind: 30023, created_at: T + 4, tags: [['d', 'post']] })), 'blocked')
    assert.deepEqual(ids({ '#d': ['post'] }), [v3.event.id])
  })

  it('leaves a version newer than the deletion in place', async () => {
    const newer = signed(ALICE, { kind: 30023, created_at: T + 10, tags: [['d', 'post']] })
    await put(newer)
    await put(signed(ALICE, { kind: 5, created_at: T + 5, tags: [['a', address(30023, alice, 'post')]] }))
    assert.deepEqual(ids({ kinds: [30023] }), [newer.event.id])
  })

  it('reads a d value containing colons', async () => {
    const post = signed(ALICE, { kind: 30023, created_at: T, tags: [['d', 'a:b:c']] })
    const near = signed(ALICE, { kind: 30023, created_at: T, tags: [['d', 'a:b']] })
    await put(post, near)
    await put(signed(ALICE, { kind: 5, created_at: T + 1, tags: [['a', address(30023, alice, 'a:b:c')]] }))
    assert.deepEqual(ids({ kinds: [30023] }), [near.event.id])
  })

  it('deletes replaceable events by kind:pubkey: too', async () => {
    const relays = signed(ALICE, { kind: 10002, created_at: T })
    await put(relays)
    await put(signed(ALICE, { kind: 5, created_at: T + 1, tags: [['a', address(10002, alice, '')]] }))
    assert.deepEqual(ids({ kinds: [10002] }), [])
    assertRejected(await putOne(signed(ALICE, { kind: 10002, created_at: T + 1 })), 'blocked')
    assert.deepEqual(await put(signed(ALICE, { kind: 10002, created_at: T + 2 })), [{ status: 'stored' }])
  })

  it("refuses a deletion aimed only at another author's address", async () => {
    const bobs = signed(BOB, { kind: 30023, created_at: T, tags: [['d', 'post']] })
    await put(bobs)
    assertRejected(await putOne(signed(ALICE, { kind: 5, created_at: T + 1, tags: [['a', address(30023, bob, 'post')]] })), 'blocked')
    assert.deepEqual(ids({ kinds: [30023] }), [bobs.event.id])
    assert.deepEqual(await put(signed(BOB, { kind: 30023, created_at: T + 1, tags: [['d', 'post']] })), [{ status: 'stored' }])
  })
})

describe('EventStore: NIP-40 expiration', () => {
  it('hides expired events at query time and the sweeper removes them with their index entries', async () => {
    const soon = signed(ALICE, { content: 'soon', tags: [['t', 'x'], ['expiration', String(T + 10)]] })
    const later = signed(ALICE, { content: 'later', tags: [['t', 'x'], ['expiration', String(T + 20)]] })
    const never = signed(ALICE, { content: 'never', tags: [['t', 'x']] })
    await put(soon, later, never)
    const all = [{ '#t': ['x'] }]
    assert.equal(count(all, T + 9), 3)
    assert.equal(ids({ '#t': ['x'] }, T + 9).length, 3)
    assert.deepEqual(new Set(ids({ '#t': ['x'] }, T + 10)), new Set([later.event.id, never.event.id]))
    assert.equal(count(all, T + 10), 2)
    assert.deepEqual(ids({ ids: [soon.event.id] }, T + 10), [])

    assert.equal(await store.write(tx => tx.deleteExpired(T + 10, 100)), 1)
    store.refresh()
    // With a clock before every expiration, only what the sweeper left is found, through every index.
    assert.equal(store.get(soon.event.id), undefined)
    for (const raw of [{}, { '#t': ['x'] }, { authors: [alice] }, { kinds: [1] }, { authors: [alice], kinds: [1] }, { ids: [soon.event.id, never.event.id] }])
      assert.equal(ids(raw, 0).includes(soon.event.id), false, JSON.stringify(raw))
    assert.equal(count(all, 0), 2)
    assert.equal(store.size(), 2)
  })

  it('deleteExpired removes at most max events per call', async () => {
    await put(...[1, 2, 3].map(i => signed(ALICE, { content: String(i), tags: [['expiration', String(T + i)]] })))
    assert.equal(await store.write(tx => tx.deleteExpired(T + 100, 2)), 2)
    assert.equal(await store.write(tx => tx.deleteExpired(T + 100, 2)), 1)
    assert.equal(await store.write(tx => tx.deleteExpired(T + 100, 2)), 0)
    store.refresh()
    assert.equal(count([{}], 0), 0)
  })

  it('sweeps a long run of expired events in one call without skipping any', async () => {
    const expiring = Array.from({ length: 600 }, (_, i) =>
      unsigned({ pubkey: alice, created_at: T, kind: 1, tags: [['t', 'x'], ['expiration', String(T + 1 + (i % 50))]], content: String(i) }),
    )
    await put(...expiring, signed(ALICE, { content: 'stays', tags: [['t', 'x']] }))
    assert.equal(await store.write(tx => tx.deleteExpired(T + 100, 10_000)), 600)
    store.refresh()
    assert.equal(count([{}], 0), 1)
    assert.equal(count([{ '#t': ['x'] }], 0), 1)
    assert.equal(store.size(), 1)
  })

  it('leaves events that expire after now', async () => {
    const e = signed(ALICE, { tags: [['expiration', String(T + 10)]] })
    await put(e)
    assert.equal(await store.write(tx => tx.deleteExpired(T + 9, 100)), 0)
    store.refresh()
    assert.deepEqual(ids({}, T + 9), [e.event.id])
  })

  it('a replaced version with an expiration leaves nothing for the sweeper', async () => {
    const v1 = signed(ALICE, { kind: 0, created_at: T, tags: [['expiration', String(T + 10)]] })
    const v2 = signed(ALICE, { kind: 0, created_at: T + 1 })
    await put(v1, v2)
    assert.equal(await store.write(tx => tx.deleteExpired(T + 100, 100)), 0)
  })
})

describe('EventStore: long tag values', () => {
  it('finds events by values over 200 bytes (hashed keys) without confusing similar ones', async () => {
    const values = ['x'.repeat(200), 'x'.repeat(201), 'x'.repeat(300), `${'x'.repeat(299)}y`, 'é'.repeat(101), 'a'.repeat(64).toUpperCase()]
    const events = values.map((v, i) => signed(ALICE, { content: String(i), tags: [['r', v]] }))
    await put(...events)
    values.forEach((v, i) => {
      assert.deepEqual(ids({ '#r': [v] }), [events[i]?.event.id], `value ${i}`)
      assert.deepEqual(ids({ '#r': [v], kinds: [1] }), [events[i]?.event.id], `value ${i} with kinds`)
      assert.equal(count([{ '#r': [v] }]), 1)
    })
    assert.equal(ids({ '#r': [values[2], values[3]] }).length, 2)
    assert.deepEqual(ids({ '#r': ['x'.repeat(299)] }), [])
  })
})

describe('EventStore: db_query_timeout', () => {
  const many = Array.from({ length: 1000 }, (_, i) =>
    unsigned({ pubkey: alice, created_at: T + (i % 97), kind: i % 3 === 0 ? 7 : 1, tags: [['t', 'x']], content: String(i) }),
  )

  /** A clock that moves one millisecond every time it is read. */
  const ticking = () => {
    let now = 0
    return () => ++now
  }

  for (const raw of [{}, { '#t': ['x'] }, { authors: [alice] }, { kinds: [1, 7] }, { authors: [alice], kinds: [1, 7], '#t': ['x'] }]) {
    it(`stops a long scan at the deadline and returns what it found (${JSON.stringify(raw).slice(0, 40)})`, async () => {
      await put(...many)
      const full = store.query(filter(raw), bounds())
      assert.equal(full.timedOut, false)
      assert.equal(full.events.length, many.length)

      const partial = store.query(filter(raw), { limit: 10_000, now: T, deadline: 5, clock: ticking() })
      assert.equal(partial.timedOut, true)
      assert.ok(partial.events.length > 0 && partial.events.length < many.length, `${partial.events.length} events`)
      assert.deepEqual(partial.events, full.events.slice(0, partial.events.length))

      const counted = store.count([filter(raw)], { now: T, deadline: 5, clock: ticking() })
      assert.equal(counted.timedOut, true)
      assert.ok(counted.count < many.length)
    })
  }
})
