import { loadVerifier, type CheckedEvent } from '@msr/nostr'
import { WorkerPool } from './pool.js'
import type { VerifyRequest, VerifyResponse } from './verify-worker.js'

/** A signature check's answer; 'error' when no worker could answer (it died, or the pool closed). */
export type Verdict = 'valid' | 'invalid' | 'error'

const MAX_BATCH = 256

/**
 * Verifies signatures on worker threads. Requests made in the same event-loop turn travel as one
 * batch per worker, so a burst of events costs a handful of messages, not one each.
 */
export class VerifierPool {
  private queue: Array<{ item: string; resolve: (verdict: Verdict) => void }> = []
  private scheduled = false
  private closing = false

  private constructor(
    private readonly pool: WorkerPool<VerifyRequest, VerifyResponse>,
    /** The implementation in use ('bcrypto-native' or 'nostr-wasm'). */
    readonly backend: string,
  ) {}

  /** Starts `size` workers (0: one per core) with the fastest verifier that loads here. */
  static async start(size: number, prefer: 'auto' | 'native' | 'wasm' = 'auto'): Promise<VerifierPool> {
    const probe = await loadVerifier(prefer)
    const backend = probe.name === 'bcrypto-native' ? 'native' : 'wasm'
    const pool = await WorkerPool.start<VerifyRequest, VerifyResponse>(new URL('./verify-worker.js', import.meta.url), size, { backend })
    return new VerifierPool(pool, probe.name)
  }

  /** Live worker threads. */
  get size(): number {
    return this.pool.size
  }

  /** Checks the event's signature on a worker thread. */
  verify(checked: CheckedEvent): Promise<Verdict> {
    if (this.closing) return Promise.resolve('error')
    const { id, sig, pubkey } = checked.event
    const item = this.backend === 'bcrypto-native' ? id + sig + pubkey : checked.json
    return new Promise(resolve => {
      this.queue.push({ item, resolve })
      if (!this.scheduled) {
        this.scheduled = true
        setImmediate(() => this.dispatch())
      }
    })
  }

  private dispatch(): void {
    this.scheduled = false
    const perWorker = Math.min(MAX_BATCH, Math.ceil(this.queue.length / Math.max(this.pool.size, 1)))
    while (this.queue.length > 0) {
      const chunk = this.queue.splice(0, perWorker)
      // One string and its items' ends: one flat copy when the message is cloned, not one per item.
      const ends = new Uint32Array(chunk.length)
      let at = 0
      chunk.forEach((c, i) => (ends[i] = at += c.item.length))
      void this.pool.request({ items: chunk.map(c => c.item).join(''), ends }, [ends.buffer]).then(valid =>
        chunk.forEach((c, i) => c.resolve(valid === undefined ? 'error' : valid[i] === 1 ? 'valid' : 'invalid')),
      )
    }
  }

  /** Stops the workers; pending verifications resolve 'error'. */
  async close(): Promise<void> {
    this.closing = true
    for (const { resolve } of this.queue.splice(0)) resolve('error')
    await this.pool.close()
  }
}
