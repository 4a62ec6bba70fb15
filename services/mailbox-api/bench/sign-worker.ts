// Signing thread: deposit bodies with their NIP-98 headers ahead of a phase, and headers on demand during one.
import { parentPort, workerData } from 'node:worker_threads'
import { loadSigner } from '@msr/bench'
import { authorization, keyringOf, signDeposits, type SignAnswer, type SignMessage } from './request-factory.js'

const { secrets, publicUrl } = workerData as { secrets: string[]; publicUrl: string }
const signer = loadSigner()
const keys = keyringOf(secrets, signer)

parentPort?.on('message', (message: SignMessage) => {
  if (message.type === 'deposits') {
    const deposits = signDeposits(message.job, publicUrl, keys, signer)
    const answer: SignAnswer = { id: message.id, type: 'deposits', deposits }
    return parentPort?.postMessage(answer, [deposits.bytes.buffer as ArrayBuffer, deposits.offsets.buffer as ArrayBuffer])
  }
  const createdAt = Math.floor(Date.now() / 1000)
  const headers = message.requests.map(r => authorization(r, publicUrl, keys, signer, createdAt))
  parentPort?.postMessage({ id: message.id, type: 'sign', headers, createdAt } satisfies SignAnswer)
})
