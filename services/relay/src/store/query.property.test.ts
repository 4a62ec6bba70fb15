// Property test: EventStore.query and EventStore.count agree with a naive model of what the store should
// hold (NIP-01 replaceable/addressable rules applied in the model) and a naive NIP-01 matcher.
// Reproduce a failure with PROPERTY_SEED=<seed printed in the message>.
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, describe, it } from 'node:test'
import { MAX_CREATED_AT, parseFilter, type Filter, type NostrEvent } from '@msr/nostr'
import { chooser, mulberry32, oracleMatch, oracleOrder, unsigned, type RawFilter, type Ready } from '../testing/fixtures.js'
import { EventStore } from './event-store.js'
import { planFilter } from './query.js'

const SEED = Number(process.env.PROPERTY_SEED || 20240601)
const EVENTS = 2500
const QUERIES = 400
const COUNTS = 150
const BASE = 1_700_000_000

// Written from the NIP-01 text, independently of @msr/nostr's helpers.
const replaceable = (k: number) => k === 0 || k === 3 || (k >= 10000 && k < 20000)
const addressable = (k: number) => k >= 30000 && k < 40000
const address = (e: NostrEvent): string | undefined => {
  if (replaceable(e.kind)) return `${e.kind}:${e.pubkey}`
  if (!addressable(e.kind)) return undefined
  const d = e.tags.find(t => t[0] === 'd')
  return `${e.kind}:${e.pubkey}:${d?.[1] ?? ''}`
}
const expiration = (e: NostrEvent): number | undefined => {
  const tag = e.tags.find(t => t[0] === 'expiration' && t.length >= 2)
  return tag && /^\d+$/.test(tag[1] as string) ? Number(tag[1]) : undefined
}
const visible = (e: NostrEvent, now: number) => {
  const at = expiration(e)
  return at === undefined || at > now
}

/** What the store should hold, and the outcome it should report for each arrival. */
class Model {
  readonly events = new Map<string, Ready>()
  private readonly current = new Map<string, NostrEvent>()

  apply(r: Ready): string {
    const e = r.event
    if (this.events.has(e.id)) return 'duplicate'
    const key = address(e)
    const held = key === undefined ? undefined : this.current.get(key)
    if (held && (held.created_at > e.created_at || (held.created_at === e.created_at && held.id < e.id))) return 'rejected'
    if (held) this.events.delete(held.id)
    if (key !== undefined) this.current.set(key, e)
    this.events.set(e.id, r)
    return 'stored'
  }

  query(raw: RawFilter, now: number, skip: Set<string>): Ready[] {
    return [...this.events.values()]
      .filter(r => oracleMatch(raw, r.event) && visible(r.event, now) && !skip.has(r.event.id))
      .sort((a, b) => oracleOrder(a.event, b.event))
  }
}

const corpus = (seed: number, kinds: readonly number[]) => {
  const c = chooser(mulberry32(seed))
  const authors = Array.from({ length: 5 }, c.hex)
  const refs = Array.from({ length: 6 }, c.hex)
  const words = ['', 'x', 'y', 'nostr', 'Ünï 🎉', 'x'.repeat(200), 'x'.repeat(201), 'x'.repeat(300), `${'x'.repeat(299)}y`, refs[0] as string, (refs[1] as string).toUpperCase()]
  const letters = ['e', 'p', 't', 'd', 'a', 'T', 'r']
  const valuesFor = (letter: string) => (letter === 'e' || letter === 'p' ? refs : words)
  const time = () => (c.chance(0.9) ? BASE + c.int(40) : c.pick([0, 1, MAX_CREATED_AT - 1, MAX_CREATED_AT]))
  const generated: Ready[] = []

  const tag = (): string[] => {
    if (c.chance(0.05)) return [c.pick(letters)]
    if (c.chance(0.05)) return [c.pick(['tt', 'ee', '']), c.pick(words)]
    const letter = c.pick(letters)
    return c.chance(0.15) ? [letter, c.pick(valuesFor(letter)), 'extra'] : [letter, c.pick(valuesFor(letter))]
  }

  const event = (): Ready => {
    if (c.chance(0.03) && generated.length > 0) return c.pick(generated) // a re-sent event
    const tags = Array.from({ length: c.int(5) }, tag)
    if (c.chance(0.1)) tags.splice(c.int(tags.length + 1), 0, ['expiration', String(BASE + c.int(40))])
    const e = unsigned({ pubkey: c.pick(authors), created_at: time(), kind: c.pick(kinds), tags, content: String(generated.length) })
    generated.push(e)
    return e
  }

  const filter = (): RawFilter => {
    const f: RawFilter = {}
    if (c.chance(0.15)) f.ids = c.some([...generated.map(g => g.event.id).slice(-200), c.hex()], 5)
    if (c.chance(0.4)) f.authors = c.some([...authors, c.hex()], 3)
    if (c.chance(0.4)) f.kinds = c.some([...kinds, 2], 3)
    if (c.chance(0.06)) {
      // More author × kind pairs than the planner will enumerate.
      f.authors = [...authors, ...Array.from({ length: 70 }, c.hex)]
      f.kinds = [c.pick(kinds), ...Array.from({ length: 70 }, (_, i) => 100 + i)]
    }
    for (let n = c.int(3); n > 0; n--) {
      const letter = c.pick(letters)
      f[`#${letter}`] = c.some(valuesFor(letter), 3)
    }
    if (c.chance(0.3)) f.since = c.chance(0.9) ? BASE + c.int(45) : c.pick([0, MAX_CREATED_AT])
    if (c.chance(0.3)) f.until = c.chance(0.9) ? BASE + c.int(45) : c.pick([0, MAX_CREATED_AT])
    if (c.chance(0.5)) f.limit = c.pick([0, 1, 3, 10, 100, 5000])
    return f
  }

  return { c, event, filter }
}

