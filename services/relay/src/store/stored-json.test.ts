// The byte-level reads of a stored event's head (stored-json.ts) and the checks built on them
// (query.ts residualMatcher) against JSON.parse and compileFilter on random events and filters.
// Reproduce a failure with PROPERTY_SEED=<seed printed in the message>.
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { MAX_CREATED_AT, matchFilter, parseFilter, type Filter, type NostrEvent } from '@msr/nostr'
import { chooser, mulberry32, unsigned, type RawFilter } from '../testing/fixtures.js'
import { planOptions, residualMatcher, type Plan } from './query.js'
import { readHead, storedCreatedAt, storedKind, storedPubkey, type StoredHead } from './stored-json.js'

const SEED = Number(process.env.PROPERTY_SEED || 20261206)
const BASE = 1_700_000_000

const generator = (seed: number) => {
  const c = chooser(mulberry32(seed))
  const authors = Array.from({ length: 4 }, c.hex)
  const refs = Array.from({ length: 4 }, c.hex)
  const kinds = [0, 1, 7, 445, 1059, 30023, 65535]
  const words = ['', 'x', 'nostr', 'Ünï 🎉', '"kind":1', ',"created_at":5,', 'x'.repeat(201), refs[0] as string]
  const letters = ['e', 'p', 't', 'h']
  const valuesFor = (letter: string) => (letter === 'e' || letter === 'p' || letter === 'h' ? refs : words)
  const time = () => (c.chance(0.9) ? BASE + c.int(20) : c.pick([0, 1, 9, 10, MAX_CREATED_AT]))
  const event = (): NostrEvent => {
    const tags = Array.from({ length: c.int(4) }, () => {
      const letter = c.pick(letters)
      return [letter, c.pick(valuesFor(letter))]
    })
    return unsigned({ pubkey: c.pick(authors), created_at: time(), kind: c.pick(kinds), tags, content: c.pick(words) }).event
  }
  const filter = (ids: string[]): Filter => {
    const raw: RawFilter = {}
    if (c.chance(0.2)) raw.ids = c.some(ids, 3)
    if (c.chance(0.5)) raw.authors = c.some([...authors, c.hex()], 2)
    if (c.chance(0.5)) raw.kinds = c.some([...kinds, 2], 2)
    for (let n = c.int(3); n > 0; n--) {
      const letter = c.pick(letters)
      raw[`#${letter}`] = c.some(valuesFor(letter), 2)
    }
    if (c.chance(0.4)) raw.since = c.chance(0.9) ? BASE + c.int(22) : c.pick([0, 10])
    if (c.chance(0.4)) raw.until = c.chance(0.9) ? BASE + c.int(22) : c.pick([9, MAX_CREATED_AT])
    const parsed = parseFilter(raw)
    assert.ok(parsed.ok, `seed ${seed}: generated filter refused: ${JSON.stringify(raw)}`)
    return parsed.value
  }
  return { c, event, filter }
}

/** The event's JSON in the canonical layout, and in other layouts the byte reader must refuse (then the event is parsed). */
const layouts = (e: NostrEvent): Array<[string, string]> => [
  ['canonical', JSON.stringify({ id: e.id, pubkey: e.pubkey, created_at: e.created_at, kind: e.kind, tags: e.tags, content: e.content, sig: e.sig })],
  ['reordered', JSON.stringify({ kind: e.kind, created_at: e.created_at, pubkey: e.pubkey, id: e.id, tags: e.tags, content: e.content, sig: e.sig })],
  ['spaced', JSON.stringify({ id: e.id, pubkey: e.pubkey, created_at: e.created_at, kind: e.kind, tags: e.tags, content: e.content, sig: e.sig }, null, 1)],
  ['kind later', JSON.stringify({ id: e.id, pubkey: e.pubkey, created_at: e.created_at, tags: e.tags, kind: e.kind, content: e.content, sig: e.sig })],
]

