import type { AddressInfo } from 'node:net'
import { createServer, type Server } from 'node:http'
import { loadVerifier } from '@msr/nostr'
import { inlineSignatures, pooledSignatures } from './auth/signatures.js'
import { createLogger, type Logger } from '@msr/telemetry'
import { buildApp } from './app.js'
import { pushAuthModes, pushAuthSettings, type CertsSource } from './auth/push.js'
import type { MailboxConfig } from './config.js'
import { openDatabase, type Database } from './db/database.js'
import { migrate } from './db/migrate.js'
import { createHintReceiver } from './domain/hints.js'
import { hintSeenRetention, purgeExpired } from './domain/janitor.js'
import { startHintsConsumer, type HintsConsumer } from './hints-consumer.js'
import { answerClientError, appServerOptions } from './http-edge.js'
import { createMailboxMetrics, type MailboxMetrics } from './metrics.js'

/** A started mailbox API. */
export interface RunningMailbox {
  server: Server
  port: number
  url: string
  database: Database
  metrics: MailboxMetrics
  /** Stops the hint pull consumer, stops accepting, finishes in-flight requests, stops the janitor and closes the database. */
  close(): Promise<void>
}

/** One janitor sweep, counted in metrics. */
const sweep = async (database: Database, metrics: MailboxMetrics, logger: Logger, hintSeenRetentionSeconds: number): Promise<void> => {
  const purged = await purgeExpired(database.pool, { hintSeenRetentionSeconds })
  for (const [kind, n] of Object.entries(purged)) if (n > 0) metrics.expiries.inc({ kind }, n)
  if (Object.values(purged).some(n => n > 0)) logger.info({ purged }, 'purged expired rows')
}

/** One hint pull consumer per HINTS_SUBSCRIPTION entry. */
const startConsumers = (config: MailboxConfig, database: Database, metrics: MailboxMetrics, logger: Logger): HintsConsumer[] => {
  const receive = createHintReceiver({ pool: database.pool, metrics, logger, dmHintTtlSeconds: config.defaultTtlSeconds })
  return config.hintsSubscriptions.map(subscription =>
    startHintsConsumer({
      subscription,
      projectId: config.googleCloudProject,
      emulatorHost: config.pubsubEmulatorHost,
      maxMessages: config.hintsMaxMessages,
      receive,
      logger,
    }),
  )
}

/** Composition root: config → database (+ migrations) → app → listen → hint pull consumer → janitor. Nothing else. */
export const startMailbox = async (
  config: MailboxConfig,
  opts: { logger?: Logger; database?: Database; defaultMetrics?: boolean; pushCerts?: CertsSource } = {},
): Promise<RunningMailbox> => {
  const logger = opts.logger ?? createLogger({ service: 'mailbox-api', level: config.logLevel, projectId: config.googleCloudProject })
  const database =
    opts.database ?? (await openDatabase({ url: config.databaseUrl, dataDir: config.dataDir, port: config.embeddedPgPort, poolSize: config.dbPoolSize, logger }))
  const { applied, version } = await migrate(database.pool)
  logger.info({ database: database.describe, applied, version }, 'database ready')
  const signatures = config.verifyWorkers > 0 ? await pooledSignatures(config.verifyWorkers) : inlineSignatures(await loadVerifier())
  const metrics = createMailboxMetrics({ defaultMetrics: opts.defaultMetrics })
  const app = buildApp({ config, pool: database.pool, gatePool: database.gatePool, signatures, metrics, logger, ...(opts.pushCerts && { pushCerts: opts.pushCerts }) })
  const server = await new Promise<Server>((resolve, reject) => {
    // No Host header is no reason for Node's own bare 400: nothing here reads Host (NIP-98 URLs come from
    // PUBLIC_URL), so such a request gets the API's answer like any other.
    const s = createServer({ requireHostHeader: false, ...appServerOptions(app) }, app)
    s.once('error', reject)
    s.on('clientError', answerClientError)
    // Expect: 100-continue reaches the app unanswered; refuseDeclaredOver says 100 only to a body it takes.
    s.on('checkContinue', app)
    s.listen(config.port, config.host, () => resolve(s))
  })
  const consumers = startConsumers(config, database, metrics, logger)
  const pull = config.hintsSubscriptions.length > 0 ? config.hintsSubscriptions : null
  logger.info({ push: pushAuthModes(pushAuthSettings(config)), pull, ...(pull && config.pubsubEmulatorHost && { emulator: config.pubsubEmulatorHost }) }, 'hint inputs')
  const retention = hintSeenRetention(config.defaultTtlSeconds)
  const janitor = setInterval(() => void sweep(database, metrics, logger, retention).catch(error => logger.error({ err: error }, 'janitor sweep failed')), config.janitorIntervalMs)
  janitor.unref()
  const port = (server.address() as AddressInfo).port
  logger.info({ port, host: config.host, publicUrl: config.publicUrl, verifier: signatures.name }, 'mailbox API listening')
  return {
    server,
    port,
    url: `http://${config.host}:${port}`,
    database,
    metrics,
    close: async () => {
      await Promise.all(consumers.map(c => c.close()))
      clearInterval(janitor)
      await new Promise<void>(resolve => server.close(() => resolve()))
      await signatures.close()
      if (!opts.database) await database.close()
    },
  }
}
