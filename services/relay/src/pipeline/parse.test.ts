import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { parseMessage, type ClientMessage, type Refusal } from './parse.js'

const MAX = 4096
const ID = 'ab'.repeat(32)
const event = { id: ID, pubkey: 'cd'.repeat(32), created_at: 1, kind: 1, tags: [], content: 'x', sig: 'ef'.repeat(64) }

const frame = (value: unknown): Buffer => Buffer.from(typeof value === 'string' ? value : JSON.stringify(value))

const accepted = (value: unknown, max = MAX): ClientMessage => {
  const parsed = parseMessage(frame(value), max)
  assert.ok(parsed.ok, parsed.ok ? '' : JSON.stringify(parsed.refusal))
  return parsed.message
}

const refused = (value: unknown, max = MAX): Refusal => {
  const parsed = parseMessage(frame(value), max)
  assert.equal(parsed.ok, false, `expected ${String(value).slice(0, 80)} to be refused`)
  assert.ok(!parsed.ok)
  assert.match(parsed.refusal.reason, /^invalid: /)
  return parsed.refusal
}

describe('parseMessage: accepted messages', () => {
  it('parses EVENT, AUTH, REQ, COUNT and CLOSE', () => {
    assert.deepEqual(accepted(['EVENT', event]), { verb: 'EVENT', event })
    assert.deepEqual(accepted(['AUTH', event]), { verb: 'AUTH', event })
    assert.deepEqual(accepted(['REQ', 'sub', { kinds: [1] }, {}]), { verb: 'REQ', subId: 'sub', filters: [{ kinds: [1] }, {}] })
    assert.deepEqual(accepted(['COUNT', 'c', {}]), { verb: 'COUNT', subId: 'c', filters: [{}] })
    assert.deepEqual(accepted(['CLOSE', 'sub']), { verb: 'CLOSE', subId: 'sub' })
  })

  it('leaves the event and the filters for their handlers to check', () => {
    assert.deepEqual(accepted(['EVENT', 'not an event']), { verb: 'EVENT', event: 'not an event' })
    assert.deepEqual(accepted(['REQ', 's', 42]), { verb: 'REQ', subId: 's', filters: [42] })
  })

  it('accepts a frame of exactly the maximum length', () => {
    const text = JSON.stringify(['EVENT', event])
    assert.equal(accepted(text, Buffer.byteLength(text)).verb, 'EVENT')
  })

  it('reads multi-byte UTF-8 content', () => {
    const message = accepted(['EVENT', { ...event, content: 'é 漢字 🎉' }])
    assert.equal(message.verb === 'EVENT' && (message.event as { content: string }).content, 'é 漢字 🎉')
  })
})

describe('parseMessage: refusals', () => {
  it('answers NOTICE for frames that are not a message', () => {
    for (const text of ['', 'not json', '{"a":1}', '[]', '[1]', '[null]', '"EVENT"', '["EVENT"', 'null'])
      assert.equal(refused(text).to, 'NOTICE', text)
  })

  it('answers NOTICE for unknown verbs, naming them briefly', () => {
    const refusal = refused(['PUBLISH', event])
    assert.deepEqual(refusal, { to: 'NOTICE', reason: 'invalid: unknown message type "PUBLISH"' })
    assert.equal(refused(['event', event]).to, 'NOTICE')
    assert.ok(refused(['X'.repeat(1000)]).reason.length < 100)
  })

  it('answers OK with the id for an EVENT or AUTH of the wrong arity whose id is readable, else NOTICE', () => {
    // NIP-42: "AUTH messages sent by clients MUST be answered with an OK message, like any EVENT message."
    for (const verb of ['EVENT', 'AUTH']) {
      assert.deepEqual(refused([verb, event, 'extra']), { to: 'OK', eventId: ID, reason: `invalid: ${verb} takes exactly one event` })
      assert.deepEqual(refused([verb, event, event]), { to: 'OK', eventId: ID, reason: `invalid: ${verb} takes exactly one event` })
      assert.equal(refused([verb]).to, 'NOTICE')
      assert.equal(refused([verb, { ...event, id: 'xy'.repeat(32) }, 1]).to, 'NOTICE')
      assert.deepEqual(refused([verb, { ...event, id: ID.toUpperCase() }, 1]), { to: 'OK', eventId: ID.toUpperCase(), reason: `invalid: ${verb} takes exactly one event` })
    }
  })

  it('answers NOTICE for CLOSE of the wrong shape', () => {
    for (const value of [['CLOSE'], ['CLOSE', 'a', 'b'], ['CLOSE', 1]]) assert.equal(refused(value).to, 'NOTICE', JSON.stringify(value))
  })

  it('answers NOTICE for REQ and COUNT without a usable subscription id', () => {
    for (const verb of ['REQ', 'COUNT']) for (const value of [[verb], [verb, ''], [verb, 1, {}], [verb, null, {}]]) assert.equal(refused(value).to, 'NOTICE', JSON.stringify(value))
  })

  it('answers CLOSED with the subscription id for REQ and COUNT without filters', () => {
    assert.deepEqual(refused(['REQ', 'sub']), { to: 'CLOSED', subId: 'sub', reason: 'invalid: REQ needs at least one filter' })
    assert.deepEqual(refused(['COUNT', 'c']), { to: 'CLOSED', subId: 'c', reason: 'invalid: COUNT needs at least one filter' })
  })
})

