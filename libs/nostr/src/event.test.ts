import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { describe, it } from 'node:test'
import { finalizeEvent, getEventHash } from 'nostr-tools/pure'
import {
  addressOf,
  checkEvent,
  computeId,
  dTag,
  expirationOf,
  isAddressable,
  isEphemeral,
  isHex64,
  isProtected,
  isReplaceable,
  MAX_CREATED_AT,
  readableId,
  sha256Hex,
  toJson,
  type NostrEvent,
} from './event.js'

const SECRET = new Uint8Array(32).fill(7)

/** A real event signed by nostr-tools, as a plain object (no symbol brand). */
const signed = (template: Partial<Pick<NostrEvent, 'kind' | 'created_at' | 'tags' | 'content'>> = {}): NostrEvent => {
  const e = finalizeEvent({ kind: 1, created_at: 1_700_000_000, tags: [], content: 'hello', ...template }, SECRET)
  return { id: e.id, pubkey: e.pubkey, created_at: e.created_at, kind: e.kind, tags: e.tags, content: e.content, sig: e.sig }
}

/** An event with a correct id and a syntactically valid signature (checkEvent does not verify signatures). */
const withId = (fields: Omit<NostrEvent, 'id' | 'sig'>): NostrEvent => ({ ...fields, id: computeId(fields), sig: 'ab'.repeat(64) })

const base = signed({ tags: [['e', 'a'.repeat(64)], ['t', 'nostr']] })

const reasonOf = (raw: unknown): string => {
  const result = checkEvent(raw)
  assert.equal(result.ok, false, `expected ${JSON.stringify(raw)} to be refused`)
  return result.ok ? '' : result.reason
}

const canonical = (e: NostrEvent): string =>
  JSON.stringify({ id: e.id, pubkey: e.pubkey, created_at: e.created_at, kind: e.kind, tags: e.tags, content: e.content, sig: e.sig })

