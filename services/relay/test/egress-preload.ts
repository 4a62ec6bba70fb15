// Preloaded by egress.test.ts with NODE_OPTIONS=--import=<this file>: appends one line per outbound
// network attempt (TCP/IPC connect, DNS lookup or resolve, HTTP(S) request, TLS connect, UDP send) to the
// file named by MSR_EGRESS_LOG, in the main thread and in every worker thread. Inert without that variable,
// since `node --test` also runs every file under test/.
import dgram from 'node:dgram'
import dns from 'node:dns'
import { appendFileSync } from 'node:fs'
import http from 'node:http'
import https from 'node:https'
import { syncBuiltinESMExports } from 'node:module'
import net from 'node:net'
import { resolve } from 'node:path'
import tls from 'node:tls'
import { pathToFileURL } from 'node:url'
import workerThreads, { isMainThread, threadId, type WorkerOptions } from 'node:worker_threads'

const FIELDS = ['href', 'protocol', 'host', 'hostname', 'port', 'path'] as const

/** A short, safe rendering of a call's arguments (no functions, no circular structures). */
const show = (value: unknown, depth = 0): string => {
  if (typeof value === 'function') return 'fn'
  if (Array.isArray(value)) return depth > 1 ? '[…]' : `[${value.map(v => show(v, depth + 1)).join(', ')}]`
  if (value instanceof URL) return value.href
  if (typeof value === 'object' && value !== null) {
    const fields = FIELDS.filter(k => k in value).map(k => `${k}=${String((value as Record<string, unknown>)[k])}`)
    return `{${fields.join(' ')}}`
  }
  return String(value)
}

/**
 * Replaces `target[key]` with a function that records the call as `api` (unless `ignore` says it is not
 * network traffic), then does what the original did.
 */
const watch = (log: string, target: object, key: string, api: string, ignore: (args: unknown[]) => boolean = () => false): void => {
  const holder = target as Record<string, unknown>
  const original = holder[key]
  if (typeof original !== 'function') return
  holder[key] = function (this: unknown, ...args: unknown[]) {
    if (!ignore(args)) appendFileSync(log, `${api} ${isMainThread ? 'main' : `worker ${threadId}`} ${args.map(a => show(a)).join(' ')}\n`)
    return (original as (...a: unknown[]) => unknown).apply(this, args)
  }
}

/** `server.listen(port, '127.0.0.1')` "looks up" its address literal: that asks no resolver and is not egress. */
const addressLiteral = (args: unknown[]): boolean => typeof args[0] === 'string' && net.isIP(args[0]) !== 0

/** Worker threads do not run NODE_OPTIONS preloads (Node 20): start each one through this module first. */
const watchWorkers = (): void => {
  const self = import.meta.url
  const Original = workerThreads.Worker
  const boot = (filename: string | URL, options: WorkerOptions = {}): [string | URL, WorkerOptions] => {
    if (options.eval) return [filename, options]
    const target = filename instanceof URL ? filename.href : filename.startsWith('file:') ? filename : pathToFileURL(resolve(filename)).href
    return [`import(${JSON.stringify(self)}).then(() => import(${JSON.stringify(target)}))`, { ...options, eval: true }]
  }
  class WatchedWorker extends Original {
    constructor(filename: string | URL, options?: WorkerOptions) {
      super(...boot(filename, options))
    }
  }
  workerThreads.Worker = WatchedWorker
}

const install = (log: string): void => {
  watch(log, net.Socket.prototype, 'connect', 'net.Socket.connect')
  for (const name of ['lookup', 'resolve', 'resolve4', 'resolve6', 'resolveAny']) {
    watch(log, dns, name, `dns.${name}`, addressLiteral)
    watch(log, dns.promises, name, `dns.promises.${name}`, addressLiteral)
  }
  for (const name of ['request', 'get']) {
    watch(log, http, name, `http.${name}`)
    watch(log, https, name, `https.${name}`)
  }
  watch(log, tls, 'connect', 'tls.connect')
  watch(log, dgram.Socket.prototype, 'send', 'dgram.Socket.send')
  watch(log, dgram.Socket.prototype, 'connect', 'dgram.Socket.connect')
  watchWorkers()
  syncBuiltinESMExports()
}

const log = process.env.MSR_EGRESS_LOG
if (log) {
  install(log)
  const loaded = process.env.MSR_EGRESS_LOADED
  if (loaded) appendFileSync(loaded, `${process.pid} ${isMainThread ? 'main' : `worker ${threadId}`}\n`)
}
