// The events a run publishes, signed on worker threads before the relay starts so that signing is never timed.
import { availableParallelism } from 'node:os'
import { Worker } from 'node:worker_threads'
import type { CorpusJob, SignedFrames } from './event-factory.js'

/** Events per message to a signing thread: small enough to balance the threads, large enough to be cheap. */
const CHUNK = 2500

/** Splits a job into chunks of consecutive indexes. */
const chunksOf = (job: CorpusJob): CorpusJob[] => {
  const chunks: CorpusJob[] = []
  for (let at = 0; at < job.count; at += CHUNK) chunks.push({ ...job, start: job.start + at, count: Math.min(CHUNK, job.count - at) })
  return chunks
}

/** The frames of a signed chunk as Buffers sharing its memory. */
const framesOf = ({ bytes, offsets }: SignedFrames): Buffer[] => {
  const all = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  const frames: Buffer[] = []
  for (let i = 0; i + 1 < offsets.length; i++) frames.push(all.subarray(offsets[i], offsets[i + 1]))
  return frames
}

/** Runs the jobs on `threads` signing threads; resolves with each job's frames, in index order. */
export const signCorpus = async (jobs: CorpusJob[], threads = availableParallelism()): Promise<Buffer[][]> => {
  const chunks = jobs.flatMap((job, j) => chunksOf(job).map(chunk => ({ j, chunk })))
  const results: Buffer[][][] = jobs.map(() => [])
  let next = 0
  const runOn = async (worker: Worker): Promise<void> => {
    for (let mine = next++; mine < chunks.length; mine = next++) {
      const { j, chunk } = chunks[mine] as (typeof chunks)[number]
      const signed = await new Promise<SignedFrames>((resolve, reject) => {
        worker.once('message', resolve)
        worker.once('error', reject)
        worker.postMessage(chunk)
      })
      worker.removeAllListeners('error')
      ;(results[j] as Buffer[][])[mine] = framesOf(signed)
    }
  }
  const workers = Array.from({ length: Math.max(1, threads) }, () => new Worker(new URL('./sign-worker.js', import.meta.url)))
  try {
    await Promise.all(workers.map(runOn))
  } finally {
    await Promise.all(workers.map(w => w.terminate()))
  }
  return results.map(parts => parts.filter(Boolean).flat())
}
