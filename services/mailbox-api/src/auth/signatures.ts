import type { CheckedEvent, SignatureVerifier } from '@msr/nostr'
import { VerifierPool, type Verdict } from '@msr/workers'

/** Checks NIP-98 event signatures: 'error' when no answer could be had (a worker died). */
export interface SignatureCheck {
  /** The implementation, for the start-up log. */
  readonly name: string
  /** The event as checkEvent parsed it (its JSON already serialized, for the WebAssembly backend). */
  verify(checked: CheckedEvent): Promise<Verdict>
  close(): Promise<void>
}

/** On the event loop (tests, and VERIFY_WORKERS=0). */
export const inlineSignatures = (verifier: SignatureVerifier): SignatureCheck => ({
  name: verifier.name,
  verify: async ({ event }) => (verifier.verify(event) ? 'valid' : 'invalid'),
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
    // Only the WebAssembly backend reads the JSON (it needs the whole event); checkEvent serialized it already.
    verify: checked => pool.verify(checked),
    close: () => pool.close(),
  }
}
