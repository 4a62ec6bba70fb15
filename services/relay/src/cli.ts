#!/usr/bin/env node
// msr-relay: the relay's command line. Parses arguments, loads configuration, starts the relay.
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { parseArgs, type ParseArgsConfig } from 'node:util'
import { configReference, replaceMarkedSection } from '@msr/config'
import { createLogger, flushTracing } from '@msr/telemetry'
import { DEFAULT_CONFIG_FILE, loadRelayConfig, logProjectId, REFERENCE_SECTION, relayConfigSchema } from './config.js'
import { tuneHeapForServing } from './heap-tuning.js'
import { startRelay } from './main.js'
import { filterFrom, runExport, runImport } from './backup/transfer-cli.js'
import { openConfiguredStore } from './store/write-map.js'
import { fingerprint } from './store/fingerprint.js'

const USAGE = `usage: msr-relay <command> [options]

commands:
  serve [--config FILE] [--watch]
                                 run the relay (default config: config/relay.toml, optional);
                                 --watch re-reads the file when it changes
  export [--config FILE] [--filter JSON] [--out FILE|-|gs://bucket/object]
                                 write stored events as JSONL (gzip when the name ends in .gz; default: stdout)
  import [--config FILE] [--in FILE|-|gs://bucket/object] [--no-verify] [--force]
                                 store JSONL events (signatures verified unless --no-verify; default: stdin);
                                 run it with the relay stopped, or into a fresh data.path (a store a
                                 running relay serves is refused unless --force)
  fingerprint [--config FILE]    print the store's fingerprint as JSON: events served now and a SHA-256
                                 over their ids (equal on two replicas that hold the same events)
  config check [--config FILE]   validate the configuration (file + environment), list every problem
  config reference [--update F]  print the reference of every configuration key (Markdown), or rewrite it in F

environment:
  RELAY_<SECTION>__<KEY>  overrides a configuration key, e.g. RELAY_NETWORK__PORT=9000
  PORT                    listen port (Cloud Run); wins over the file and RELAY_NETWORK__PORT
`

/** Exits once the spans still buffered are flushed (tracing started by `--import @msr/telemetry/register`), at most 2 s. */
const exitAfterTraces = (code: number): void => {
  const timer = setTimeout(() => process.exit(code), 2000)
  void flushTracing()
    .catch(() => undefined)
    .finally(() => (clearTimeout(timer), process.exit(code)))
}

const fail = (message: string): never => {
  process.stderr.write(`msr-relay: ${message}\n`)
  process.exit(2)
}

/** A command's options, parsed strictly; a bad one exits 2 with the usage. */
const parseOptions = (args: string[], options: ParseArgsConfig['options']): Record<string, unknown> => {
  try {
    return parseArgs({ args, options, strict: true }).values
  } catch (error) {
    return fail(`${error instanceof Error ? error.message : String(error)}\n${USAGE}`)
  }
}

/** Loads the configuration named by `--config`, or exits listing every problem. */
const configFrom = (args: string[]) => {
  const values = parseOptions(args, { config: { type: 'string', short: 'c' }, watch: { type: 'boolean' } })
  const named = values.config as string | undefined
  const loaded = loadRelayConfig(named, process.env)
  if (!loaded.ok) return fail(`invalid configuration:\n  ${loaded.errors.join('\n  ')}`)
  const file = named ?? DEFAULT_CONFIG_FILE
  if (values.watch === true && !existsSync(file)) return fail(`--watch needs a configuration file; ${file} does not exist`)
  return { ...loaded, file, named, watch: values.watch === true }
}

/** Exits 2 unless a store exists at `path` (a command that only reads one must not create an empty one). */
const requireStore = (path: string): void => {
  if (!existsSync(join(path, 'data.mdb'))) fail(`no store at ${path} (data.path)`)
}