describe('parseMessage: oversized frames', () => {
  const big = (extra: object = {}) => JSON.stringify(['EVENT', { ...event, content: 'x'.repeat(MAX), ...extra }])

  it('answers OK with the event id when an oversized EVENT has a readable id', () => {
    assert.deepEqual(refused(big()), { to: 'OK', eventId: ID, reason: `invalid: message is larger than ${MAX} bytes` })
    const auth = JSON.stringify(['AUTH', { ...event, content: 'x'.repeat(MAX) }])
    assert.deepEqual(refused(auth), { to: 'OK', eventId: ID, reason: `invalid: message is larger than ${MAX} bytes` }, 'an oversized AUTH too (NIP-42)')
    const idLast = JSON.stringify(['EVENT', { content: 'x'.repeat(MAX), id: ID }])
    assert.deepEqual(refused(idLast), { to: 'OK', eventId: ID, reason: `invalid: message is larger than ${MAX} bytes` })
    assert.deepEqual(refused(` [ "EVENT" , {"content":"${'y'.repeat(MAX)}", "id" : "${ID}"}]`), { to: 'OK', eventId: ID, reason: `invalid: message is larger than ${MAX} bytes` })
  })

  it('echoes an uppercase id verbatim', () => {
    const text = JSON.stringify(['EVENT', { id: ID.toUpperCase(), content: 'x'.repeat(MAX) }])
    assert.deepEqual(refused(text), { to: 'OK', eventId: ID.toUpperCase(), reason: `invalid: message is larger than ${MAX} bytes` })
  })

  it('does not take an id from inside the content', () => {
    const decoy = 'cc'.repeat(32)
    const text = JSON.stringify(['EVENT', { content: `"id":"${decoy}"${'x'.repeat(MAX)}`, id: ID }])
    assert.deepEqual(refused(text), { to: 'OK', eventId: ID, reason: `invalid: message is larger than ${MAX} bytes` })
  })

  it('answers NOTICE when the id cannot be read or the message carries no event', () => {
    const noId = JSON.stringify(['EVENT', { content: 'x'.repeat(MAX) }])
    assert.deepEqual(refused(noId), { to: 'NOTICE', reason: `invalid: message is larger than ${MAX} bytes` })
    assert.equal(refused(JSON.stringify(['EVENT', { id: ID.slice(2), content: 'x'.repeat(MAX) }])).to, 'NOTICE')
    assert.equal(refused(JSON.stringify(['EVENT', { id: 'xy'.repeat(32), content: 'x'.repeat(MAX) }])).to, 'NOTICE')
    assert.equal(refused(JSON.stringify(['REQ', 's', { '#t': ['x'.repeat(MAX)], ids: [ID] }])).to, 'NOTICE')
    assert.equal(refused(JSON.stringify(['AUTH', { content: 'x'.repeat(MAX) }])).to, 'NOTICE')
    assert.equal(refused(JSON.stringify(['CLOSE', `"id":"${ID}"${'x'.repeat(MAX)}`])).to, 'NOTICE')
    assert.equal(refused('x'.repeat(MAX + 1)).to, 'NOTICE')
  })

  it('measures the limit in bytes, not characters', () => {
    const text = JSON.stringify(['EVENT', { ...event, content: 'é'.repeat(100) }])
    const bytes = Buffer.byteLength(text)
    assert.equal(accepted(text, bytes).verb, 'EVENT')
    assert.equal(refused(text, bytes - 1).to, 'OK')
  })
})
