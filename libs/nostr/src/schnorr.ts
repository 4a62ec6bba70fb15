import { createRequire } from 'node:module'
import type { NostrEvent } from './event.js'

/** BIP-340 signature verification of an event whose id has already been checked. */
export interface SignatureVerifier {
  /** Which implementation is in use, logged at start. */
  readonly name: 'bcrypto-native' | 'nostr-wasm'
  /** True when `sig` is a valid signature of `id` by `pubkey`; never throws. */
  verify(event: NostrEvent): boolean
  /** True when the native implementation only needs id, sig and pubkey (so callers can send less). */
  readonly needsOnlyIdSigPubkey: boolean
}

interface NativeSchnorr {
  verify(msg: Buffer, sig: Buffer, key: Buffer): boolean
}

const require = createRequire(import.meta.url)

/** libsecp256k1 through bcrypto's node-gyp addon (about 15,000 verifications/s per core here). */
const loadNative = (): SignatureVerifier => {
  const schnorr = require('bcrypto/lib/native/schnorr') as NativeSchnorr
  return {
    name: 'bcrypto-native',
    needsOnlyIdSigPubkey: true,
    verify: e => {
      try {
        return schnorr.verify(Buffer.from(e.id, 'hex'), Buffer.from(e.sig, 'hex'), Buffer.from(e.pubkey, 'hex'))
      } catch {
        return false
      }
    },
  }
}

/** secp256k1 compiled to WebAssembly (nostr-wasm): used when the native addon did not build. */
const loadWasm = async (): Promise<SignatureVerifier> => {
  const { initNostrWasm } = (await import('nostr-wasm')) as { initNostrWasm: () => Promise<{ verifyEvent(e: NostrEvent): void }> }
  const wasm = await initNostrWasm()
  return {
    name: 'nostr-wasm',
    needsOnlyIdSigPubkey: false,
    verify: e => {
      try {
        wasm.verifyEvent(e)
        return true
      } catch {
        return false
      }
    },
  }
}

/** Loads the fastest verifier that works on this machine: native first, WASM as the fallback. */
export const loadVerifier = async (prefer: 'auto' | 'native' | 'wasm' = 'auto'): Promise<SignatureVerifier> => {
  if (prefer === 'wasm') return loadWasm()
  try {
    return loadNative()
  } catch (error) {
    if (prefer === 'native') throw error
    return loadWasm()
  }
}
