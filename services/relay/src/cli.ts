#!/usr/bin/env node
// msr-relay: the relay's command line. Parses arguments, loads configuration, starts the relay.
import { parseArgs } from 'node:util'
import { createLogger } from '@msr/telemetry'
import { loadRelayConfig } from './config.js'
import { startRelay } from './main.js'

const USAGE = `usage: msr-relay <command> [options]

commands:
  serve [--config FILE]   run the relay (default config: config/relay.toml, optional)

environment:
  RELAY_<SECTION>__<KEY>  overrides a configuration key, e.g. RELAY_NETWORK__PORT=9000
  PORT                    listen port (Cloud Run); wins over the file and RELAY_NETWORK__PORT
`

const fail = (message: string): never => {
  process.stderr.write(`msr-relay: ${message}\n`)
  process.exit(2)
}

const serve = async (args: string[]): Promise<void> => {
  const { values } = parseArgs({ args, options: { config: { type: 'string', short: 'c' } }, strict: true })
  const loaded = loadRelayConfig(values.config, process.env)
  if (!loaded.ok) fail(`invalid configuration:\n  ${loaded.errors.join('\n  ')}`)
  if (!loaded.ok) return
  const config = loaded.value
  const logger = createLogger({ service: 'relay', level: config.log.level })
  if (loaded.source.file) logger.info({ file: loaded.source.file, env: loaded.source.envKeys }, 'configuration loaded')
  else logger.info({ env: loaded.source.envKeys }, 'no configuration file; using defaults')
  const running = await startRelay(config, logger)
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

const main = async (argv: string[]): Promise<void> => {
  const [command, ...rest] = argv
  if (command === 'serve') return serve(rest)
  if (command === undefined || command === 'help' || command === '--help' || command === '-h') return void process.stdout.write(USAGE)
  fail(`unknown command "${command}"\n${USAGE}`)
}

main(process.argv.slice(2)).catch(error => fail(error instanceof Error ? error.message : String(error)))
