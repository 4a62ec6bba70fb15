// Worker thread: checks BIP-340 signatures in batches so the event loop never does curve math.
import { parentPort, workerData } from 'node:worker_threads'
import { loadVerifier, type NostrEvent } from '@msr/nostr'

/** A batch from the pool: packed `id + sig + pubkey` hex strings (native) or event JSON (wasm). */
export interface VerifyRequest {
  batch: number
  items: string[]
}

/** The answer: one byte per item, 1 when the signature is valid. */
export interface VerifyResponse {
  batch: number
  valid: Uint8Array
}

const verifier = await loadVerifier((workerData as { backend: 'native' | 'wasm' }).backend)

const unpack = (item: string): NostrEvent =>
  verifier.needsOnlyIdSigPubkey
    ? ({ id: item.slice(0, 64), sig: item.slice(64, 192), pubkey: item.slice(192, 256) } as NostrEvent)
    : (JSON.parse(item) as NostrEvent)

parentPort?.on('message', ({ batch, items }: VerifyRequest) => {
  const valid = new Uint8Array(items.length)
  items.forEach((item, i) => (valid[i] = verifier.verify(unpack(item)) ? 1 : 0))
  parentPort?.postMessage({ batch, valid } satisfies VerifyResponse, [valid.buffer])
})
parentPort?.postMessage({ ready: verifier.name })
