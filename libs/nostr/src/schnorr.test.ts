import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { finalizeEvent } from 'nostr-tools/pure'
import type { NostrEvent } from './event.js'
import { loadVerifier } from './schnorr.js'

const plain = (e: NostrEvent): NostrEvent => ({ id: e.id, pubkey: e.pubkey, created_at: e.created_at, kind: e.kind, tags: e.tags, content: e.content, sig: e.sig })
const valid = plain(finalizeEvent({ kind: 1, created_at: 1_700_000_000, tags: [['t', 'x']], content: 'signed' }, new Uint8Array(32).fill(3)))
const other = plain(finalizeEvent({ kind: 1, created_at: 1_700_000_000, tags: [], content: 'other' }, new Uint8Array(32).fill(4)))

/** Flips one hex digit at `at`. */
const flip = (hex: string, at: number): string => hex.slice(0, at) + (hex[at] === '0' ? '1' : '0') + hex.slice(at + 1)

for (const prefer of ['native', 'wasm'] as const) {
  describe(`loadVerifier('${prefer}')`, async () => {
    const verifier = await loadVerifier(prefer)

    it('loads the requested implementation', () => {
      assert.equal(verifier.name, prefer === 'native' ? 'bcrypto-native' : 'nostr-wasm')
      assert.equal(verifier.needsOnlyIdSigPubkey, prefer === 'native')
    })

    it('accepts valid signatures', () => {
      assert.equal(verifier.verify(valid), true)
      assert.equal(verifier.verify(other), true)
    })

    it('rejects a tampered signature, id or pubkey', () => {
      for (const at of [0, 63, 64, 127]) assert.equal(verifier.verify({ ...valid, sig: flip(valid.sig, at) }), false, `sig digit ${at}`)
      assert.equal(verifier.verify({ ...valid, sig: other.sig }), false)
      assert.equal(verifier.verify({ ...valid, id: other.id }), false)
      assert.equal(verifier.verify({ ...valid, pubkey: other.pubkey }), false)
    })

    it('returns false instead of throwing on malformed input', () => {
      for (const sig of ['', 'zz'.repeat(64), 'ab'.repeat(32), '0'.repeat(128)])
        assert.equal(verifier.verify({ ...valid, sig }), false, JSON.stringify(sig))
      assert.equal(verifier.verify({ ...valid, pubkey: 'f'.repeat(64) }), false)
    })
  })
}

describe("loadVerifier('auto')", () => {
  it('prefers the native implementation when it loads', async () => {
    const verifier = await loadVerifier()
    assert.equal(verifier.name, 'bcrypto-native')
    assert.equal(verifier.verify(valid), true)
  })
})
