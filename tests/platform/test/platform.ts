// Helpers of the platform tests: the services' CLIs as child processes on free loopback ports and
// temporary data directories, a WebSocket Nostr client, and NIP-98 requests to the mailbox API.
import { spawn, type ChildProcess } from 'node:child_process'
import { chmod, mkdtemp, rm } from 'node:fs/promises'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { finalizeEvent, generateSecretKey, getPublicKey, type NostrEvent } from 'nostr-tools/pure'
import WebSocket from 'ws'
import { after, before } from 'node:test'
import { findEmulator, startEmulator, type RunningEmulator } from '@msr/hints/emulator'

export const ROOT = fileURLToPath(new URL('../../../../', import.meta.url))
export const RELAY_CLI = join(ROOT, 'services/relay/dist/src/cli.js')
export const MAILBOX_CLI = join(ROOT, 'services/mailbox-api/dist/src/cli.js')
export const START = join(ROOT, 'infra/local/start.mjs')
export const TIMEOUT_MS = 30_000

export const now = (): number => Math.floor(Date.now() / 1000)
export const sleep = (ms: number): Promise<void> => new Promise(resolve => setTimeout(resolve, ms))
/** A temporary directory the `postgres` user can enter (as root, the embedded PostgreSQL runs as that user). */
export const tempDir = async (): Promise<string> => {
  const dir = await mkdtemp(join(tmpdir(), 'msr-platform-'))
  await chmod(dir, 0o755)
  return dir
}
export const removeDir = (dir: string): Promise<void> => rm(dir, { recursive: true, force: true })

export const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number }
      server.close(() => resolve(port))
    })
  })