/** What a plan's index guarantees of every candidate it yields (the part residualMatcher may skip). */
const indexAdmits = (plan: Plan, filter: Filter, e: NostrEvent): boolean => {
  const time = (filter.since === undefined || e.created_at >= filter.since) && (filter.until === undefined || e.created_at <= filter.until)
  const authors = filter.authors === undefined || filter.authors.includes(e.pubkey)
  const kinds = filter.kinds === undefined || filter.kinds.includes(e.kind)
  if (plan.index === 'ids') return filter.ids?.includes(e.id) ?? false
  if (plan.index === 'author_kind') return time && authors && kinds
  if (plan.index === 'author') return time && authors
  if (plan.index === 'kind') return time && kinds
  if (plan.index === 'time') return time
  const letter = String.fromCharCode(plan.prefixes[0]?.[0] ?? 0)
  return time && e.tags.some(t => t[0] === letter && t[1] !== undefined && (filter.tags?.[letter] ?? []).includes(t[1]))
}

describe('stored event head read from its bytes', () => {
  it(`readHead gives JSON.parse's created_at and kind for canonical JSON, and refuses other layouts (seed ${SEED})`, () => {
    const gen = generator(SEED)
    const head: StoredHead = { createdAt: -1, kind: -1 }
    for (let i = 0; i < 2000; i++) {
      const e = gen.event()
      for (const [name, json] of layouts(e)) {
        const ok = readHead(Buffer.from(json), head)
        assert.equal(ok, name === 'canonical', `seed ${SEED}, event ${i}, ${name}: ${json.slice(0, 200)}`)
        if (!ok) continue
        assert.deepEqual(head, { createdAt: e.created_at, kind: e.kind }, `seed ${SEED}, event ${i}`)
        assert.equal(storedPubkey(Buffer.from(json)), e.pubkey)
      }
    }
  })

  it('storedKind and storedCreatedAt read canonical bytes, and parse bytes laid out otherwise', () => {
    const { event, json } = unsigned({ pubkey: 'ab'.repeat(32), created_at: 1_700_000_123, kind: 30_023, tags: [['kind', '7']], content: ',"kind":1,' })
    const reordered = JSON.stringify({ kind: event.kind, created_at: event.created_at, id: event.id, pubkey: event.pubkey, tags: event.tags, content: event.content, sig: event.sig })
    for (const bytes of [Buffer.from(json), Buffer.from(reordered)]) {
      assert.equal(storedKind(bytes), 30_023)
      assert.equal(storedCreatedAt(bytes), 1_700_000_123)
    }
  })

  it('refuses truncated or malformed heads instead of reading past them', () => {
    const e = unsigned({ pubkey: 'ab'.repeat(32), created_at: 1_700_000_000, kind: 1, tags: [], content: '' }).event
    const json = JSON.stringify({ id: e.id, pubkey: e.pubkey, created_at: e.created_at, kind: e.kind, tags: e.tags, content: e.content, sig: e.sig })
    const head: StoredHead = { createdAt: -1, kind: -1 }
    for (const cut of [0, 10, 100, 162, 170, 172, 180, 181]) assert.equal(readHead(Buffer.from(json.slice(0, cut)), head), false, `cut at ${cut}`)
    assert.equal(readHead(Buffer.from(json.replace('"created_at":1700000000', '"created_at":1.7e9')), head), false)
    assert.equal(readHead(Buffer.from(json.replace('"kind":1', '"kind":-1')), head), false)
    assert.equal(readHead(Buffer.from(json), head), true)
  })

  it(`residualMatcher agrees with matchFilter on what every plan's index admits, in every layout (seed ${SEED})`, () => {
    const gen = generator(SEED + 1)
    const events = Array.from({ length: 300 }, gen.event)
    const ids = events.map(e => e.id)
    let checked = 0
    for (let f = 0; f < 300; f++) {
      const filter = gen.filter(ids)
      for (const plan of planOptions(filter)) {
        const residual = residualMatcher(filter, plan)
        for (const e of events) {
          if (!indexAdmits(plan, filter, e)) continue
          const expected = matchFilter(filter, e)
          for (const [name, json] of layouts(e)) {
            const actual = residual === undefined ? true : residual(Buffer.from(json))
            assert.equal(actual, expected, `seed ${SEED + 1}, ${plan.index} plan (exact ${plan.exact}), ${name}: ${JSON.stringify(filter)} vs ${json}`)
            checked++
          }
        }
      }
    }
    assert.ok(checked > 10_000, `only ${checked} checks`)
  })
})
