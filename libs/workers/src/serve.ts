import { parentPort, type Transferable } from 'node:worker_threads'
import type { Envelope } from './pool.js'

/** What a worker handler returns: the answer, and buffers to transfer rather than copy. */
export interface Answer<Res> {
  body: Res
  transfer?: Transferable[]
}

/**
 * Runs inside a worker: announces readiness with `info`, then answers each request with `handle`, at once or
 * when its promise settles (requests are still handed to `handle` in arrival order). A handler that throws or
 * rejects ends the worker, and the pool answers what it held `undefined`.
 */
export const serveRequests = <Req, Res>(info: unknown, handle: (request: Req) => Answer<Res> | Promise<Answer<Res>>): void => {
  const port = parentPort
  if (!port) throw new Error('serveRequests must run in a worker thread')
  port.on('message', ({ seq, body }: Envelope<Req>) => {
    const send = (answer: Answer<Res>) => port.postMessage({ seq, body: answer.body } satisfies Envelope<Res>, answer.transfer ?? [])
    const answer = handle(body)
    if (answer instanceof Promise) answer.then(send, (error: unknown) => process.nextTick(() => { throw error }))
    else send(answer)
  })
  port.postMessage(info)
}
