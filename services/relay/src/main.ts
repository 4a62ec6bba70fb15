import type { AddressInfo } from 'node:net'
import { createLogger, type Logger } from '@msr/telemetry'
import type { RelayConfig } from './config.js'
import { createHttpServer } from './http/server.js'
import { createRelayMetrics } from './metrics.js'
import { relayDocument } from './nip11.js'
import { VerifierPool } from './pipeline/verifier-pool.js'
import { QueryPool } from './subscriptions/query-pool.js'
import { Relay } from './relay.js'
import { EventStore } from './store/event-store.js'

/** A started relay. */
export interface RunningRelay {
  relay: Relay
  port: number
  url: string
  /** Graceful stop: stop accepting, answer in-flight events, close clients with 1001, close the store. */
  close(): Promise<void>
}

/** Composition root: config → store → verifier → relay → HTTP/WebSocket listener. Nothing else. */
export const startRelay = async (config: RelayConfig, logger: Logger = createLogger({ service: 'relay', level: config.log.level })): Promise<RunningRelay> => {
  const store = EventStore.open(config.data.path)
  const verifier = await VerifierPool.start(config.verification.workers, config.verification.backend)
  const queries = await QueryPool.start(config.data.path, config.data.query_workers)
  const metrics = createRelayMetrics()
  const relay = new Relay({ config, store, verifier, queries, logger, metrics })
  let accepting = true
  const { server, wss } = createHttpServer({
    information: () => relayDocument(config),
    ready: () => accepting,
    onConnection: (socket, req) => relay.connect(socket, req.socket.remoteAddress ?? 'unknown'),
    maxPayload: Math.max(2 * config.limitation.max_message_length, 65536),
    perMessageDeflate: config.network.permessage_deflate,
    pingIntervalMs: config.network.ping_interval,
  })
  const sweeper = setInterval(() => {
    relay.writer
      .sweepExpired(Math.floor(Date.now() / 1000))
      .then(n => n > 0 && (metrics.expired.inc(n), logger.info({ deleted: n }, 'deleted expired events')))
      .catch(error => logger.error({ err: error }, 'expiration sweep failed'))
  }, config.data.expiration_sweep_interval)
  sweeper.unref()
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(config.network.port, config.network.host, () => resolve())
  })
  const port = (server.address() as AddressInfo).port
  logger.info({ port, host: config.network.host, store: config.data.path, events: store.size(), verifier: verifier.backend }, 'relay listening')
  const close = async () => {
    accepting = false
    clearInterval(sweeper)
    server.close()
    await relay.shutdown()
    wss.close()
    await Promise.all([verifier.close(), queries.close()])
    await store.close()
    server.closeAllConnections()
  }
  return { relay, port, url: `ws://${config.network.host}:${port}`, close }
}
