import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { finalizeEvent, generateSecretKey } from 'nostr-tools/pure'
import type { NostrEvent } from './event.js'
import { checkAuthEvent } from './nip42.js'

const NOW = 1_800_000_000
const auth = (tags: string[][], parts: { kind?: number; created_at?: number } = {}): NostrEvent =>
  finalizeEvent({ kind: parts.kind ?? 22242, created_at: parts.created_at ?? NOW, tags, content: '' }, generateSecretKey()) as NostrEvent

describe('checkAuthEvent', () => {
  // A public URL that contains the other checks' names: the failure is typed, never read from the message.
  const expected = { challenge: 'c1', relayUrl: 'wss://kind-challenge.example/created_at', now: NOW }
  const good = [
    ['relay', 'wss://kind-challenge.example/created_at'],
    ['challenge', 'c1'],
  ]

  it('accepts the right kind, time, challenge and relay (normalised)', () => {
    assert.equal(checkAuthEvent(auth(good), expected), undefined)
    assert.equal(checkAuthEvent(auth([['relay', 'WSS://Kind-Challenge.example:443/created_at/'], ['challenge', 'c1']]), expected), undefined)
  })

  it('names the failed check, and a relay refusal names the expected URL', () => {
    assert.equal(checkAuthEvent(auth(good, { kind: 1 }), expected)?.failure, 'kind')
    assert.equal(checkAuthEvent(auth(good, { created_at: NOW - 601 }), expected)?.failure, 'created_at')
    assert.equal(checkAuthEvent(auth([good[0] as string[], ['challenge', 'other']]), expected)?.failure, 'challenge')
    // Same length in characters, not in bytes: refused, never a throw from the constant-time comparison.
    assert.equal(checkAuthEvent(auth([good[0] as string[], ['challenge', 'c\u00fc']]), expected)?.failure, 'challenge')
    const relay = checkAuthEvent(auth([['relay', 'wss://elsewhere.example'], ['challenge', 'c1']]), expected)
    assert.deepEqual(relay, { failure: 'relay', reason: 'auth-required: the relay tag does not name this relay: expected wss://kind-challenge.example/created_at' })
  })
})
