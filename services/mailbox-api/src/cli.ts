#!/usr/bin/env node
// msr-mailbox: the mailbox API's command line. Reads the environment, then serves, migrates, exports or imports.
import { readFileSync, writeFileSync } from 'node:fs'
import { parseArgs } from 'node:util'
import type pg from 'pg'
import { replaceMarkedSection } from '@msr/config'
import { createProgress, openReader, openWriter, type Reader } from '@msr/storage'
import { createLogger, flushTracing } from '@msr/telemetry'
import { ENV_SECTION, envReference, loadMailboxConfig, type MailboxConfig } from './config.js'
import { openDatabase } from './db/database.js'
import { migrate } from './db/migrate.js'
import { startMailbox } from './main.js'
import { exportMailbox } from './transfer/export.js'
import { importMailbox } from './transfer/import.js'
import { TABLES, type Table } from './transfer/records.js'
import { formatExportSummary, formatImportSummary, type Progress } from './transfer/summary.js'

const USAGE = `usage: msr-mailbox <command>

commands:
  serve        run the API (migrations are applied first)
  migrate      apply pending database migrations and exit
  export [--out FILE|-|gs://BUCKET/OBJECT] [--tables groups,keypackages,welcomes,dm_hints]
               write the mailbox as JSON lines (gzip when the name ends in .gz; default -: stdout),
               expired items left out; the summary goes to stderr
  import [--in FILE|-|gs://BUCKET/OBJECT]
               add an export's records that are not here yet (default -: stdin); running it again
               changes nothing; invalid lines are counted and skipped
  env [--update FILE]
               print the environment variables it reads (Markdown), or rewrite that section of FILE
  config check validate the environment's configuration, listing every problem

configuration: environment variables; see \`msr-mailbox env\` or README.md
export and import use the database \`serve\` would (migrated first); gs:// uses Application Default Credentials
exit codes: 0 done (an import may have skipped invalid lines), 1 the data or the database could not be
read or written (or the stream is not an export), 2 usage or configuration error
`

/** Exits once the spans still buffered are flushed (tracing started by `--import @msr/telemetry/register`), at most 2 s. */
const exitAfterTraces = (code: number): void => {
  const timer = setTimeout(() => process.exit(code), 2000)
  void flushTracing()
    .catch(() => undefined)
    .finally(() => (clearTimeout(timer), process.exit(code)))
}

const fail = (message: string): never => {
  process.stderr.write(`msr-mailbox: ${message}\n`)
  process.exit(2)
}

/** Exit 1: a run that could not read or write its data, or reach the database. */
const broke = (error: unknown): never => {
  process.stderr.write(`msr-mailbox: ${error instanceof Error ? error.message : String(error)}\n`)
  process.exit(1)
}

const config = () => {
  const loaded = loadMailboxConfig(process.env)
  if (!loaded.ok) return fail(`invalid configuration:\n  ${loaded.errors.join('\n  ')}`)
  return loaded.value
}

/** `config check`: every problem at once, or that the configuration is valid. */
const configCommand = (args: string[]): void => {
  if (args[0] !== 'check' || args.length > 1) return fail(`unknown config command "${args.join(' ')}"\n${USAGE}`)
  const cfg = config()
  process.stdout.write(`configuration is valid (port ${cfg.port}, ${cfg.databaseUrl ? 'DATABASE_URL' : `embedded PostgreSQL under ${cfg.dataDir}`})\n`)
}

const serve = async (): Promise<void> => {
  const cfg = config()
  const logger = createLogger({ service: 'mailbox-api', level: cfg.logLevel, projectId: cfg.googleCloudProject })
  const running = await startMailbox(cfg, { logger })
  let stopping = false
  const stop = (signal: string) => {
    if (stopping) return
    stopping = true
    const since = performance.now()
    logger.info({ signal }, 'shutting down')
    running.close().then(
      () => (logger.info({ seconds: (performance.now() - since) / 1000 }, 'stopped'), exitAfterTraces(0)),
      error => (logger.error({ err: error }, 'shutdown failed'), exitAfterTraces(1)),
    )
  }
  process.on('SIGTERM', () => stop('SIGTERM'))
  process.on('SIGINT', () => stop('SIGINT'))
}

const runMigrations = async (): Promise<void> => {
  const cfg = config()
  const logger = createLogger({ service: 'mailbox-api', level: cfg.logLevel, projectId: cfg.googleCloudProject })
  const database = await openDatabase({ url: cfg.databaseUrl, dataDir: cfg.dataDir, port: cfg.embeddedPgPort, poolSize: 2, logger, attach: true })
  try {
    const outcome = await migrate(database.pool)
    process.stdout.write(`schema version ${outcome.version}; applied ${outcome.applied.length ? outcome.applied.join(', ') : 'nothing (up to date)'}\n`)
  } finally {
    await database.close()
  }
}