describe('checkEvent', () => {
  it('accepts an event signed by nostr-tools and returns its canonical JSON', () => {
    const result = checkEvent(base)
    assert.ok(result.ok)
    assert.equal(result.value.json, canonical(base))
    assert.equal(result.value.json, toJson(base))
    assert.deepEqual(JSON.parse(result.value.json), base)
  })

  it('writes canonical field order whatever order the fields arrived in', () => {
    const reversed = Object.fromEntries(Object.entries(base).reverse())
    const result = checkEvent(reversed)
    assert.ok(result.ok)
    assert.equal(result.value.json, canonical(base))
    assert.ok(result.value.json.startsWith(`{"id":"${base.id}","pubkey":`))
  })

  it('round-trips: the canonical JSON parses back to an event with the same canonical JSON', () => {
    const first = checkEvent(base)
    assert.ok(first.ok)
    const second = checkEvent(JSON.parse(first.value.json))
    assert.ok(second.ok)
    assert.equal(second.value.json, first.value.json)
  })

  it('refuses values that are not objects', () => {
    for (const raw of [null, undefined, 1, 'event', true, [], [base]]) assert.match(reasonOf(raw), /^invalid: /)
  })

  it('refuses an unknown field, naming it', () => {
    assert.match(reasonOf({ ...base, extra: 1 }), /^invalid: unknown event field "extra"/)
    assert.match(reasonOf({ ...base, ['x'.repeat(100)]: 1 }), /^invalid: unknown event field "x{32}"$/)
  })

  it('refuses an event missing any field', () => {
    for (const field of Object.keys(base)) {
      const { [field as keyof NostrEvent]: _dropped, ...rest } = base
      assert.match(reasonOf(rest), /^invalid: /, `missing ${field}`)
    }
  })

  it('refuses a bad id, pubkey or sig: wrong type, length, uppercase, non-hex', () => {
    const bad64 = [1, null, 'a'.repeat(63), 'a'.repeat(65), base.id.toUpperCase(), 'g'.repeat(64), ` ${base.id.slice(1)}`]
    for (const value of bad64) {
      assert.match(reasonOf({ ...base, id: value }), /^invalid: id /)
      assert.match(reasonOf({ ...base, pubkey: value }), /^invalid: pubkey /)
    }
    const bad128 = [1, null, 'a'.repeat(127), 'a'.repeat(129), base.sig.toUpperCase(), 'z'.repeat(128)]
    for (const value of bad128) assert.match(reasonOf({ ...base, sig: value }), /^invalid: sig /)
  })

  it('refuses created_at that is not an integer in [0, 2^32-1], and accepts both ends', () => {
    for (const value of [-1, 1.5, '1700000000', null, NaN, Infinity, MAX_CREATED_AT + 1])
      assert.match(reasonOf({ ...base, created_at: value }), /^invalid: created_at /)
    for (const created_at of [0, MAX_CREATED_AT]) assert.ok(checkEvent(withId({ ...base, created_at })).ok)
  })

  it('refuses kind that is not an integer in [0, 65535], and accepts both ends', () => {
    for (const value of [-1, 1.5, '1', null, 65536]) assert.match(reasonOf({ ...base, kind: value }), /^invalid: kind /)
    for (const kind of [0, 65535]) assert.ok(checkEvent(withId({ ...base, kind })).ok)
  })

  it('refuses content that is not a string', () => {
    for (const value of [1, null, ['x'], { a: 1 }]) assert.match(reasonOf({ ...base, content: value }), /^invalid: content /)
  })

  it('refuses tags that are not an array of arrays of strings, accepts empty tags', () => {
    for (const value of [null, 'e', [['e', 1]], ['e'], [[null]], [['e', ['x']]], { 0: ['e'] }])
      assert.match(reasonOf({ ...base, tags: value }), /^invalid: tags /)
    assert.ok(checkEvent(withId({ ...base, tags: [[], ['x']] })).ok)
  })

  it('refuses an id that does not match the serialization', () => {
    const reason = /^invalid: event id does not match/
    assert.match(reasonOf({ ...base, content: 'tampered' }), reason)
    assert.match(reasonOf({ ...base, created_at: base.created_at + 1 }), reason)
    assert.match(reasonOf({ ...base, kind: 2 }), reason)
    assert.match(reasonOf({ ...base, tags: [] }), reason)
    assert.match(reasonOf({ ...base, pubkey: 'b'.repeat(64) }), reason)
    assert.match(reasonOf({ ...base, id: 'c'.repeat(64) }), reason)
  })

  it('hashes control characters, quotes, backslashes and unicode exactly like nostr-tools', () => {
    const contents = [
      '',
      'line\nbreak\ttab\rreturn\bback\fform',
      '\u0000\u0001\u001f\u007f\u0080\u009f',
      'quote " backslash \\ slash /',
      'line separators \u2028 \u2029',
      'accents é ñ ü, CJK 漢字, emoji 🎉👩‍👩‍👧, zero-width \u200b',
      'lone surrogates \ud800 \udfff',
      '<script>alert(1)</script>',
    ]
    for (const content of contents) {
      const e = signed({ content, tags: [['t', content], ['d', content]] })
      assert.equal(computeId(e), getEventHash(e), JSON.stringify(content))
      const result = checkEvent(e)
      assert.ok(result.ok, JSON.stringify(content))
      assert.equal(result.value.json, canonical(e))
      assert.equal((JSON.parse(result.value.json) as NostrEvent).content, content)
    }
  })
})

describe('kind classes', () => {
  const table: Array<[number, 'regular' | 'replaceable' | 'ephemeral' | 'addressable']> = [
    [0, 'replaceable'],
    [1, 'regular'],
    [2, 'regular'],
    [3, 'replaceable'],
    [4, 'regular'],
    [9999, 'regular'],
    [10000, 'replaceable'],
    [19999, 'replaceable'],
    [20000, 'ephemeral'],
    [29999, 'ephemeral'],
    [30000, 'addressable'],
    [39999, 'addressable'],
    [40000, 'regular'],
    [65535, 'regular'],
  ]
  for (const [kind, expected] of table) {
    it(`kind ${kind} is ${expected}`, () => {
      assert.equal(isReplaceable(kind), expected === 'replaceable')
      assert.equal(isEphemeral(kind), expected === 'ephemeral')
      assert.equal(isAddressable(kind), expected === 'addressable')
    })
  }
})

describe('dTag and addressOf', () => {
  it('reads the first d tag wherever it stands', () => {
    assert.equal(dTag({ tags: [['d', 'x']] }), 'x')
    assert.equal(dTag({ tags: [['t', 'a'], ['p', 'b'.repeat(64)], ['d', 'late']] }), 'late')
    assert.equal(dTag({ tags: [['d', 'first'], ['d', 'second']] }), 'first')
  })

  it('gives an empty string for a missing d tag or a d tag without a value', () => {
    assert.equal(dTag({ tags: [] }), '')
    assert.equal(dTag({ tags: [['t', 'd'], ['dd', 'x']] }), '')
    assert.equal(dTag({ tags: [['d']] }), '')
    assert.equal(dTag({ tags: [['d', '']] }), '')
  })

  it('builds kind:pubkey:d, ignoring d for replaceable kinds', () => {
    const pubkey = 'f'.repeat(64)
    assert.equal(addressOf({ kind: 30023, pubkey, tags: [['t', 'x'], ['d', 'post']] }), `30023:${pubkey}:post`)
    assert.equal(addressOf({ kind: 30023, pubkey, tags: [] }), `30023:${pubkey}:`)
    assert.equal(addressOf({ kind: 10002, pubkey, tags: [['d', 'ignored']] }), `10002:${pubkey}:`)
  })
})