/** Polls `probe` until it returns a value (not undefined), or fails naming `what` with the last error. */
export const eventually = async <T>(probe: () => Promise<T | undefined>, what: string, timeoutMs = TIMEOUT_MS): Promise<T> => {
  const deadline = Date.now() + timeoutMs
  let last: unknown
  for (;;) {
    try {
      const value = await probe()
      if (value !== undefined) return value
    } catch (error) {
      last = error
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`)
    await sleep(100)
  }
}

/** One sample of a Prometheus text page, e.g. `msr_relay_hint_outbox_depth` (0 when absent). */
export const sample = (text: string, name: string): number => {
  const line = text.split('\n').find(l => l.startsWith(`${name} `))
  return line ? Number(line.slice(name.length + 1)) : 0
}

/** A service process; its output is kept for the failure message. */
export interface Service {
  child: ChildProcess
  output: string[]
  exited: Promise<{ code: number | null; signal: string | null }>
  /** SIGTERM (SIGKILL after 15 s) and wait for the exit. */
  stop(signal?: NodeJS.Signals): Promise<{ code: number | null; signal: string | null }>
}

/** The environment without settings inherited from the shell running the tests. */
const cleanEnv = (): Record<string, string> =>
  Object.fromEntries(
    Object.entries(process.env).filter(
      (e): e is [string, string] =>
        e[1] !== undefined && !/^(RELAY_|HINTS_|MAILBOX_|PORT$|PUBLIC_URL$|DATABASE_URL$|PUBSUB_EMULATOR_HOST$|GOOGLE_CLOUD_PROJECT$)/.test(e[0]),
    ),
  )

/** Starts `node <script> <args>` with `env` over a clean environment. */
export const spawnService = (script: string, args: string[], env: Record<string, string>): Service => {
  const child = spawn(process.execPath, [script, ...args], { cwd: ROOT, env: { ...cleanEnv(), ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
  const output: string[] = []
  for (const stream of [child.stdout, child.stderr]) createInterface({ input: stream as NodeJS.ReadableStream }).on('line', line => output.push(line))
  const exited = new Promise<{ code: number | null; signal: string | null }>(resolve => child.once('exit', (code, signal) => resolve({ code, signal })))
  return {
    child,
    output,
    exited,
    stop: async (signal = 'SIGTERM') => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal)
      const timer = setTimeout(() => child.kill('SIGKILL'), 15_000)
      try {
        return await exited
      } finally {
        clearTimeout(timer)
      }
    },
  }
}

/** Waits until GET `url` answers 200, failing early when the service exits. */
export const waitReady = async (service: Service, url: string, what: string): Promise<void> => {
  await eventually(async () => {
    if (service.child.exitCode !== null) throw new Error(`${what} exited ${service.child.exitCode}:\n${service.output.slice(-20).join('\n')}`)
    const res = await fetch(url).catch(() => undefined)
    return res?.status === 200 ? true : undefined
  }, `${what} to be ready (${url})`, 60_000)
}

// ---------------------------------------------------------------------------------------------
// Nostr

export interface Signer {
  secretKey: Uint8Array
  pubkey: string
}

export const newSigner = (): Signer => {
  const secretKey = generateSecretKey()
  return { secretKey, pubkey: getPublicKey(secretKey) }
}

export const sign = (signer: Signer, kind: number, tags: string[][], content = ''): NostrEvent =>
  finalizeEvent({ kind, created_at: now(), tags, content }, signer.secretKey)

/** A WebSocket client of the relay that keeps every message it received. */
export class RelayClient {
  private readonly messages: unknown[][] = []
  private readonly waiters = new Set<() => void>()

  private constructor(private readonly ws: WebSocket) {
    ws.on('message', data => {
      this.messages.push(JSON.parse(String(data)) as unknown[])
      for (const wake of this.waiters) wake()
    })
    ws.on('error', () => undefined)
  }

  /** `headers` go on the upgrade request (e.g. X-Forwarded-For, to appear as another client address). */
  static async connect(url: string, headers?: Record<string, string>): Promise<RelayClient> {
    const ws = new WebSocket(url, headers ? { headers } : undefined)
    // Listening before 'open': the AUTH challenge can arrive in the same read as the upgrade answer.
    const client = new RelayClient(ws)
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve())
      ws.once('error', reject)
    })
    return client
  }

  /** The first message (received or to come) matching `predicate`, removed from the buffer. */
  async next(predicate: (m: unknown[]) => boolean, what: string): Promise<unknown[]> {
    const deadline = Date.now() + TIMEOUT_MS
    for (;;) {
      const i = this.messages.findIndex(predicate)
      if (i >= 0) return this.messages.splice(i, 1)[0] as unknown[]
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; got ${JSON.stringify(this.messages).slice(0, 500)}`)
      await new Promise<void>(resolve => {
        const wake = () => (this.waiters.delete(wake), resolve())
        this.waiters.add(wake)
        setTimeout(wake, 200)
      })
    }
  }

  send(message: unknown[]): void {
    this.ws.send(JSON.stringify(message))
  }

  /** NIP-42: answers the connection's challenge as `signer`. */
  async auth(signer: Signer, relayUrl: string): Promise<void> {
    const [, challenge] = (await this.next(m => m[0] === 'AUTH', 'the AUTH challenge')) as [string, string]
    const event = sign(signer, 22242, [['relay', relayUrl], ['challenge', challenge]])
    this.send(['AUTH', event])
    const ok = await this.next(m => m[0] === 'OK' && m[1] === event.id, 'the AUTH answer')
    if (ok[2] !== true) throw new Error(`AUTH refused: ${String(ok[3])}`)
  }

  /** Publishes and returns the OK message. */
  async publish(event: NostrEvent): Promise<unknown[]> {
    this.send(['EVENT', event])
    return this.next(m => m[0] === 'OK' && m[1] === event.id, `OK for ${event.id}`)
  }

  /** REQ until EOSE: the stored events matching `filter`. */
  async query(filter: Record<string, unknown>): Promise<NostrEvent[]> {
    const subId = `q${Math.random().toString(36).slice(2, 8)}`
    this.send(['REQ', subId, filter])
    const events: NostrEvent[] = []
    for (;;) {
      const m = await this.next(x => (x[0] === 'EVENT' || x[0] === 'EOSE' || x[0] === 'CLOSED') && x[1] === subId, `the answer to ${subId}`)
      if (m[0] === 'EVENT') events.push(m[2] as NostrEvent)
      else if (m[0] === 'CLOSED') throw new Error(`REQ closed: ${String(m[2])}`)
      else break
    }
    this.send(['CLOSE', subId])
    return events
  }

  close(): void {
    this.ws.close()
  }
}

// ---------------------------------------------------------------------------------------------
// Pub/Sub emulator

/**
 * The Pub/Sub emulator for the describe block this is called in (started before, stopped after), when the
 * machine has one: `current()` is undefined otherwise, and `missing` says why.
 */
export const useEmulator = (projectId: string): { current: () => RunningEmulator | undefined; missing: string } => {
  const found = findEmulator()
  let emulator: RunningEmulator | undefined
  before(async () => {
    if ('path' in found) emulator = await startEmulator({ projectId })
  })
  after(async () => {
    await emulator?.stop()
  })
  return { current: () => emulator, missing: 'missing' in found ? found.missing : '' }
}

/** The hint topics and the mailbox's subscriptions to them, as infra/terraform makes them (group ones ordered). */
export const createHintBus = async (emulator: RunningEmulator): Promise<void> => {
  await emulator.createTopic('mls-group-hints')
  await emulator.createTopic('noise-dm-hints')
  await emulator.createSubscription('mls-group-hints', 'mailbox-group-hints', { enableMessageOrdering: true })
  await emulator.createSubscription('noise-dm-hints', 'mailbox-dm-hints')
}