/** `export` / `import`: options parsed strictly; exit 1 when the data could not be read or written. */
const transfer = async (command: 'export' | 'import', args: string[]): Promise<void> => {
  const options: ParseArgsConfig['options'] = {
    config: { type: 'string', short: 'c' },
    ...(command === 'export'
      ? { filter: { type: 'string' }, out: { type: 'string' } }
      : { in: { type: 'string' }, 'no-verify': { type: 'boolean' }, force: { type: 'boolean' } }),
  }
  const values = parseOptions(args, options)
  const loaded = loadRelayConfig(values.config as string | undefined, process.env)
  if (!loaded.ok) return fail(`invalid configuration:\n  ${loaded.errors.join('\n  ')}`)
  const filter = filterFrom(values.filter as string | undefined)
  if (filter instanceof Error) return fail(filter.message)
  // Reading a store that is not there would make an empty one and export nothing: a mistyped data.path.
  if (command === 'export') requireStore(loaded.value.data.path)
  try {
    if (command === 'export') await runExport(loaded.value, (values.out as string | undefined) ?? '-', filter)
    else await runImport(loaded.value, (values.in as string | undefined) ?? '-', values['no-verify'] !== true, {}, values.force === true)
  } catch (error) {
    process.stderr.write(`msr-relay ${command}: ${error instanceof Error ? error.message : String(error)}\n`)
    process.exit(1)
  }
}

/** Prints the key reference, or with `--update FILE` rewrites the marked section of that file (README). */
const reference = (args: string[]): void => {
  const update = parseOptions(args, { update: { type: 'string' } }).update as string | undefined
  const text = configReference(relayConfigSchema, { envPrefix: 'RELAY_' })
  if (!update) return void process.stdout.write(text)
  const updated = replaceMarkedSection(readFileSync(update, 'utf8'), REFERENCE_SECTION, text)
  if (updated === undefined) return fail(`${update} has no ${REFERENCE_SECTION}:start/end markers`)
  writeFileSync(update, updated)
}

const config = (args: string[]): void => {
  const [sub, ...rest] = args
  if (sub === 'reference') return reference(rest)
  if (sub !== 'check') return fail(`unknown config command "${sub ?? ''}"\n${USAGE}`)
  const loaded = configFrom(rest)
  process.stdout.write(`configuration is valid${loaded.source.file ? ` (${loaded.source.file})` : ' (defaults, no file)'}\n`)
}

/** `fingerprint`: the store at data.path (a running relay's too: LMDB readers never block its writer). */
const printFingerprint = async (args: string[]): Promise<void> => {
  const { value } = configFrom(args)
  requireStore(value.data.path)
  const { store } = openConfiguredStore(value.data)
  try {
    process.stdout.write(`${JSON.stringify(await fingerprint(store, Math.floor(Date.now() / 1000)))}\n`)
  } finally {
    await store.close()
  }
}

const serve = async (args: string[]): Promise<void> => {
  tuneHeapForServing()
  const loaded = configFrom(args)
  const config = loaded.value
  const logger = createLogger({ service: 'relay', level: config.log.level, projectId: logProjectId(config) })
  if (loaded.source.file) logger.info({ file: loaded.source.file, env: loaded.source.envKeys }, 'configuration loaded')
  else logger.info({ env: loaded.source.envKeys }, 'no configuration file; using defaults')
  // Signal handlers go in before the relay listens: a SIGTERM right after "relay listening" must still shut down gracefully.
  const watch = loaded.watch ? { file: loaded.file, load: () => loadRelayConfig(loaded.named, process.env) } : undefined
  const starting = startRelay(config, { logger, watch, processGuards: true })
  let stopping = false
  const stop = (signal: string) => {
    if (stopping) return
    stopping = true
    const since = performance.now()
    logger.info({ signal }, 'shutting down')
    starting.then(running => running.close()).then(
      () => (logger.info({ seconds: (performance.now() - since) / 1000 }, 'stopped'), exitAfterTraces(0)),
      error => (logger.error({ err: error }, 'shutdown failed'), exitAfterTraces(1)),
    )
  }
  process.on('SIGTERM', () => stop('SIGTERM'))
  process.on('SIGINT', () => stop('SIGINT'))
  await starting
}

const main = async (argv: string[]): Promise<void> => {
  const [command, ...rest] = argv
  if (command === 'serve') return serve(rest)
  if (command === 'config') return config(rest)
  if (command === 'export' || command === 'import') return transfer(command, rest)
  if (command === 'fingerprint') return printFingerprint(rest)
  if (command === 'help' || command === '--help' || command === '-h') return void process.stdout.write(USAGE)
  if (command === undefined) return fail(`a command is needed\n${USAGE}`)
  fail(`unknown command "${command}"\n${USAGE}`)
}

main(process.argv.slice(2)).catch(error => fail(error instanceof Error ? error.message : String(error)))
