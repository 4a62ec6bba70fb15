import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import type { NostrEvent } from '@msr/nostr'
import { signed, unsigned } from '../testing/fixtures.js'
import { checkLimits, isInvalid, precheck, verifierThreads, type EventLimits } from './validate.js'

const NOW = 1_700_000_000
const limits: EventLimits = {
  max_event_tags: 3,
  max_event_time_older_than_now: 3600,
  max_event_time_newer_than_now: 900,
  single_recipient_kinds: [1059],
  refused_kinds: [],
}

const event = (fields: Partial<NostrEvent> = {}): NostrEvent => ({
  id: 'a'.repeat(64),
  pubkey: 'b'.repeat(64),
  created_at: NOW,
  kind: 1,
  tags: [],
  content: '',
  sig: '0'.repeat(128),
  ...fields,
})

const check = (fields: Partial<NostrEvent>, l: EventLimits = limits) => checkLimits(event(fields), l, NOW)

describe('checkLimits', () => {
  it('passes an ordinary event', () => {
    assert.equal(check({}), undefined)
  })

  it('refuses a gift wrap that does not name exactly one recipient, and a refused kind, saying why', () => {
    const P = ['p', 'c'.repeat(64)]
    assert.equal(check({ kind: 1059, tags: [P] }), undefined)
    assert.equal(check({ kind: 1059, tags: [] }), 'invalid: a kind 1059 event must name exactly one recipient (one p tag, NIP-59); it has 0')
    assert.equal(check({ kind: 1059, tags: [P, ['p', 'd'.repeat(64)]] }), 'invalid: a kind 1059 event must name exactly one recipient (one p tag, NIP-59); it has 2')
    assert.equal(check({ kind: 1058, tags: [] }), undefined, 'other kinds are free')
    const marmot = { ...limits, refused_kinds: [444, 7] }
    assert.match(check({ kind: 444 }, marmot) ?? '', /^invalid: kind 444 \(an MLS Welcome\) is accepted only inside a NIP-59 gift wrap/)
    assert.equal(check({ kind: 7 }, marmot), 'invalid: kind 7 is not accepted on this relay')
    assert.equal(check({ kind: 444 }), undefined, 'accepted where not refused')
  })

  it('refuses kind 22242 outside AUTH', () => {
    assert.match(check({ kind: 22242 }) ?? '', /^invalid: kind 22242/)
    assert.equal(check({ kind: 22241 }), undefined)
  })

  it('refuses more tags than max_event_tags, and accepts exactly that many', () => {
    assert.equal(check({ tags: [['t', '1'], ['t', '2'], ['t', '3']] }), undefined)
    assert.equal(check({ tags: [['t', '1'], ['t', '2'], ['t', '3'], ['t', '4']] }), 'invalid: too many tags (at most 3)')
  })

  it('refuses created_at outside the window, inclusive at its edges', () => {
    assert.equal(check({ created_at: NOW - 3600 }), undefined)
    assert.equal(check({ created_at: NOW - 3601 }), 'invalid: created_at is more than 3600 seconds in the past')
    assert.equal(check({ created_at: NOW + 900 }), undefined)
    assert.equal(check({ created_at: NOW + 901 }), 'invalid: created_at is more than 900 seconds in the future')
  })

  it('treats a zero window as no limit', () => {
    const open = { ...limits, max_event_time_older_than_now: 0, max_event_time_newer_than_now: 0 }
    assert.equal(check({ created_at: 0 }, open), undefined)
    assert.equal(check({ created_at: 0xffffffff }, open), undefined)
  })

  it('refuses an event that has already expired (NIP-40), at or before now', () => {
    assert.equal(check({ tags: [['expiration', String(NOW)]] }), 'invalid: event has expired (NIP-40)')
    assert.equal(check({ tags: [['expiration', String(NOW - 1)]] }), 'invalid: event has expired (NIP-40)')
    assert.equal(check({ tags: [['expiration', String(NOW + 1)]] }), undefined)
    assert.equal(check({ tags: [['expiration', 'soon']] }), undefined)
  })
})

describe('precheck', () => {
  it('returns the checked event and its canonical JSON', () => {
    const ready = signed(1, { created_at: NOW, content: 'ok' })
    const result = precheck(JSON.parse(ready.json), limits, NOW)
    assert.ok(!isInvalid(result))
    assert.equal(result.json, ready.json)
  })

  it('refuses a malformed event with its id when the id is readable', () => {
    const ready = signed(1, { created_at: NOW })
    const raw = { ...JSON.parse(ready.json), content: 'tampered' } as NostrEvent
    assert.deepEqual(precheck(raw, limits, NOW), { eventId: ready.event.id, reason: 'invalid: event id does not match the sha256 of its serialization' })
    assert.deepEqual(precheck({ kind: 1 }, limits, NOW), { eventId: undefined, reason: 'invalid: id must be 64 lowercase hex characters' })
  })

  it('refuses a well-formed event that breaks a limit, with its id', () => {
    const old = unsigned({ pubkey: 'b'.repeat(64), created_at: NOW - 4000, kind: 1, tags: [], content: '' })
    const result = precheck(JSON.parse(old.json), limits, NOW)
    assert.ok(isInvalid(result))
    assert.equal(result.eventId, old.event.id)
    assert.match(result.reason, /^invalid: created_at/)
  })
})

describe('verifierThreads', () => {
  it('takes the configured number as it is', () => {
    assert.deepEqual([verifierThreads(1, 2), verifierThreads(2, 2), verifierThreads(6, 4)], [1, 2, 6])
  })

  it('with 0, leaves one core to the event loop and the writer thread, and never has none', () => {
    assert.deepEqual([verifierThreads(0, 1), verifierThreads(0, 2), verifierThreads(0, 4), verifierThreads(0, 8)], [1, 1, 3, 7])
  })
})
