// The signing threads, seen from the main thread: bulk deposit signing before a phase, header batches during one.
import { availableParallelism } from 'node:os'
import { Worker } from 'node:worker_threads'
import type { AuthRequest, DepositJob, SignAnswer, SignedDeposits, SignMessage, SignWork } from './request-factory.js'

/** Deposits per message to a signing thread: small enough to balance the threads, large enough to be cheap. */
const CHUNK = 1000

interface Thread {
  worker: Worker
  pending: Map<number, (answer: SignAnswer) => void>
}

/** A pool of signing threads holding the run's keys. */
export class SignPool {
  private nextId = 0

  private constructor(private readonly threads: Thread[]) {}

  /** Starts `count` threads, each with every key of the run. */
  static start(secrets: readonly string[], publicUrl: string, count = availableParallelism()): SignPool {
    const threads = Array.from({ length: Math.max(1, count) }, () => {
      const thread: Thread = { worker: new Worker(new URL('./sign-worker.js', import.meta.url), { workerData: { secrets, publicUrl } }), pending: new Map() }
      thread.worker.on('message', (answer: SignAnswer) => {
        const resolve = thread.pending.get(answer.id)
        thread.pending.delete(answer.id)
        resolve?.(answer)
      })
      thread.worker.on('error', error => {
        process.stderr.write(`bench: signing thread failed: ${error.message}\n`)
        process.exit(1)
      })
      return thread
    })
    return new SignPool(threads)
  }

  private ask(work: SignWork): Promise<SignAnswer> {
    const thread = this.threads.reduce((a, b) => (b.pending.size < a.pending.size ? b : a))
    const id = this.nextId++
    return new Promise(resolve => {
      thread.pending.set(id, resolve)
      thread.worker.postMessage({ ...work, id } satisfies SignMessage)
    })
  }

  /** Builds and signs deposits [job.start, job.start + job.count) on every thread; in index order. */
  async deposits(job: DepositJob): Promise<SignedDeposits[]> {
    const chunks: DepositJob[] = []
    for (let at = 0; at < job.count; at += CHUNK) chunks.push({ ...job, start: job.start + at, count: Math.min(CHUNK, job.count - at) })
    const answers = await Promise.all(chunks.map(chunk => this.ask({ type: 'deposits', job: chunk })))
    return answers.flatMap(a => (a.type === 'deposits' ? [a.deposits] : []))
  }

  /** Signs a batch of requests (on the least busy thread). */
  async sign(requests: AuthRequest[]): Promise<{ headers: string[]; createdAt: number }> {
    const answer = await this.ask({ type: 'sign', requests })
    if (answer.type !== 'sign') throw new Error('signing thread answered the wrong message')
    return answer
  }

  /** Stops the threads. */
  async close(): Promise<void> {
    await Promise.all(this.threads.map(t => t.worker.terminate()))
  }
}
