import { availableParallelism } from 'node:os'
import { Worker } from 'node:worker_threads'
import { loadVerifier, type CheckedEvent } from '@msr/nostr'
import type { VerifyRequest, VerifyResponse } from './verify-worker.js'

/** A signature check's answer; 'error' when the worker died before answering. */
export type Verdict = 'valid' | 'invalid' | 'error'

interface Job {
  resolve: (verdict: Verdict) => void
}

interface PoolWorker {
  worker: Worker
  pending: Map<number, Job[]>
}

const MAX_BATCH = 256

/**
 * Verifies signatures on worker threads. Requests made in the same event-loop turn travel as one
 * batch per worker, so a burst of events costs a handful of messages, not one each.
 */
export class VerifierPool {
  private nextBatch = 0
  private nextWorker = 0
  private queue: Array<{ item: string; job: Job }> = []
  private scheduled = false
  private closing = false

  private constructor(
    private readonly workers: PoolWorker[],
    /** The implementation in use ('bcrypto-native' or 'nostr-wasm'). */
    readonly backend: string,
  ) {}

  /** Starts `size` workers (0: one per core) with the fastest verifier that loads here. */
  static async start(size: number, prefer: 'auto' | 'native' | 'wasm' = 'auto'): Promise<VerifierPool> {
    const probe = await loadVerifier(prefer)
    const backend = probe.name === 'bcrypto-native' ? 'native' : 'wasm'
    const count = size > 0 ? size : availableParallelism()
    const workers: PoolWorker[] = []
    const pool = new VerifierPool(workers, probe.name)
    for (let i = 0; i < count; i++) workers.push(await spawn(backend, w => void pool.replace(w)))
    return pool
  }

  /** Checks the event's signature on a worker thread. */
  verify(checked: CheckedEvent): Promise<Verdict> {
    if (this.closing) return Promise.resolve('error') // no worker would ever answer
    const { id, sig, pubkey } = checked.event
    const item = this.backend === 'bcrypto-native' ? id + sig + pubkey : checked.json
    return new Promise(resolve => {
      this.queue.push({ item, job: { resolve } })
      if (!this.scheduled) {
        this.scheduled = true
        setImmediate(() => this.dispatch())
      }
    })
  }

  private dispatch(): void {
    this.scheduled = false
    if (this.workers.length === 0) return // every worker is being replaced; replace() dispatches again
    const perWorker = Math.min(MAX_BATCH, Math.ceil(this.queue.length / this.workers.length))
    while (this.queue.length > 0) {
      const chunk = this.queue.splice(0, perWorker)
      const slot = this.nextWorker++ % this.workers.length
      const target = this.workers[slot] as PoolWorker
      const batch = this.nextBatch++
      target.pending.set(batch, chunk.map(c => c.job))
      target.worker.postMessage({ batch, items: chunk.map(c => c.item) } satisfies VerifyRequest)
    }
  }

  /** Replaces a worker that died, failing what it held; verification goes on with the others. */
  private async replace(dead: PoolWorker): Promise<void> {
    failAll(dead)
    const slot = this.workers.indexOf(dead)
    if (slot < 0 || this.closing) return
    this.workers.splice(slot, 1) // no batch may go to the dead worker while its successor starts
    const fresh = await spawn(this.backendKind, w => void this.replace(w))
    if (this.closing) return void fresh.worker.terminate()
    this.workers.push(fresh)
    if (this.queue.length > 0) this.dispatch()
  }

  private get backendKind(): 'native' | 'wasm' {
    return this.backend === 'bcrypto-native' ? 'native' : 'wasm'
  }

  /** Stops the workers; pending verifications resolve 'error'. */
  async close(): Promise<void> {
    this.closing = true
    for (const { job } of this.queue.splice(0)) job.resolve('error') // not yet sent to a worker
    this.workers.forEach(failAll)
    await Promise.all(this.workers.map(w => w.worker.terminate()))
  }
}

const spawn = (backend: 'native' | 'wasm', onDeath: (w: PoolWorker) => void): Promise<PoolWorker> =>
  new Promise((resolve, reject) => {
    const worker = new Worker(new URL('./verify-worker.js', import.meta.url), { workerData: { backend } })
    const pool: PoolWorker = { worker, pending: new Map() }
    worker.once('error', reject)
    worker.once('message', () => {
      worker.off('error', reject)
      worker.on('message', (res: VerifyResponse) => settle(pool, res))
      worker.on('error', () => undefined) // an 'exit' always follows; onDeath handles it there
      worker.once('exit', () => onDeath(pool))
      resolve(pool)
    })
  })

const settle = (pool: PoolWorker, { batch, valid }: VerifyResponse): void => {
  const jobs = pool.pending.get(batch) ?? []
  pool.pending.delete(batch)
  jobs.forEach((job, i) => job.resolve(valid[i] === 1 ? 'valid' : 'invalid'))
}

const failAll = (pool: PoolWorker): void => {
  for (const jobs of pool.pending.values()) for (const job of jobs) job.resolve('error')
  pool.pending.clear()
}
