import { openSnapshotStore, type StorageOptions } from '@msr/storage'
import { createLogger, type Logger } from '@msr/telemetry'
import { VerifierPool } from '@msr/workers'
import { openBackups, type Backups } from './backup/backups.js'
import { logProjectId, type RelayConfig } from './config.js'
import { HttpListener } from './http/listener.js'
import { Lifecycle, startedPart, type Part } from './lifecycle.js'
import { backupObserver, createRelayMetrics, drainerObserver, MetricsSampler, replicationObserver } from './metrics.js'
import { relayDocument } from './nip11.js'
import { ExpirySweep } from './pipeline/expiry-sweep.js'
import { HintDrainer } from './pipeline/hint-drainer.js'
import { hintTransport } from './pipeline/hint-transport.js'
import { verifierThreads } from './pipeline/validate.js'
import { Writer } from './pipeline/writer.js'
import { clientIp } from './policies/ip.js'
import { installProcessGuards } from './process-guards.js'
import { Relay } from './relay.js'
import { seekBack } from './replication/bootstrap.js'
import { replicationOf } from './replication/replication.js'
import { Settings } from './settings.js'
import { fingerprint } from './store/fingerprint.js'
import type { EventStore } from './store/event-store.js'
import { effectiveCap, openConfiguredStore, type ConfiguredStore } from './store/write-map.js'
import { claimStore } from './store/owner.js'
import { QueryPool } from './subscriptions/query-pool.js'
import { configWatcher, type ConfigLoader } from './watch.js'

/** How long a graceful stop keeps publishing waiting hints (inside Cloud Run's 10 s grace period). */
const HINT_FLUSH_MS = 3000
/** How long a graceful stop waits for received events to be answered before closing clients. */
const CLIENT_GRACE_MS = 5000
/** When every part must have stopped, from the stop signal: Cloud Run kills at 10 s. */
const SHUTDOWN_DEADLINE_MS = 9000

/** A started relay. */
export interface RunningRelay {
  relay: Relay
  store: EventStore
  writer: Writer
  verifier: VerifierPool
  queries: QueryPool
  /** The snapshot loop when `[backup] target` is set. */
  backups: Backups | undefined
  settings: Settings
  port: number
  url: string
  /** Graceful stop: every part in reverse start order, within Cloud Run's grace period. */
  close(): Promise<void>
}

/** Options of `startRelay` beyond the configuration. */
export interface StartOptions {
  logger?: Logger
  /** `serve --watch`: the file to watch and how to load it again. */
  watch?: { file: string; load: ConfigLoader }
  /** The Cloud Storage client for a gs:// `[backup] target` (tests inject one; default: the library's own). */
  storage?: StorageOptions['storage']
  /** Log and count what escapes every handler at the process level (`msr-relay serve`; not in a host process). */
  processGuards?: boolean
  /** The writer thread's entry module (tests give testing/gated-write-worker.js, which can hold each commit's answer). */
  writerThread?: URL
}

/**
 * Composition root: config → store → writer → workers → relay → background parts → listener. Each part
 * starts after what it needs and stops before it, in reverse order, by one deadline.
 */
