// Signing thread: turns corpus jobs into signed `["EVENT",…]` frames, off the main thread and ahead of any timing.
import { parentPort } from 'node:worker_threads'
import { loadSigner } from '@msr/bench'
import { signJob, type CorpusJob } from './event-factory.js'

const signer = loadSigner()

parentPort?.on('message', (job: CorpusJob) => {
  const signed = signJob(job, signer)
  parentPort?.postMessage(signed, [signed.bytes.buffer as ArrayBuffer, signed.offsets.buffer as ArrayBuffer])
})
