#!/usr/bin/env node
// `npm start`: the whole platform on one machine with embedded defaults: the relay on 8080 (LMDB under
// ./data) and the mailbox API on 8081 (embedded PostgreSQL under ./data/postgres). Each service gets
// its own PORT; SIGINT/SIGTERM are passed on; if one service stops, the other is stopped too. The relay's
// routing hints (445/446) go to the mailbox API over the local transport, with a push token made up
// for this run (both services get it; set RELAY_HINTS__TRANSPORT=none to turn hints off).
import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { fileURLToPath } from 'node:url'

const root = fileURLToPath(new URL('../..', import.meta.url))
const relayPort = process.env.RELAY_PORT ?? '8080'
const mailboxPort = process.env.MAILBOX_PORT ?? '8081'
const pushToken = process.env.HINTS_PUSH_TOKEN ?? process.env.RELAY_HINTS__PUSH_TOKEN ?? randomBytes(24).toString('hex')

const services = [
  {
    name: 'relay',
    cli: 'services/relay/dist/src/cli.js',
    env: {
      PORT: relayPort,
      RELAY_AUTH__ENABLED: process.env.RELAY_AUTH__ENABLED ?? 'true',
      RELAY_NETWORK__PUBLIC_URL: process.env.RELAY_NETWORK__PUBLIC_URL ?? `ws://127.0.0.1:${relayPort}`,
      RELAY_HINTS__TRANSPORT: process.env.RELAY_HINTS__TRANSPORT ?? 'local',
      RELAY_HINTS__PUSH_URL: process.env.RELAY_HINTS__PUSH_URL ?? `http://127.0.0.1:${mailboxPort}/internal/pubsub/push`,
      RELAY_HINTS__PUSH_TOKEN: pushToken,
    },
  },
  {
    name: 'mailbox-api',
    cli: 'services/mailbox-api/dist/src/cli.js',
    env: { PORT: mailboxPort, PUBLIC_URL: process.env.PUBLIC_URL ?? `http://127.0.0.1:${mailboxPort}`, HINTS_PUSH_TOKEN: pushToken },
  },
]

// RELAY_PORT and MAILBOX_PORT are this launcher's own: the relay would read RELAY_PORT as a config key.
const { RELAY_PORT: _relayPort, MAILBOX_PORT: _mailboxPort, ...inherited } = process.env

let stopping = false
let exitCode = 0
const children = services.map(service => {
  const child = spawn(process.execPath, [service.cli, 'serve'], { cwd: root, stdio: 'inherit', env: { ...inherited, ...service.env } })
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
