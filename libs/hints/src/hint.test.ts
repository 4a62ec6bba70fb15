import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import {
  decodeHint,
  DEFAULT_TOPICS,
  encodeHint,
  hintAttributes,
  hintFromEvent,
  MAX_ATTRIBUTE_BYTES,
  MAX_GROUP_ID_LENGTH,
  MAX_RECIPIENTS,
  orderingKeyOf,
  topicOf,
  type Hint,
  type HintSource,
} from './hint.js'

const ID = 'a'.repeat(64)
const PUBKEY = 'b'.repeat(64)
const GROUP = 'c0ffee'.repeat(8)
const hex = (n: number): string => n.toString(16).padStart(64, '0')

const event = (kind: number, tags: string[][]): HintSource => ({ id: ID, kind, pubkey: PUBKEY, created_at: 1_700_000_000, tags })
const base = { v: 1, id: ID, pubkey: PUBKEY, created_at: 1_700_000_000 } as const

describe('hintFromEvent for kind 445', () => {
  it('takes the group from h and the epoch from k', () => {
    assert.deepEqual(hintFromEvent(event(445, [['h', GROUP], ['k', '7']])), { ...base, kind: 445, group: GROUP, epoch: 7 })
  })

  it('falls back to a decimal e tag for the epoch when there is no k', () => {
    assert.deepEqual(hintFromEvent(event(445, [['e', '42'], ['h', GROUP]])), { ...base, kind: 445, group: GROUP, epoch: 42 })
  })

  it('never reads an e tag holding an event id as an epoch, even one of only digits', () => {
    for (const id of [ID, '1'.repeat(64)]) assert.equal(hintFromEvent(event(445, [['h', GROUP], ['e', id]]))?.epoch, undefined, id)
  })

  it('has no epoch when k is not a decimal (and does not fall back to e then)', () => {
    for (const k of ['x', '', '-1', '07', '1.5', ' 3', '1e3']) {
      const hint = hintFromEvent(event(445, [['h', GROUP], ['k', k], ['e', '9']]))
      assert.equal(hint?.group, GROUP, k)
      assert.equal(hint?.epoch, undefined, k)
    }
  })

  it('has no epoch beyond 2^53, so the hint it makes still decodes', () => {
    const hint = hintFromEvent(event(445, [['h', GROUP], ['k', '9999999999999999']]))
    assert.ok(hint)
    assert.equal(hint.epoch, undefined)
    assert.equal(decodeHint(encodeHint(hint)).ok, true)
    assert.equal(hintFromEvent(event(445, [['h', GROUP], ['k', String(Number.MAX_SAFE_INTEGER)]]))?.epoch, Number.MAX_SAFE_INTEGER)
  })

  it('routes nowhere without a usable h tag', () => {
    assert.equal(hintFromEvent(event(445, [['k', '1']])), undefined)
    assert.equal(hintFromEvent(event(445, [['h']])), undefined)
    assert.equal(hintFromEvent(event(445, [['h', '']])), undefined)
    assert.equal(hintFromEvent(event(445, [['h', 'x'.repeat(MAX_GROUP_ID_LENGTH + 1)]])), undefined)
    assert.equal(hintFromEvent(event(445, [['h', 'x'.repeat(MAX_GROUP_ID_LENGTH)]]))?.group?.length, MAX_GROUP_ID_LENGTH)
  })
})

describe('hintFromEvent for kind 446', () => {
  it('names each 64-hex p tag once, in order, and ignores the rest', () => {
    const tags = [['p', hex(2)], ['p', hex(1)], ['p', hex(2)], ['p', 'B'.repeat(64)], ['p', 'nope'], ['p'], ['e', hex(3)]]
    assert.deepEqual(hintFromEvent(event(446, tags)), { ...base, kind: 446, recipients: [hex(2), hex(1)] })
  })

  it('routes nowhere without a recipient', () => {
    assert.equal(hintFromEvent(event(446, [])), undefined)
    assert.equal(hintFromEvent(event(446, [['p', 'not hex'], ['h', GROUP]])), undefined)
  })

  it(`keeps the first ${MAX_RECIPIENTS} recipients`, () => {
    const tags = Array.from({ length: MAX_RECIPIENTS + 5 }, (_, i) => ['p', hex(i)])
    const hint = hintFromEvent(event(446, tags))
    assert.equal(hint?.recipients?.length, MAX_RECIPIENTS)
    assert.equal(hint?.recipients?.at(-1), hex(MAX_RECIPIENTS - 1))
  })
})

