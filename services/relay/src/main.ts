import type { AddressInfo } from 'node:net'
import { createLogger, type Logger } from '@msr/telemetry'
import type { RelayConfig } from './config.js'
import { createHttpServer } from './http/server.js'
import { createRelayMetrics } from './metrics.js'
import { relayDocument } from './nip11.js'
import { VerifierPool } from '@msr/workers'
import { QueryPool } from './subscriptions/query-pool.js'
import { clientIp } from './policies/ip.js'
import { Relay } from './relay.js'
import { Settings } from './settings.js'
import { watchConfig, type ConfigLoader } from './watch.js'
import { EventStore } from './store/event-store.js'
import { HintDrainer } from './pipeline/hint-drainer.js'
import { hintTransport } from './pipeline/hint-transport.js'
import { openSnapshotStore, type StorageOptions } from '@msr/storage'
import { Backups, restoreNewest } from './backup/backups.js'

/** How long a graceful stop keeps publishing waiting hints (inside Cloud Run's 10 s grace period). */
const HINT_FLUSH_MS = 3000
/** Where a graceful stop must be done with hints and the last snapshot: Cloud Run kills at 10 s. */
const SHUTDOWN_DEADLINE_MS = 9000

/** A started relay. */
export interface RunningRelay {
  relay: Relay
  store: EventStore
  /** The snapshot loop when `[backup] target` is set. */
  backups: Backups | undefined
  settings: Settings
  port: number
  url: string
  /** Graceful stop: stop accepting, answer in-flight events, close clients with 1001, close the store. */
  close(): Promise<void>
}

/** Options of `startRelay` beyond the configuration. */
export interface StartOptions {
  logger?: Logger
  /** `serve --watch`: the file to watch and how to load it again. */
  watch?: { file: string; load: ConfigLoader }
  /** The Cloud Storage client for a gs:// `[backup] target` (tests inject one; default: the library's own). */
  storage?: StorageOptions['storage']
}

/** Composition root: config → store → workers → relay → HTTP/WebSocket listener (→ config watcher). Nothing else. */
export const startRelay = async (config: RelayConfig, options: StartOptions = {}): Promise<RunningRelay> => {
  const logger = options.logger ?? createLogger({ service: 'relay', level: config.log.level })
  const settings = new Settings(config)
  const transport = hintTransport(config.hints)
  const store = EventStore.open(config.data.path)
  const snapshots = config.backup.target ? openSnapshotStore(config.backup.target, options.storage ? { storage: options.storage } : {}) : undefined
  const verifier = await VerifierPool.start(config.verification.workers, config.verification.backend)
  const queries = await QueryPool.start(config.data.path, config.data.query_workers)
  const metrics = createRelayMetrics()
  let drainer: HintDrainer | undefined
  let backups: Backups | undefined
  const onCommitted = (batch: { event: { id: string; kind: number } }[]) => {
    backups?.changed(batch.map(c => c.event.id))
    if (batch.some(c => c.event.kind === 445 || c.event.kind === 446)) drainer?.notify()
  }
  const relay = new Relay({ settings, store, verifier, queries, logger, metrics, onCommitted })
  // An empty store on an instance that had one before (Cloud Run's disk went with the old instance):
  // the newest snapshot comes back before the relay listens, so /readyz only answers once it has.
  const startedEmpty = store.size() === 0
  if (snapshots && config.backup.restore_on_boot && startedEmpty)
    await restoreNewest(snapshots, { store, writer: relay.writer, queueHints: transport !== undefined }, logger)
  store.hintsEnabled = transport !== undefined
  if (snapshots) {
    backups = new Backups(
      {
        store,
        snapshots,
        logger,
        observer: {
          snapshot: (outcome, seconds, events) => {
            metrics.snapshots.inc({ outcome })
            if (outcome !== 'written') return
            metrics.snapshotSeconds.observe(seconds)
            metrics.snapshotEvents.set(events)
            metrics.lastSnapshot.set(Date.now() / 1000)
          },
        },
      },
      // Restored or new: the snapshots cover what is stored, so a delta at shutdown is enough.
      { intervalMs: config.backup.interval, keep: config.backup.keep, startedEmpty: startedEmpty && config.backup.restore_on_boot },
    )
    backups.start()
  }
  if (transport) {
    const kind = (hint: { kind: number }) => String(hint.kind)
    drainer = new HintDrainer(
      {
        store,
        writer: relay.writer,
        transport,
        logger,
        observer: {
          published: (hint, seconds) => (metrics.hintsPublished.inc({ kind: kind(hint) }), metrics.hintPublishSeconds.observe({ kind: kind(hint) }, seconds)),
          failed: hint => metrics.hintPublishFailures.inc({ kind: kind(hint) }),
          dropped: () => metrics.hintsDropped.inc(),
        },
      },
      { batchSize: config.hints.batch_size, maxBackoffMs: config.hints.max_backoff, publishTimeoutMs: config.hints.publish_timeout },
    )
    drainer.start()
  } else if (store.outbox.size() > 0) {
    logger.warn({ waiting: store.outbox.size() }, 'hints are waiting in the outbox but hints.transport is "none": they are not published')
  }
  let accepting = true
  const { server, wss } = createHttpServer({
    information: () => relayDocument(settings.current.config),
    ready: () => accepting,
    metricsKey: () => (settings.current.config.metrics.enabled ? settings.current.config.metrics.auth : undefined),
    renderMetrics: async () => {
      metrics.hintOutbox.set(store.outbox.size())
      return { body: await metrics.metrics.render(), contentType: metrics.metrics.contentType }
    },
    clientIp: req => clientIp(req, settings.current.config.network.trusted_proxies),
    admits: ip => relay.admits(ip),
    onRefused: reason => (metrics.refusedConnections.inc({ reason }), metrics.rateLimited.inc({ rule: reason })),
    onConnection: (socket, ip) => relay.connect(socket, ip),
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
  const watcher = options.watch && watchConfig(options.watch.file, options.watch.load, settings, logger, metrics)
  const port = (server.address() as AddressInfo).port
  const backup = config.backup.target ? `${config.backup.target} every ${config.backup.interval / 1000}s, keep ${config.backup.keep}` : 'off'
  const hints = config.hints.transport === 'none' ? 'off' : config.hints.transport === 'local' ? `local → ${config.hints.push_url}` : `pubsub (${config.hints.group_topic}, ${config.hints.dm_topic})`
  logger.info({ port, host: config.network.host, store: config.data.path, events: store.size(), verifier: verifier.backend, hints, backup }, 'relay listening')
  const close = async () => {
    const stopping = Date.now()
    accepting = false
    watcher?.close()
    clearInterval(sweeper)
    server.close()
    await relay.shutdown()
    // On Cloud Run the disk goes with the instance: the last hints get a moment to reach the bus, and
    // the store one more snapshot, bounded so that the whole stop fits the 10 s grace period.
    const left = Math.max(1000, SHUTDOWN_DEADLINE_MS - (Date.now() - stopping))
    const snapshotWithin = config.backup.on_shutdown ? Math.min(config.backup.shutdown_budget, left) : undefined
    await Promise.all([drainer?.stop(Math.min(HINT_FLUSH_MS, left)), backups?.stop(snapshotWithin)])
    wss.close()
    await Promise.all([verifier.close(), queries.close()])
    await store.close()
    server.closeAllConnections()
  }
  return { relay, store, backups, settings, port, url: `ws://${config.network.host}:${port}`, close }
}
