import type { Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { WebSocketServer } from 'ws'
import type { Part } from '../lifecycle.js'
import { createHttpServer, type HttpDeps } from './server.js'

/**
 * The one port, as a part of the relay: ready (for /readyz) from the moment it listens (and, for a replica,
 * has caught up with the topic) until it stops.
 * Stopping refuses new connections, lets the relay answer and close its clients (`drainClients`), then
 * closes whatever HTTP connections are left.
 */
export class HttpListener implements Part {
  readonly name = 'listener'
  readonly server: Server
  readonly wss: WebSocketServer
  private accepting = false

  constructor(
    /** `ready`: what else readiness waits for beyond listening (a replica catching up); default nothing. */
    deps: Omit<HttpDeps, 'ready'> & { ready?: () => boolean },
    private readonly address: { host: string; port: number },
    private readonly drainClients: (deadline: number) => Promise<void>,
  ) {
    ;({ server: this.server, wss: this.wss } = createHttpServer({ ...deps, ready: () => this.accepting && (deps.ready?.() ?? true) }))
  }

  /** The port listened on (the configured one, or the one the system chose for 0). */
  get port(): number {
    return (this.server.address() as AddressInfo).port
  }

  async start(): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject)
      this.server.listen(this.address.port, this.address.host, () => (this.server.off('error', reject), resolve()))
    })
    this.accepting = true
  }

  async stop(deadline: number): Promise<void> {
    this.accepting = false
    this.server.close()
    await this.drainClients(deadline)
    this.wss.close()
    this.server.closeAllConnections()
  }
}
