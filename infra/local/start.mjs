#!/usr/bin/env node
// `npm start`: the whole platform on one machine with embedded defaults: the relay on 8080 (LMDB under
// ./data) and the mailbox API on 8081 (embedded PostgreSQL under ./data/postgres). Each service gets
// its own PORT; SIGINT/SIGTERM are passed on; if one service stops, the other is stopped too. The relay's
// routing hints (445/446) go to the mailbox API over the local transport, with a push token made up
// for this run (both services get it; set RELAY_HINTS__TRANSPORT=none to turn hints off). Metrics are
// on for both, with a key kept in <relay data>/metrics.key (made on first use, readable by you only).
// Browsers may call the mailbox API from any origin (CORS_ORIGINS=*), as a local web client needs.
// Once both answer /readyz, one banner says what runs where.
//
// Its own variables: RELAY_PORT (default 8080, or PORT), MAILBOX_PORT (default 8081). PORT, which each
// service reads alone, is taken as the relay's port: the platform's front door.
import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join, relative, resolve } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'

const root = fileURLToPath(new URL('../..', import.meta.url))

const fail = message => {
  process.stderr.write(`start: ${message}\n`)
  process.exit(2)
}

/** A port variable's value, checked: an integer from 1 to 65535. */
const portFrom = (name, fallback) => {
  const raw = process.env[name]
  if (raw === undefined || raw === '') return fallback
  if (!/^\d{1,5}$/.test(raw) || Number(raw) < 1 || Number(raw) > 65535) fail(`${name} must be a port number from 1 to 65535, not ${JSON.stringify(raw)}`)
  return Number(raw)
}

const relayPort = portFrom('RELAY_PORT', portFrom('PORT', 8080))
const mailboxPort = portFrom('MAILBOX_PORT', 8081)
if (relayPort === mailboxPort) fail(`the relay and the mailbox API cannot share port ${relayPort}: set RELAY_PORT and MAILBOX_PORT apart`)
const portNote =
  process.env.PORT && !process.env.RELAY_PORT ? `PORT=${process.env.PORT} is the relay's port (npm start runs two services: MAILBOX_PORT sets the other)` : undefined

/** The metrics key of local runs: kept beside the relay's data, readable by this user only. */
const metricsKey = () => {
  const dir = resolve(root, process.env.RELAY_DATA__PATH ?? 'data')
  const file = join(dir, 'metrics.key')
  if (!existsSync(file)) {
    mkdirSync(dir, { recursive: true })
    writeFileSync(file, `${randomBytes(24).toString('hex')}\n`, { mode: 0o600 })
  }
  return { key: readFileSync(file, 'utf8').trim(), file }
}

const pushToken = process.env.HINTS_PUSH_TOKEN ?? process.env.RELAY_HINTS__PUSH_TOKEN ?? randomBytes(24).toString('hex')
const metrics = metricsKey()
const relayUrl = process.env.RELAY_NETWORK__PUBLIC_URL ?? `ws://127.0.0.1:${relayPort}`
const publicUrl = process.env.PUBLIC_URL ?? `http://127.0.0.1:${mailboxPort}`

const services = [
  {
    name: 'relay',
    cli: 'services/relay/dist/src/cli.js',
    serviceName: 'msr-relay',
    ready: `http://127.0.0.1:${relayPort}/readyz`,
    env: {
      PORT: String(relayPort),
      // The relay passes its spans explicitly: a synchronous context spares its EVENT path the promise hooks (docs/tracing.md).
      MSR_TRACE_CONTEXT: process.env.MSR_TRACE_CONTEXT ?? 'sync',
      RELAY_AUTH__ENABLED: process.env.RELAY_AUTH__ENABLED ?? 'true',
      RELAY_NETWORK__PUBLIC_URL: relayUrl,
      RELAY_HINTS__TRANSPORT: process.env.RELAY_HINTS__TRANSPORT ?? 'local',
      RELAY_HINTS__PUSH_URL: process.env.RELAY_HINTS__PUSH_URL ?? `http://127.0.0.1:${mailboxPort}/internal/pubsub/push`,
      RELAY_HINTS__PUSH_TOKEN: pushToken,
      RELAY_METRICS__ENABLED: process.env.RELAY_METRICS__ENABLED ?? 'true',
      RELAY_METRICS__AUTH: process.env.RELAY_METRICS__AUTH ?? metrics.key,
    },
  },
  {
    name: 'mailbox-api',
    cli: 'services/mailbox-api/dist/src/cli.js',
    serviceName: 'msr-mailbox',
    ready: `http://127.0.0.1:${mailboxPort}/readyz`,
    env: {
      PORT: String(mailboxPort),
      PUBLIC_URL: publicUrl,
      HINTS_PUSH_TOKEN: pushToken,
      METRICS_AUTH: process.env.METRICS_AUTH ?? metrics.key,
      CORS_ORIGINS: process.env.CORS_ORIGINS ?? '*',
    },
  },
]

