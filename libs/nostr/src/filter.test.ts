import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { MAX_CREATED_AT, type NostrEvent } from './event.js'
import { compareNewestFirst, isEmptyFilter, matchFilter, matchFilters, parseFilter, type Filter } from './filter.js'

const A = 'a'.repeat(64)
const B = 'b'.repeat(64)
const C = 'c'.repeat(64)

const parsed = (raw: unknown): Filter => {
  const result = parseFilter(raw)
  assert.ok(result.ok, result.ok ? '' : result.reason)
  return result.value
}

const refusal = (raw: unknown): string => {
  const result = parseFilter(raw)
  assert.equal(result.ok, false, `expected ${JSON.stringify(raw)} to be refused`)
  return result.ok ? '' : result.reason
}

const event = (fields: Partial<NostrEvent> = {}): NostrEvent => ({
  id: A,
  pubkey: B,
  created_at: 100,
  kind: 1,
  tags: [],
  content: '',
  sig: '0'.repeat(128),
  ...fields,
})

describe('parseFilter', () => {
  it('accepts every NIP-01 field and files tag conditions by letter', () => {
    const filter = parsed({ ids: [A], authors: [B], kinds: [0, 65535], '#e': [C], '#p': [A], '#t': ['x', ''], '#T': ['y'], since: 0, until: 10, limit: 0 })
    assert.deepEqual(filter, { ids: [A], authors: [B], kinds: [0, 65535], tags: { e: [C], p: [A], t: ['x', ''], T: ['y'] }, since: 0, until: 10, limit: 0 })
  })

  it('accepts an empty filter and empty lists', () => {
    assert.deepEqual(parsed({}), {})
    assert.deepEqual(parsed({ ids: [], authors: [], kinds: [], '#t': [] }), { ids: [], authors: [], kinds: [], tags: { t: [] } })
  })

  it('drops repeated values', () => {
    assert.deepEqual(parsed({ ids: [A, A, B], kinds: [1, 1], '#t': ['x', 'x'] }), { ids: [A, B], kinds: [1], tags: { t: ['x'] } })
  })

  it('refuses what is not an object', () => {
    for (const raw of [null, undefined, 1, 'filter', [], [{}]]) assert.match(refusal(raw), /^invalid: /)
  })

  it('refuses unknown keys, including malformed tag keys', () => {
    for (const key of ['foo', 'search_x', '#ab', '#', '#1', '#-', 'e', '##e', '# e', '#é'])
      assert.match(refusal({ [key]: ['x'] }), /^invalid: unknown filter field/, key)
  })

  it('refuses ids and authors that are not lowercase 64-hex', () => {
    for (const key of ['ids', 'authors'])
      for (const value of [A, [A.toUpperCase()], ['a'.repeat(63)], [1], [null], 'x'])
        assert.match(refusal({ [key]: value }), new RegExp(`^invalid: ${key} must be`), `${key}=${JSON.stringify(value)}`)
  })

  it('refuses non-hex #e and #p values, but accepts any strings for other letters', () => {
    for (const key of ['#e', '#p'])
      for (const value of [['x'], [A.toUpperCase()], ['a'.repeat(65)], [1], 'x'])
        assert.match(refusal({ [key]: value }), /^invalid: #[ep] must be an array of 64-character lowercase hex strings/)
    assert.deepEqual(parsed({ '#E': ['x'], '#P': ['y'] }).tags, { E: ['x'], P: ['y'] })
    for (const value of [[1], [null], 'x', [['x']]]) assert.match(refusal({ '#t': value }), /^invalid: #t must be an array of strings/)
  })

  it('checks long lists of ids, authors, #e and #p as strictly as short ones (one bad value anywhere)', () => {
    // Each of these, put first, in the middle or last among 40 valid values, is refused: a faster check of a
    // long list (tried: the values joined, decoded as hex and encoded again) must keep every case.
    const valid = Array.from({ length: 40 }, (_, i) => i.toString(16).padStart(2, '0').repeat(32))
    const bad = [
      A.toUpperCase(), // upper case
      A.slice(0, 63) + 'g', // not hex
      A.slice(0, 63) + '\uff41', // fullwidth a: its low byte is 'A'
      A.slice(0, 63) + '\uff61', // its low byte is 'a'
      A.slice(0, 63) + '\u00e1', // Latin-1
      A.slice(0, 62) + '\u0000\u0000',
      A.slice(0, 63) + ' ',
      'a'.repeat(63),
      'a'.repeat(65),
      1,
      null,
    ]
    for (const key of ['ids', 'authors', '#e', '#p']) {
      assert.deepEqual(key.startsWith('#') ? parsed({ [key]: valid }).tags?.[key.slice(1)] : parsed({ [key]: valid })[key as 'ids' | 'authors'], valid)
      for (const value of bad)
        for (const at of [0, 20, 40]) {
          const list: unknown[] = [...valid]
          list.splice(at, 0, value)
          assert.match(refusal({ [key]: list }), /^invalid: (ids|authors|#e|#p) must be an array of 64-character lowercase hex strings/, `${key}: ${JSON.stringify(value)} at ${at}`)
        }
      // 63 and 65 characters side by side would join into valid hex.
      assert.match(refusal({ [key]: [...valid, 'a'.repeat(63), 'a'.repeat(65)] }), /^invalid: /)
    }
  })

  it('refuses non-integer or out-of-range kinds', () => {
    for (const value of [[1.5], ['1'], [-1], [65536], [null], 1]) assert.match(refusal({ kinds: value }), /^invalid: kinds /)
  })

  it('refuses since, until and limit that are not non-negative safe integers', () => {
    for (const key of ['since', 'until', 'limit'])
      for (const value of [-1, 1.5, '10', null, 2 ** 53, Infinity])
        assert.match(refusal({ [key]: value }), new RegExp(`^invalid: ${key} must be a non-negative integer`))
  })
})

describe('matchFilter', () => {
  it('matches everything with an empty filter', () => {
    assert.equal(matchFilter({}, event()), true)
  })

  it('treats since and until as inclusive', () => {
    assert.equal(matchFilter({ since: 100, until: 100 }, event()), true)
    assert.equal(matchFilter({ since: 101 }, event()), false)
    assert.equal(matchFilter({ until: 99 }, event()), false)
  })

  it('needs every condition and any value within one', () => {
    const e = event({ tags: [['t', 'x'], ['p', C]] })
    assert.equal(matchFilter({ ids: [C, A], authors: [B], kinds: [7, 1], tags: { t: ['y', 'x'], p: [C] } }, e), true)
    assert.equal(matchFilter({ ids: [A], authors: [C] }, e), false)
    assert.equal(matchFilter({ tags: { t: ['x'], p: [A] } }, e), false)
  })

  it('matches tags on their first value only, by exact (case-sensitive) letter', () => {
    const e = event({ tags: [['t', 'x', 'y'], ['tt', 'z'], ['T', 'w'], ['r']] })
    assert.equal(matchFilter({ tags: { t: ['x'] } }, e), true)
    assert.equal(matchFilter({ tags: { t: ['y'] } }, e), false)
    assert.equal(matchFilter({ tags: { t: ['z'] } }, e), false)
    assert.equal(matchFilter({ tags: { t: ['w'] } }, e), false)
    assert.equal(matchFilter({ tags: { T: ['w'] } }, e), true)
    assert.equal(matchFilter({ tags: { r: [''] } }, e), false)
  })

  it('matches nothing with an empty list', () => {
    for (const filter of [{ ids: [] }, { authors: [] }, { kinds: [] }, { tags: { t: [] } }]) assert.equal(matchFilter(filter, event({ tags: [['t', 'x']] })), false)
  })

  it('matchFilters is true when any filter matches', () => {
    assert.equal(matchFilters([{ kinds: [2] }, { authors: [B] }], event()), true)
    assert.equal(matchFilters([{ kinds: [2] }, { authors: [C] }], event()), false)
    assert.equal(matchFilters([], event()), false)
  })
})

describe('isEmptyFilter', () => {
  it('is true for empty lists, since after until, and since past the last storable second', () => {
    for (const filter of [{ ids: [] }, { authors: [] }, { kinds: [] }, { tags: { t: ['x'], p: [] } }, { since: 11, until: 10 }, { since: MAX_CREATED_AT + 1 }])
      assert.equal(isEmptyFilter(filter), true, JSON.stringify(filter))
  })

  it('is false for filters that can match', () => {
    for (const filter of [{}, { since: 10, until: 10 }, { since: MAX_CREATED_AT }, { limit: 0 }, { tags: { t: ['x'] } }])
      assert.equal(isEmptyFilter(filter), false, JSON.stringify(filter))
  })
})

describe('compareNewestFirst', () => {
  it('sorts newest first and ties by lowest id', () => {
    const events = [
      { created_at: 5, id: B },
      { created_at: 9, id: C },
      { created_at: 5, id: A },
      { created_at: 5, id: C },
      { created_at: 0, id: A },
    ]
    assert.deepEqual(
      [...events].sort(compareNewestFirst),
      [
        { created_at: 9, id: C },
        { created_at: 5, id: A },
        { created_at: 5, id: B },
        { created_at: 5, id: C },
        { created_at: 0, id: A },
      ],
    )
    assert.equal(compareNewestFirst({ created_at: 1, id: A }, { created_at: 1, id: A }), 0)
  })
})
