// BIP-340 signing for the load generators: bcrypto's native libsecp256k1, the library the services verify with.
import { randomBytes } from 'node:crypto'
import { createRequire } from 'node:module'

interface NativeSchnorr {
  sign(msg: Buffer, key: Buffer, aux?: Buffer | null): Buffer
  publicKeyCreate(key: Buffer): Buffer
}

/** Signs 32-byte event ids with a secret key. */
export interface Signer {
  readonly name: 'bcrypto-native'
  /** The x-only public key (64 hex) of a 32-byte secret. */
  publicKey(secret: Buffer): string
  /** A 64-byte BIP-340 signature (128 hex) of a 32-byte message. */
  sign(message: Buffer, secret: Buffer): string
}

const require = createRequire(import.meta.url)

/** Loads the native signer, or throws with what to do when the addon did not build. */
export const loadSigner = (): Signer => {
  let schnorr: NativeSchnorr
  try {
    schnorr = require('bcrypto/lib/native/schnorr') as NativeSchnorr
  } catch (error) {
    const why = error instanceof Error ? error.message : String(error)
    throw new Error(`the bench signs with bcrypto's native addon, which did not load (${why}); run \`npm rebuild bcrypto\``)
  }
  return {
    name: 'bcrypto-native',
    publicKey: secret => schnorr.publicKeyCreate(secret).toString('hex'),
    sign: (message, secret) => schnorr.sign(message, secret).toString('hex'),
  }
}

/** `count` fresh secret keys (64 hex). */
export const generateSecrets = (count: number): string[] => Array.from({ length: count }, () => randomBytes(32).toString('hex'))

/** A fresh keypair set: `count` secrets (hex) and their public keys. */
export const generateKeys = (signer: Signer, count: number): { secrets: string[]; pubkeys: string[] } => {
  const secrets = generateSecrets(count)
  return { secrets, pubkeys: secrets.map(s => signer.publicKey(Buffer.from(s, 'hex'))) }
}