/** Runs `work` on the configured database, migrated first as `migrate` does. Logs go to stderr: stdout may carry an export. */
const withDatabase = async <T>(cfg: MailboxConfig, work: (pool: pg.Pool) => Promise<T>): Promise<T> => {
  const logger = createLogger({ service: 'mailbox-api', level: cfg.logLevel, projectId: cfg.googleCloudProject, destination: process.stderr })
  const database = await openDatabase({ url: cfg.databaseUrl, dataDir: cfg.dataDir, port: cfg.embeddedPgPort, poolSize: 2, logger, attach: true })
  try {
    const outcome = await migrate(database.pool)
    if (outcome.applied.length > 0) process.stderr.write(`schema version ${outcome.version}; applied ${outcome.applied.join(', ')}\n`)
    return await work(database.pool)
  } finally {
    await database.close()
  }
}

/** The tables of `--tables` (comma-separated), in export order. */
const tableList = (value: string): Table[] => {
  const names = value.split(',').map(name => name.trim()).filter(name => name !== '')
  for (const name of names) if (!(TABLES as readonly string[]).includes(name)) fail(`--tables: unknown table "${name}" (tables: ${TABLES.join(', ')})`)
  if (names.length === 0) fail(`--tables: name at least one of ${TABLES.join(', ')}`)
  return TABLES.filter(table => names.includes(table))
}

/** `export`: the database's unexpired rows to --out (default stdout); a file or object appears only when complete. */
const exportCommand = async (args: string[]): Promise<void> => {
  const { values } = parseArgs({ args, options: { out: { type: 'string', default: '-' }, tables: { type: 'string' } }, strict: true })
  const tables = values.tables === undefined ? [...TABLES] : tableList(values.tables)
  const cfg = config()
  // Opened first: a destination that cannot be written fails before a database is started.
  const output = await openWriter(values.out).catch(broke)
  try {
    const summary = await withDatabase(cfg, async pool => {
      const progress = createProgress({ label: 'export', unit: 'records' })
      try {
        return await exportMailbox(pool, output.stream, { tables, progress })
      } finally {
        progress.stop()
      }
    })
    await output.done()
    process.stderr.write(formatExportSummary(summary, values.out))
  } catch (error) {
    await output.abort(error instanceof Error ? error : new Error(String(error)))
    broke(error)
  }
}

/** Progress in stored bytes (known total: a bar with an ETA), advanced as lines are read. */
const bytesRead = (progress: Progress, input: Reader): Pick<Progress, 'add'> => {
  let seen = 0
  return {
    add: () => {
      const read = input.bytesRead()
      progress.add(read - seen)
      seen = read
    },
  }
}

/** `import`: an export from --in (default stdin) into the database; exit 0 once read through, invalid lines or not. */
const importCommand = async (args: string[]): Promise<void> => {
  const { values } = parseArgs({ args, options: { in: { type: 'string', default: '-' } }, strict: true })
  if (values.in === '-' && process.stdin.isTTY) fail('import: stdin is a terminal; give --in FILE or pipe an export in')
  const cfg = config()
  const input = await openReader(values.in).catch(broke)
  const result = await withDatabase(cfg, async pool => {
    const sized = input.bytes !== undefined
    const progress = createProgress({ label: 'import', unit: sized ? 'bytes' : 'lines', ...(sized && { total: input.bytes }) })
    try {
      return await importMailbox(pool, input.stream, { maxArtifactBytes: cfg.maxArtifactBytes, progress: sized ? bytesRead(progress, input) : progress })
    } finally {
      progress.stop()
    }
  }).catch(broke)
  if (!result.ok) broke(`${values.in}: ${result.reason}; nothing was imported`)
  process.stderr.write(formatImportSummary(result.summary, values.in))
}

/** Prints the environment reference, or with `--update FILE` rewrites the marked section of that file (README). */
const env = (args: string[]): void => {
  const { values } = parseArgs({ args, options: { update: { type: 'string' } }, strict: true })
  if (!values.update) return void process.stdout.write(envReference())
  const updated = replaceMarkedSection(readFileSync(values.update, 'utf8'), ENV_SECTION, envReference())
  if (updated === undefined) return fail(`${values.update} has no ${ENV_SECTION}:start/end markers`)
  writeFileSync(values.update, updated)
}

const main = async (argv: string[]): Promise<void> => {
  const [command] = argv
  if (command === 'serve') return serve()
  if (command === 'migrate') return runMigrations()
  if (command === 'export') return exportCommand(argv.slice(1))
  if (command === 'import') return importCommand(argv.slice(1))
  if (command === 'env') return env(argv.slice(1))
  if (command === 'config') return configCommand(argv.slice(1))
  if (command === 'help' || command === '--help' || command === '-h') return void process.stdout.write(USAGE)
  if (command === undefined) return fail(`a command is needed\n${USAGE}`)
  fail(`unknown command "${command}"\n${USAGE}`)
}

/** A mistake in a command's options (node:util parseArgs), answered with the usage. */
const isUsageError = (error: unknown): boolean => String((error as { code?: unknown } | undefined)?.code ?? '').startsWith('ERR_PARSE_ARGS')

main(process.argv.slice(2)).catch(error => fail(error instanceof Error ? `${error.message}${isUsageError(error) ? `\n${USAGE}` : ''}` : String(error)))