// RELAY_PORT, MAILBOX_PORT and PORT are this launcher's own here: the relay would read RELAY_PORT as a config key.
const { RELAY_PORT: _relayPort, MAILBOX_PORT: _mailboxPort, PORT: _port, ...inherited } = process.env

let stopping = false
let exitCode = 0
const children = services.map(service => {
  // The register module starts OpenTelemetry first when OTEL_TRACES_EXPORTER asks for it (and loads nothing otherwise).
  const env = { ...inherited, MSR_DEFAULT_SERVICE_NAME: service.serviceName, ...service.env }
  const child = spawn(process.execPath, ['--import', '@msr/telemetry/register', service.cli, 'serve'], { cwd: root, stdio: 'inherit', env })
  child.on('exit', (code, signal) => {
    if (!stopping) {
      process.stderr.write(`start: ${service.name} stopped (${signal ?? code}); stopping the others\n`)
      exitCode = code || 1
      stop('SIGTERM')
    }
    if (children.every(c => c.exitCode !== null || c.signalCode !== null)) process.exit(exitCode)
  })
  return child
})

function stop(signal) {
  stopping = true
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill(signal)
}

process.on('SIGINT', () => stop('SIGINT'))
process.on('SIGTERM', () => stop('SIGTERM'))

/** Resolves once `url` answers 200 (or the launcher is stopping). */
const ready = async url => {
  while (!stopping) {
    const status = await fetch(url).then(
      res => res.status,
      () => 0,
    )
    if (status === 200) return
    await sleep(200)
  }
}

/** Where spans go, as the banner says it (the services read the OTEL_* variables themselves). */
const tracesLine = () => {
  const exporter = process.env.OTEL_TRACES_EXPORTER?.trim()
  if (!exporter || exporter === 'none') return 'off (OTEL_TRACES_EXPORTER=otlp or console turns them on: docs/tracing.md)'
  const endpoint = process.env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT ?? process.env.OTEL_EXPORTER_OTLP_ENDPOINT
  return `OTEL_TRACES_EXPORTER=${exporter}${exporter.includes('otlp') ? ` to ${endpoint ?? 'http://localhost:4318 (the SDK default)'}` : ''}`
}

await Promise.all(services.map(service => ready(service.ready)))
if (!stopping) {
  const relayHttp = `http://127.0.0.1:${relayPort}`
  const keyFile = relative(process.cwd(), metrics.file) || metrics.file
  const bearer = `-H "Authorization: Bearer $(cat ${keyFile})"`
  const lines = [
    '',
    'mls-secure-relay is ready (npm start: local defaults; Ctrl-C stops both services)',
    `  relay (WebSocket)  ${relayUrl}   NIP-42 AUTH: the relay tag must be this URL`,
    `  relay info NIP-11  curl -H 'Accept: application/nostr+json' ${relayHttp}/`,
    `  mailbox API        ${publicUrl}/api/v1   NIP-98: u = this base URL + path and query`,
    `  OpenAPI            ${publicUrl}/api/v1/openapi.json`,
    `  health             ${relayHttp}/readyz   ${publicUrl}/readyz`,
    `  metrics            curl ${bearer} ${relayHttp}/metrics`,
    `                     curl ${bearer} ${publicUrl}/metrics`,
    `  traces             ${tracesLine()}`,
    ...(portNote ? [`  note               ${portNote}`] : []),
    '',
  ]
  process.stdout.write(lines.join('\n') + '\n')
}