const parse = (raw: RawFilter): Filter => {
  const parsed = parseFilter(raw)
  assert.ok(parsed.ok, `seed ${SEED}: generated filter refused: ${JSON.stringify(raw)}`)
  return parsed.value
}

const variants: Array<[string, number[]]> = [
  ['regular kinds only', [1, 4, 7, 1059, 9999, 40000]],
  ['with replaceable and addressable kinds', [0, 3, 10002, 19999, 30000, 30023, 39999, 1, 7]],
]

describe('EventStore query property', () => {
  const dirs: string[] = []
  after(() => dirs.forEach(d => rmSync(d, { recursive: true, force: true })))

  variants.forEach(([name, kinds], v) => {
    it(`${name}: query and count equal the oracle (${EVENTS} events, ${QUERIES} queries, ${COUNTS} counts, seed ${SEED})`, async () => {
      const seed = SEED + v
      const dir = mkdtempSync(join(tmpdir(), 'msr-query-property-'))
      dirs.push(dir)
      const store = EventStore.open(dir)
      const gen = corpus(seed, kinds)
      const model = new Model()
      const arrivals = Array.from({ length: EVENTS }, gen.event)
      for (let i = 0; i < arrivals.length; i += 100) {
        const batch = arrivals.slice(i, i + 100)
        const outcomes = await store.write(tx => batch.map(r => tx.apply(r.event, Buffer.from(r.json))))
        batch.forEach((r, j) => {
          const expected = model.apply(r)
          const outcome = outcomes[j]
          assert.equal(outcome?.status, expected, `seed ${seed}: arrival ${i + j} ${r.json}: ${JSON.stringify(outcome)}`)
          if (outcome?.status === 'rejected') assert.match(outcome.reason, /^invalid: /)
        })
      }
      store.refresh()
      assert.equal(store.size(), model.events.size, `seed ${seed}: stored event count`)

      let nonEmpty = 0
      const plans = new Map<string, number>()
      for (let q = 0; q < QUERIES; q++) {
        const raw = gen.filter()
        const plan = planFilter(parse(raw))
        const planName = `${plan.index}${plan.exact ? ' exact' : ''}`
        plans.set(planName, (plans.get(planName) ?? 0) + 1)
        const now = gen.c.pick([0, BASE + 10, BASE + 25, BASE + 45])
        const limit = typeof raw.limit === 'number' ? raw.limit : 10_000
        const all = model.query(raw, now, new Set())
        const skip = new Set(gen.c.chance(0.2) ? all.filter(() => gen.c.chance(0.3)).map(r => r.event.id) : [])
        const expected = model.query(raw, now, skip).slice(0, limit)
        const actual = store.query(parse(raw), { limit, now, deadline: Infinity, clock: () => 0 }, skip)
        if (expected.length > 0) nonEmpty++
        const where = `seed ${seed}, query #${q} at now=${now}, skip ${skip.size}: ${JSON.stringify(raw).slice(0, 2000)}`
        assert.equal(actual.timedOut, false, where)
        assert.deepEqual(actual.events.map(e => e.id), expected.map(r => r.event.id), where)
        assert.deepEqual(actual.events.map(e => e.json), expected.map(r => r.json), where)
      }
      assert.ok(nonEmpty > QUERIES / 4, `seed ${seed}: only ${nonEmpty} of ${QUERIES} queries matched anything`)
      // Every index the planner can choose, exact or re-checked on the event, must have been exercised.
      const expectedPlans = ['ids', 'ids exact', 'author_kind exact', 'author_kind', 'tag exact', 'tag', 'author exact', 'author', 'kind exact', 'time exact']
      for (const name of expectedPlans) assert.ok((plans.get(name) ?? 0) >= 1, `seed ${seed}: plan "${name}" used ${plans.get(name) ?? 0} times`)

      for (let q = 0; q < COUNTS; q++) {
        const raws = Array.from({ length: 1 + gen.c.int(3) }, gen.filter)
        const now = gen.c.pick([0, BASE + 10, BASE + 25, BASE + 45])
        const expected = new Set(raws.flatMap(raw => model.query(raw, now, new Set()).map(r => r.event.id))).size
        const actual = store.count(raws.map(parse), { now, deadline: Infinity, clock: () => 0 })
        assert.deepEqual(actual, { count: expected, timedOut: false }, `seed ${seed}, count #${q} at now=${now}: ${JSON.stringify(raws).slice(0, 2000)}`)
      }
      await store.close()
    })
  })
})