export const startRelay = async (config: RelayConfig, options: StartOptions = {}): Promise<RunningRelay> => {
  const logger = options.logger ?? createLogger({ service: 'relay', level: config.log.level, projectId: logProjectId(config) })
  const metrics = createRelayMetrics()
  const settings = new Settings(config)
  const lifecycle = new Lifecycle(logger)
  try {
    // Before the store is opened (a migration, a writer): another relay serving it refuses this start.
    const released = claimStore(config.data.path)
    let opened: ConfiguredStore
    try {
      opened = openConfiguredStore(config.data)
    } catch (error) {
      released()
      throw error
    }
    const { store, mapCap } = opened
    const maxBytes = () => effectiveCap(settings.current.config.data.max_size, mapCap)
    const writer = await Writer.threaded(store, (error, context) => relay.report('write', error, context), maxBytes, options.writerThread).catch(async (error: unknown) => {
      await store.close().finally(released)
      throw error
    })
    await lifecycle.start(startedPart('store', () => writer.close().then(() => store.close()).finally(released)))
    const verifier = await VerifierPool.start(verifierThreads(config.verification.workers), config.verification.backend)
    const queries = await QueryPool.start(config.data.path, config.data.query_workers, { store, budgetMs: config.data.query_inline }, store.openOptions)
    await lifecycle.start(startedPart('workers', () => Promise.all([verifier.close(), queries.close()]).then(() => undefined)))
    // Before the relay, whose fan-out listener then goes through its gate.
    const replication = replicationOf(config.replication, {
      store,
      writer,
      verifier,
      logger,
      observer: replicationObserver(metrics),
      fanOut: events => relay.fanOut.enqueue(events),
    })
    const relay = new Relay({ settings, writer, verifier, queries, logger, metrics, replication: replication?.gate })
    const startedEmpty = store.size() === 0
    // A replica's subscription exists before anything is restored: what is published meanwhile is kept for it.
    if (replication) await lifecycle.start(replication.bus)

    const transport = hintTransport(config.hints)
    const snapshots = config.backup.target ? openSnapshotStore(config.backup.target, options.storage ? { storage: options.storage } : {}) : undefined
    const backups = snapshots
      ? await openBackups(config.backup, {
          store,
          snapshots,
          writer,
          queueHints: transport !== undefined,
          queueReplication: replication !== undefined,
          logger,
          observer: backupObserver(metrics),
          ...(replication && { complete: () => replication.catchUp.caughtUp }),
        })
      : undefined
    // An empty replica replays the topic from before its snapshot (or from the start of the topic's retention).
    if (replication && startedEmpty) await seekBack(replication.bus, { snapshotStartedAt: backups?.restored?.startedAt, marginMs: config.replication.seek_margin }, logger)
    store.hintsEnabled = transport !== undefined
    const drainer = transport && new HintDrainer(
      { store, writer, transport, logger, observer: drainerObserver(metrics) },
      { batchSize: config.hints.batch_size, maxBackoffMs: config.hints.max_backoff, publishTimeoutMs: config.hints.publish_timeout, flushMs: HINT_FLUSH_MS },
    )
    if (!transport && store.outbox.size() > 0)
      logger.warn({ waiting: store.outbox.size() }, 'hints are waiting in the outbox but hints.transport is "none": they are not published')
    writer.onCommitted(batch => backups?.changed(batch.map(c => c.event.id)))
    writer.onCommitted(batch => batch.some(c => c.event.kind === 445 || c.event.kind === 446) && drainer?.notify())

    const sampler = new MetricsSampler(metrics, store, Date.now, maxBytes)
    const listener = new HttpListener(
      {
        information: () => relayDocument(settings.current.config),
        ready: () => replication?.catchUp.caughtUp ?? true,
        metricsKey: () => (settings.current.config.metrics.enabled ? settings.current.config.metrics.auth : undefined),
        renderMetrics: () => sampler.render(),
        adminKey: () => settings.current.config.admin.key || undefined,
        fingerprint: () => fingerprint(store, Math.floor(Date.now() / 1000)),
        clientIp: req => clientIp(req, settings.current.config.network.trusted_proxies),
        admits: ip => relay.admits(ip),
        onRefused: reason => (metrics.refusedConnections.inc({ reason }), metrics.rateLimited.inc({ rule: reason })),
        onConnection: (socket, ip) => relay.connect(socket, ip),
        maxPayload: Math.max(2 * config.limitation.max_message_length, 65536),
        perMessageDeflate: config.network.permessage_deflate,
        pingIntervalMs: config.network.ping_interval,
      },
      { host: config.network.host, port: config.network.port },
      deadline => relay.shutdown(Math.min(CLIENT_GRACE_MS, Math.max(0, deadline - Date.now()))),
    )
    const parts: Array<Part | undefined> = [
      backups,
      drainer,
      ...(replication?.parts ?? []),
      new ExpirySweep({ writer, logger, onDeleted: n => metrics.expired.inc(n) }, config.data.expiration_sweep_interval),
      sampler,
      options.processGuards ? processGuards(logger, metrics) : undefined,
      options.watch && configWatcher(options.watch.file, options.watch.load, settings, logger, metrics),
      listener,
    ]
    for (const part of parts) if (part) await lifecycle.start(part)

    logStarted(logger, config, { port: listener.port, events: store.size(), verifier: verifier.backend, verifiers: verifier.size, replica: replication?.bus.replicaId })
    return {
      relay,
      store,
      writer,
      verifier,
      queries,
      backups,
      settings,
      port: listener.port,
      url: `ws://${config.network.host}:${listener.port}`,
      close: () => lifecycle.stop(Date.now() + SHUTDOWN_DEADLINE_MS),
    }
  } catch (error) {
    // A start that failed half-way releases what it took (workers, the store's lock, the port).
    await lifecycle.stop(Date.now() + SHUTDOWN_DEADLINE_MS)
    throw error
  }
}

/** The process-level handlers as a part (installed for the relay's life). */
const processGuards = (logger: Logger, metrics: ReturnType<typeof createRelayMetrics>): Part => {
  let remove: (() => void) | undefined
  return {
    name: 'process guards',
    start: () => void (remove = installProcessGuards(logger, escape => metrics.internalErrors.inc({ where: escape }))),
    stop: async () => remove?.(),
  }
}

/** The one line that says what runs where. */
const logStarted = (logger: Logger, config: RelayConfig, facts: { port: number; events: number; verifier: string; verifiers: number; replica: string | undefined }): void => {
  const { backup, hints, replication } = config
  logger.info(
    {
      ...facts,
      host: config.network.host,
      store: config.data.write_map ? `${config.data.path} (writable map)` : config.data.path,
      hints: hints.transport === 'none' ? 'off' : hints.transport === 'local' ? `local → ${hints.push_url}` : `pubsub (${hints.group_topic}, ${hints.dm_topic})`,
      backup: backup.target ? `${backup.target} every ${backup.interval / 1000}s, keep ${backup.keep}` : 'off',
      replication: facts.replica ? `topic ${replication.topic} as ${facts.replica}, on bus outage: ${replication.on_bus_outage}` : 'off',
    },
    'relay listening',
  )
}
