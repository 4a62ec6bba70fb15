// Property test: matchFilter (on a parsed filter) agrees with a naive oracle written from the NIP-01 text
// (on the raw JSON filter), for thousands of random events and hundreds of random filters.
// Reproduce a failure with PROPERTY_SEED=<seed printed in the message>.
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import type { NostrEvent } from './event.js'
import { compileFilter, matchFilter, parseFilter } from './filter.js'

const SEED = Number(process.env.PROPERTY_SEED || 0x5eed01)
const EVENTS = 2000
const FILTERS = 600

/** mulberry32: a small seeded PRNG, so every run with the same seed sees the same cases. */
const mulberry32 = (seed: number) => () => {
  seed = (seed + 0x6d2b79f5) | 0
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed)
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296
}

type RawFilter = Record<string, unknown>

/** NIP-01, read literally: every present condition must hold; a list holds when any of its values does. */
const oracle = (filter: RawFilter, event: NostrEvent): boolean => {
  for (const [key, value] of Object.entries(filter)) {
    if (key === 'ids' && !(value as string[]).some(id => id === event.id)) return false
    if (key === 'authors' && !(value as string[]).some(a => a === event.pubkey)) return false
    if (key === 'kinds' && !(value as number[]).some(k => k === event.kind)) return false
    if (key === 'since' && !(event.created_at >= (value as number))) return false
    if (key === 'until' && !(event.created_at <= (value as number))) return false
    if (key.startsWith('#')) {
      const letter = key.slice(1)
      const hasTag = event.tags.some(tag => tag.length >= 2 && tag[0] === letter && (value as string[]).some(v => v === tag[1]))
      if (!hasTag) return false
    }
  }
  return true
}

const hex = (rand: () => number) => Array.from({ length: 64 }, () => '0123456789abcdef'[Math.floor(rand() * 16)]).join('')

const generators = (rand: () => number) => {
  const pick = <T>(items: readonly T[]): T => items[Math.floor(rand() * items.length)] as T
  const some = <T>(items: readonly T[], max = 3): T[] => Array.from({ length: Math.floor(rand() * (max + 1)) }, () => pick(items))
  const authors = Array.from({ length: 4 }, () => hex(rand))
  const refs = Array.from({ length: 5 }, () => hex(rand))
  const words = ['', 'x', 'y', 'nostr', 'X', 'a'.repeat(300), refs[0] as string]
  const letters = ['e', 'p', 't', 'T', 'd', 'z']
  const kinds = [0, 1, 3, 7, 10002, 30023]
  const valuesFor = (letter: string) => (letter === 'e' || letter === 'p' ? refs : words)
  const ids: string[] = []

  const tag = (): string[] => {
    const roll = rand()
    if (roll < 0.05) return [pick(letters)] // a tag without a value
    if (roll < 0.1) return [pick(['tt', 'ee', '', 'expiration']), pick(words)] // not a single letter
    const letter = pick(letters)
    return rand() < 0.2 ? [letter, pick(valuesFor(letter)), pick(words)] : [letter, pick(valuesFor(letter))]
  }

  const event = (): NostrEvent => {
    const id = rand() < 0.02 && ids.length > 0 ? pick(ids) : hex(rand) // an occasional repeated id
    ids.push(id)
    return { id, pubkey: pick(authors), created_at: Math.floor(rand() * 20), kind: pick(kinds), tags: Array.from({ length: Math.floor(rand() * 6) }, tag), content: '', sig: '0'.repeat(128) }
  }

  const filter = (): RawFilter => {
    const f: RawFilter = {}
    if (rand() < 0.25) f.ids = some([...ids.slice(-50), hex(rand)], 4)
    if (rand() < 0.4) f.authors = some([...authors, hex(rand)])
    if (rand() < 0.4) f.kinds = some([...kinds, 2, 65535])
    for (let n = Math.floor(rand() * 3); n > 0; n--) {
      const letter = pick(letters)
      f[`#${letter}`] = some(valuesFor(letter), 3)
    }
    if (rand() < 0.3) f.since = Math.floor(rand() * 22)
    if (rand() < 0.3) f.until = Math.floor(rand() * 22)
    if (rand() < 0.2) f.limit = Math.floor(rand() * 10)
    return f
  }

  return { event, filter }
}

describe('matchFilter and compileFilter property', () => {
  it(`agrees with a naive NIP-01 oracle (${EVENTS} events × ${FILTERS} filters, seed ${SEED})`, () => {
    const gen = generators(mulberry32(SEED))
    const events = Array.from({ length: EVENTS }, gen.event)
    let matches = 0
    for (let i = 0; i < FILTERS; i++) {
      const raw = gen.filter()
      const parsed = parseFilter(raw)
      assert.ok(parsed.ok, `seed ${SEED}: generated filter refused: ${JSON.stringify(raw)}`)
      const compiled = compileFilter(parsed.value)
      for (const event of events) {
        const expected = oracle(raw, event)
        if (expected) matches++
        if (matchFilter(parsed.value, event) !== expected)
          assert.fail(`seed ${SEED}, filter #${i}: matchFilter says ${!expected}, oracle ${expected}\nfilter ${JSON.stringify(raw)}\nevent ${JSON.stringify(event)}`)
        if (compiled(event) !== expected)
          assert.fail(`seed ${SEED}, filter #${i}: compileFilter says ${!expected}, oracle ${expected}\nfilter ${JSON.stringify(raw)}\nevent ${JSON.stringify(event)}`)
      }
    }
    // The generator must produce both outcomes often, or the property says little.
    assert.ok(matches > EVENTS * FILTERS * 0.02, `seed ${SEED}: only ${matches} matches`)
    assert.ok(matches < EVENTS * FILTERS * 0.9, `seed ${SEED}: ${matches} matches`)
  })
})
