import { parentPort, type Transferable } from 'node:worker_threads'
import type { Envelope } from './pool.js'

/** What a worker handler returns: the answer, and buffers to transfer rather than copy. */
export interface Answer<Res> {
  body: Res
  transfer?: Transferable[]
}

/** Runs inside a worker: announces readiness with `info`, then answers each request with `handle`. */
export const serveRequests = <Req, Res>(info: unknown, handle: (request: Req) => Answer<Res>): void => {
  const port = parentPort
  if (!port) throw new Error('serveRequests must run in a worker thread')
  port.on('message', ({ seq, body }: Envelope<Req>) => {
    const answer = handle(body)
    port.postMessage({ seq, body: answer.body } satisfies Envelope<Res>, answer.transfer ?? [])
  })
  port.postMessage(info)
}