describe('expirationOf', () => {
  const exp = (...tags: string[][]) => expirationOf({ tags })

  it('reads a decimal expiration tag', () => {
    assert.equal(exp(['expiration', '1700000000']), 1_700_000_000)
    assert.equal(exp(['t', 'x'], ['expiration', '0']), 0)
    assert.equal(exp(['expiration', '42', 'extra']), 42)
  })

  it('is undefined without a usable expiration tag', () => {
    assert.equal(exp(), undefined)
    assert.equal(exp(['expiration']), undefined)
    assert.equal(exp(['Expiration', '10']), undefined)
    for (const value of ['', '-5', '1.5', '1e3', ' 12', '12 ', '0x10', 'soon', '99999999999999999999'])
      assert.equal(exp(['expiration', value]), undefined, JSON.stringify(value))
  })

  it('skips an expiration tag without a value and uses the first one that has one', () => {
    assert.equal(exp(['expiration'], ['expiration', '10']), 10)
    assert.equal(exp(['expiration', '10'], ['expiration', '20']), 10)
  })
})

describe('isProtected, readableId, isHex64', () => {
  it('recognizes exactly the ["-"] tag (NIP-70)', () => {
    assert.equal(isProtected({ tags: [['-']] }), true)
    assert.equal(isProtected({ tags: [['t', 'x'], ['-']] }), true)
    assert.equal(isProtected({ tags: [['-', 'x']] }), false)
    assert.equal(isProtected({ tags: [['t', '-']] }), false)
    assert.equal(isProtected({ tags: [] }), false)
  })

  it('reads an id that is 64 hex digits, echoing any case verbatim', () => {
    assert.equal(readableId(base), base.id)
    assert.equal(readableId({ id: base.id, kind: 'garbage' }), base.id)
    assert.equal(readableId({ id: base.id.toUpperCase() }), base.id.toUpperCase())
    for (const raw of [null, 'x', [base.id], { id: 5 }, { id: base.id.slice(1) }, { id: `${base.id}0` }, { id: 'g'.repeat(64) }, {}])
      assert.equal(readableId(raw), undefined, JSON.stringify(raw))
  })

  it('isHex64 accepts only lowercase 64-hex strings', () => {
    assert.equal(isHex64('0'.repeat(64)), true)
    assert.equal(isHex64('A'.repeat(64)), false)
    assert.equal(isHex64('0'.repeat(63)), false)
    assert.equal(isHex64(`${'0'.repeat(64)}\n`), false)
    assert.equal(isHex64(12), false)
  })

  it('hashes the same without crypto.hash (Node 20.10 and 20.11 have none)', () => {
    const e = signed({ content: 'accents é, emoji 🎉, lone surrogate \ud800', tags: [['t', 'x']] })
    const texts = ['', 'abc', 'é🎉\ud800', JSON.stringify([0, e.pubkey, e.created_at, e.kind, e.tags, e.content])]
    // A fresh process with crypto.hash removed before the module is loaded, as on those versions.
    const script = `
      import { syncBuiltinESMExports, createRequire } from 'node:module'
      delete createRequire(import.meta.url)('node:crypto').hash
      syncBuiltinESMExports()
      const crypto = await import('node:crypto')
      const { checkEvent, computeId, sha256Hex } = await import(${JSON.stringify(new URL('./event.js', import.meta.url).href)})
      const [texts, event] = JSON.parse(process.argv[1])
      process.stdout.write(JSON.stringify({ absent: crypto.hash === undefined, hashes: texts.map(sha256Hex), id: computeId(event), checked: checkEvent(event).ok }))
    `
    const out = JSON.parse(execFileSync(process.execPath, ['--input-type=module', '-e', script, JSON.stringify([texts, e])], { encoding: 'utf8' })) as { absent: boolean; hashes: string[]; id: string; checked: boolean }
    assert.ok(out.absent, 'the child process ran without crypto.hash')
    assert.deepEqual(out.hashes, texts.map(sha256Hex))
    assert.equal(out.id, getEventHash(e))
    assert.ok(out.checked)
  })
})
