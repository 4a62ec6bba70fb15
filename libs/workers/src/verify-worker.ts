// Worker thread: checks BIP-340 signatures in batches so the event loop never does curve math.
import { workerData } from 'node:worker_threads'
import { loadVerifier, type NostrEvent } from '@msr/nostr'
import { serveRequests } from './serve.js'

/** A batch: packed `id + sig + pubkey` hex strings (native backend) or event JSON (wasm backend). */
export type VerifyRequest = string[]

/** The answer: one byte per item, 1 when the signature is valid. */
export type VerifyResponse = Uint8Array

const verifier = await loadVerifier((workerData as { backend: 'native' | 'wasm' }).backend)

const unpack = (item: string): NostrEvent =>
  verifier.needsOnlyIdSigPubkey
    ? ({ id: item.slice(0, 64), sig: item.slice(64, 192), pubkey: item.slice(192, 256) } as NostrEvent)
    : (JSON.parse(item) as NostrEvent)

serveRequests<VerifyRequest, VerifyResponse>(verifier.name, items => {
  const valid = new Uint8Array(items.length)
  items.forEach((item, i) => (valid[i] = verifier.verify(unpack(item)) ? 1 : 0))
  return { body: valid, transfer: [valid.buffer] }
})
