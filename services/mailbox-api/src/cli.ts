#!/usr/bin/env node
// msr-mailbox: the mailbox API's command line. Reads the environment, then serves or migrates.
import { readFileSync, writeFileSync } from 'node:fs'
import { parseArgs } from 'node:util'
import { replaceMarkedSection } from '@msr/config'
import { createLogger } from '@msr/telemetry'
import { ENV_SECTION, envReference, loadMailboxConfig } from './config.js'
import { openDatabase } from './db/database.js'
import { migrate } from './db/migrate.js'
import { startMailbox } from './main.js'

const USAGE = `usage: msr-mailbox <command>

commands:
  serve        run the API (migrations are applied first)
  migrate      apply pending database migrations and exit
  env [--update FILE]
               print the environment variables it reads (Markdown), or rewrite that section of FILE

configuration: environment variables; see \`msr-mailbox env\` or README.md
`

const fail = (message: string): never => {
  process.stderr.write(`msr-mailbox: ${message}\n`)
  process.exit(2)
}

const config = () => {
  const loaded = loadMailboxConfig(process.env)
  if (!loaded.ok) return fail(`invalid configuration:\n  ${loaded.errors.join('\n  ')}`)
  return loaded.value
}

const serve = async (): Promise<void> => {
  const cfg = config()
  const logger = createLogger({ service: 'mailbox-api', level: cfg.logLevel })
  const running = await startMailbox(cfg, { logger })
  let stopping = false
  const stop = (signal: string) => {
    if (stopping) return
    stopping = true
    logger.info({ signal }, 'shutting down')
    running.close().then(
      () => process.exit(0),
      error => (logger.error({ err: error }, 'shutdown failed'), process.exit(1)),
    )
  }
  process.on('SIGTERM', () => stop('SIGTERM'))
  process.on('SIGINT', () => stop('SIGINT'))
}

const runMigrations = async (): Promise<void> => {
  const cfg = config()
  const logger = createLogger({ service: 'mailbox-api', level: cfg.logLevel })
  const database = await openDatabase({ url: cfg.databaseUrl, dataDir: cfg.dataDir, port: cfg.embeddedPgPort, poolSize: 2, logger })
  try {
    const outcome = await migrate(database.pool)
    process.stdout.write(`schema version ${outcome.version}; applied ${outcome.applied.length ? outcome.applied.join(', ') : 'nothing (up to date)'}\n`)
  } finally {
    await database.close()
  }
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
  if (command === 'env') return env(argv.slice(1))
  if (command === undefined || command === 'help' || command === '--help' || command === '-h') return void process.stdout.write(USAGE)
  fail(`unknown command "${command}"\n${USAGE}`)
}

main(process.argv.slice(2)).catch(error => fail(error instanceof Error ? error.message : String(error)))
