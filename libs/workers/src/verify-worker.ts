// Worker thread: checks BIP-340 signatures in batches so the event loop never does curve math.
import { workerData } from 'node:worker_threads'
import { loadVerifier, type NostrEvent } from '@msr/nostr'
import { serveRequests } from './serve.js'

/**
 * A batch: its items back to back in one string, item i ending at `ends[i]`; an item is `id + sig + pubkey`
 * in hex (native backend) or the event's JSON (wasm backend).
 */
export interface VerifyRequest {
  items: string
  ends: Uint32Array
}

/** The answer: one byte per item, 1 when the signature is valid. */
export type VerifyResponse = Uint8Array

const verifier = await loadVerifier((workerData as { backend: 'native' | 'wasm' }).backend)

const unpack = (item: string): NostrEvent =>
  verifier.needsOnlyIdSigPubkey
    ? ({ id: item.slice(0, 64), sig: item.slice(64, 192), pubkey: item.slice(192, 256) } as NostrEvent)
    : (JSON.parse(item) as NostrEvent)

serveRequests<VerifyRequest, VerifyResponse>(verifier.name, ({ items, ends }) => {
  const valid = new Uint8Array(ends.length)
  let start = 0
  ends.forEach((end, i) => {
    valid[i] = verifier.verify(unpack(items.slice(start, end))) ? 1 : 0
    start = end
  })
  return { body: valid, transfer: [valid.buffer] }
})