describe('hintFromEvent for other kinds', () => {
  it('routes nothing else', () => {
    for (const kind of [0, 1, 443, 444, 447, 1059, 10051]) assert.equal(hintFromEvent(event(kind, [['h', GROUP], ['p', hex(1)]])), undefined, String(kind))
  })
})

describe('routing', () => {
  const group: Hint = { ...base, kind: 445, group: GROUP, epoch: 3 }
  const dm: Hint = { ...base, kind: 446, recipients: [hex(1), hex(2)] }

  it('sends 445 to the group topic with the group as ordering key, 446 to the DM topic unordered', () => {
    assert.equal(topicOf(group), DEFAULT_TOPICS.group)
    assert.equal(topicOf(dm, { group: 'g', dm: 'd' }), 'd')
    assert.equal(orderingKeyOf(group), GROUP)
    assert.equal(orderingKeyOf(dm), undefined)
  })

  it('puts the routing fields and the trace context in the attributes', () => {
    const trace = { traceparent: `00-${'a'.repeat(32)}-${'b'.repeat(16)}-01`, tracestate: 'vendor=x' }
    assert.deepEqual(hintAttributes(group, trace), { kind: '445', event_id: ID, group: GROUP, ...trace })
    assert.deepEqual(hintAttributes(dm), { kind: '446', event_id: ID, recipient: `${hex(1)},${hex(2)}` })
  })

  it('keeps the recipient attribute within the Pub/Sub limit', () => {
    const many: Hint = { ...base, kind: 446, recipients: Array.from({ length: MAX_RECIPIENTS }, (_, i) => hex(i)) }
    const recipient = hintAttributes(many).recipient ?? ''
    assert.ok(Buffer.byteLength(recipient) <= MAX_ATTRIBUTE_BYTES, `${Buffer.byteLength(recipient)} bytes`)
    assert.deepEqual(recipient.split(','), many.recipients?.slice(0, 15))
  })
})

describe('decodeHint', () => {
  const good: Hint = { ...base, kind: 445, group: GROUP, epoch: 0 }

  it('reads back what encodeHint wrote, from a Buffer or a string', () => {
    assert.deepEqual(decodeHint(encodeHint(good)), { ok: true, hint: good })
    assert.deepEqual(decodeHint(JSON.stringify(good)), { ok: true, hint: good })
  })

  const refusals: [string, unknown, RegExp][] = [
    ['a wrong version', { ...good, v: 2 }, /^v: /],
    ['an unknown field', { ...good, content: 'secret' }, /content|unrecognized/i],
    ['a 445 without group', { ...base, kind: 445 }, /445 hint needs group/],
    ['a 446 without recipients', { ...base, kind: 446 }, /446 hint needs recipients/],
    ['a 446 with a group', { ...base, kind: 446, recipients: [hex(1)], group: GROUP }, /446 hint has no group/],
    ['a 445 with recipients', { ...good, recipients: [hex(1)] }, /445 hint has no recipients/],
    ['an id that is not 64 lowercase hex', { ...good, id: 'A'.repeat(64) }, /^id: /],
    ['a short pubkey', { ...good, pubkey: 'ab' }, /^pubkey: /],
    ['a recipient that is not hex', { ...base, kind: 446, recipients: ['zz'.repeat(32)] }, /^recipients\.0: /],
    ['another kind', { ...good, kind: 1 }, /^kind: /],
    ['a negative epoch', { ...good, epoch: -1 }, /^epoch: /],
    ['a JSON array', [good], /^hint: /],
  ]
  for (const [name, value, reason] of refusals)
    it(`refuses ${name}`, () => {
      const result = decodeHint(JSON.stringify(value))
      assert.equal(result.ok, false)
      if (!result.ok) assert.match(result.reason, reason)
    })

  it('refuses data that is not JSON', () => {
    for (const data of ['', '{', 'hint', Buffer.from([0xff, 0xfe])]) assert.deepEqual(decodeHint(data), { ok: false, reason: 'data is not JSON' })
  })
})
