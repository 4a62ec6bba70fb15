import type { AddressInfo } from 'node:net'
import type { Server } from 'node:http'
import { loadVerifier } from '@msr/nostr'
import { createLogger, type Logger } from '@msr/telemetry'
import { buildApp } from './app.js'
import type { MailboxConfig } from './config.js'
import { openDatabase, type Database } from './db/database.js'
import { migrate } from './db/migrate.js'
import { purgeExpired } from './domain/janitor.js'
import { createMailboxMetrics, type MailboxMetrics } from './metrics.js'

/** A started mailbox API. */
export interface RunningMailbox {
  server: Server
  port: number
  url: string
  database: Database
  metrics: MailboxMetrics
  /** Stops accepting, finishes in-flight requests, stops the janitor and closes the database. */
  close(): Promise<void>
}

/** One janitor sweep, counted in metrics. */
const sweep = async (database: Database, metrics: MailboxMetrics, logger: Logger): Promise<void> => {
  const purged = await purgeExpired(database.pool)
  for (const [kind, n] of Object.entries(purged)) if (n > 0) metrics.expiries.inc({ kind }, n)
  if (Object.values(purged).some(n => n > 0)) logger.info({ purged }, 'purged expired rows')
}

/** Composition root: config → database (+ migrations) → app → listen → janitor. Nothing else. */
export const startMailbox = async (config: MailboxConfig, opts: { logger?: Logger; database?: Database; defaultMetrics?: boolean } = {}): Promise<RunningMailbox> => {
  const logger = opts.logger ?? createLogger({ service: 'mailbox-api', level: config.logLevel })
  const database =
    opts.database ?? (await openDatabase({ url: config.databaseUrl, dataDir: config.dataDir, port: config.embeddedPgPort, poolSize: config.dbPoolSize, logger }))
  const { applied, version } = await migrate(database.pool)
  logger.info({ database: database.describe, applied, version }, 'database ready')
  const verifier = await loadVerifier()
  const metrics = createMailboxMetrics({ defaultMetrics: opts.defaultMetrics })
  const app = buildApp({ config, pool: database.pool, gatePool: database.gatePool, verifier, metrics, logger })
  const server = await new Promise<Server>((resolve, reject) => {
    const s = app.listen(config.port, config.host, () => resolve(s))
    s.once('error', reject)
  })
  const janitor = setInterval(() => void sweep(database, metrics, logger).catch(error => logger.error({ err: error }, 'janitor sweep failed')), config.janitorIntervalMs)
  janitor.unref()
  const port = (server.address() as AddressInfo).port
  logger.info({ port, host: config.host, publicUrl: config.publicUrl, verifier: verifier.name }, 'mailbox API listening')
  return {
    server,
    port,
    url: `http://${config.host}:${port}`,
    database,
    metrics,
    close: async () => {
      clearInterval(janitor)
      await new Promise<void>(resolve => server.close(() => resolve()))
      if (!opts.database) await database.close()
    },
  }
}
