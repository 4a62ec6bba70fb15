// An in-test push endpoint standing in for the mailbox API's /internal/pubsub/push: it decodes each push
// envelope into its hint and records it, answering whatever status the test sets.
import assert from 'node:assert/strict'
import { createServer, type IncomingMessage, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { decodePushEnvelope, type Hint } from '@msr/hints'
import { waitUntil } from './harness.js'

/** What the push endpoint received. */
export interface Received {
  hint: Hint
  authorization: string | undefined
  attributes: Record<string, string>
  orderingKey: string | undefined
  raw: string
}

/** An in-test push endpoint: answers `status()` (204 by default) and records what it accepted. */
export class PushEndpoint {
  readonly accepted: Received[] = []
  requests = 0
  status: () => number = () => 204
  private server!: Server

  async start(port = 0): Promise<this> {
    this.server = createServer((req, res) => void this.handle(req).then(code => res.writeHead(code).end()))
    await new Promise<void>(resolve => this.server.listen(port, '127.0.0.1', () => resolve()))
    return this
  }

  get url(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/internal/pubsub/push`
  }

  private async handle(req: IncomingMessage): Promise<number> {
    const chunks: Buffer[] = []
    try {
      for await (const chunk of req) chunks.push(chunk as Buffer)
    } catch {
      return 400 // the sender went away mid-body (a relay killed by a crash test); nothing was received
    }
    this.requests++
    const code = this.status()
    if (code >= 300) return code
    const raw = Buffer.concat(chunks).toString('utf8')
    const body = JSON.parse(raw) as { message: { attributes?: Record<string, string>; orderingKey?: string } }
    const decoded = decodePushEnvelope(body)
    assert.ok(decoded.ok, `a push envelope with a hint: ${raw}`)
    this.accepted.push({ hint: decoded.hint, authorization: req.headers.authorization, attributes: body.message.attributes ?? {}, orderingKey: body.message.orderingKey, raw })
    return code
  }

  hintFor(id: string): Received | undefined {
    return this.accepted.find(r => r.hint.id === id)
  }

  waitFor(id: string, what = `the hint of ${id.slice(0, 8)}`): Promise<Received> {
    return waitUntil(() => this.hintFor(id) !== undefined, what, 20_000, 20).then(() => this.hintFor(id) as Received)
  }

  close(): Promise<void> {
    // Keep-alive sockets of a relay's transport would hold close() open until they time out.
    this.server.closeAllConnections()
    return new Promise(resolve => this.server.close(() => resolve()))
  }
}
