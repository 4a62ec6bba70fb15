import type { NostrEvent, SignatureVerifier } from '@msr/nostr'
import { VerifierPool, type Verdict } from '@msr/workers'

/** Checks NIP-98 event signatures: 'error' when no answer could be had (a worker died). */
export interface SignatureCheck {
  /** The implementation, for the start-up log. */
  readonly name: string
  verify(event: NostrEvent): Promise<Verdict>
  close(): Promise<void>
}

/** On the event loop (tests, and VERIFY_WORKERS=0). */
export const inlineSignatures = (verifier: SignatureVerifier): SignatureCheck => ({
  name: verifier.name,
  verify: async event => (verifier.verify(event) ? 'valid' : 'invalid'),
  close: async () => undefined,
})

/**
 * On worker threads, batched per event-loop turn (the relay's pool): the curve math leaves the one
 * JavaScript thread every request goes through, for the other cores.
 */
export const pooledSignatures = async (workers: number): Promise<SignatureCheck> => {
  const pool = await VerifierPool.start(workers)
  return {
    name: `${pool.backend} (${workers} worker thread${workers === 1 ? '' : 's'})`,
    // The JSON is only read by the WebAssembly backend, which needs the whole event.
    verify: event => pool.verify({ event, json: JSON.stringify(event) }),
    close: () => pool.close(),
  }
}
