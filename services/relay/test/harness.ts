// End-to-end harness: an in-process relay on a fresh LMDB directory, a WebSocket test client, signing helpers.
import { spawn, type ChildProcess } from 'node:child_process'
import { rmSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { createServer, type AddressInfo, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { finalizeEvent, generateSecretKey, getPublicKey } from 'nostr-tools/pure'
import WebSocket from 'ws'
import { loadConfig } from '@msr/config'
import type { NostrEvent } from '@msr/nostr'
import { createLogger } from '@msr/telemetry'
import { relayConfigSchema, type RelayConfig } from '../src/config.js'
import { startRelay, type RunningRelay, type StartOptions } from '../src/main.js'

export type { NostrEvent } from '@msr/nostr'

/** How long any single wait lasts before the test fails: generous, since tests never assert on timing. */
export const TIMEOUT_MS = 15_000

/** A relay message as received: a JSON array starting with its verb. */
export type RelayMessage = [string, ...unknown[]]

/** `["OK", id, accepted, message]`. */
export type OkMessage = ['OK', string, boolean, string]

/** One structured log line captured from the in-process relay. */
export type LogRecord = Record<string, unknown> & { message?: string }

/** Unix seconds now. */
export const now = (): number => Math.floor(Date.now() / 1000)

const madeDirs: string[] = []

/** Removes every directory tempDir made in this process (at its exit: test files run in processes of their own). */
const removeMadeDirs = (): void => {
  for (const dir of madeDirs) {
    try {
      rmSync(dir, { recursive: true, force: true })
    } catch {
      // Still held (a child that has not stopped yet): left to the system's temp cleaning.
    }
  }
}

/** A fresh temporary directory, removed when this test process exits. */
export const tempDir = async (prefix = 'msr-relay-test-'): Promise<string> => {
  const dir = await mkdtemp(join(tmpdir(), prefix))
  if (madeDirs.push(dir) === 1) process.once('exit', removeMadeDirs)
  return dir
}

/** Rejects after `ms` with a message saying what was awaited. */
export const withTimeout = <T>(promise: Promise<T>, what: string, ms = TIMEOUT_MS): Promise<T> => {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms)
  })
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer))
}

/** Polls `condition` until it holds; only for state with no event to wait on (NIP-40 expiry). */
export const waitUntil = async (condition: () => boolean | Promise<boolean>, what: string, capMs = TIMEOUT_MS, everyMs = 100): Promise<void> => {
  const end = Date.now() + capMs
  while (!(await condition())) {
    if (Date.now() > end) throw new Error(`gave up after ${capMs} ms waiting for ${what}`)
    await new Promise(resolve => setTimeout(resolve, everyMs))
  }
}

// ---------------------------------------------------------------------------------------------
// The relay

/** A relay started in this process for one test file. */
export interface TestRelay {
  url: string
  port: number
  running: RunningRelay
  config: RelayConfig
  dataDir: string
  /** Log lines written by the relay (empty unless started with a `logLevel`). */
  logs: LogRecord[]
  /** Resolves with the first log line (past or future) matching the predicate. */
  waitForLog(predicate: (record: LogRecord) => boolean, timeoutMs?: number): Promise<LogRecord>
  /** Stops the relay, keeping its data directory (to inspect it or start again on it). */
  stop(): Promise<void>
  /** Stops the relay and removes its data directory. */
  close(): Promise<void>
}

/** Options of `startTestRelay` beyond configuration keys. */
export interface TestRelayOptions {
  /** Reuse this data directory instead of a fresh one (a restart); it is still removed by `close()`. */
  dataDir?: string
  /** Capture relay logs at this level (default: silent). */
  logLevel?: 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal'
  /** The Cloud Storage client for a gs:// `[backup] target` (the fake server's). */
  storage?: StartOptions['storage']
  /** The writer thread's entry module (see StartOptions.writerThread). */
  writerThread?: URL
}

/** The validated configuration a test relay runs with: defaults, then test settings, then `overrides` (dotted keys). */
export const testConfig = (dataDir: string, overrides: Record<string, unknown> = {}): RelayConfig => {
  const loaded = loadConfig({
    schema: relayConfigSchema,
    overrides: {
      'data.path': dataDir,
      'network.port': 0,
      'network.host': '127.0.0.1',
      'verification.workers': 1,
      ...overrides,
    },
  })
  if (!loaded.ok) throw new Error(`invalid test configuration:\n  ${loaded.errors.join('\n  ')}`)
  return loaded.value
}

/** Starts the relay in-process on a fresh LMDB directory and a free loopback port. */
export const startTestRelay = async (overrides: Record<string, unknown> = {}, options: TestRelayOptions = {}): Promise<TestRelay> => {
  const dataDir = options.dataDir ?? (await tempDir())
  const config = testConfig(dataDir, overrides)
  const logs: LogRecord[] = []
  const logWaiters = new Set<{ predicate: (r: LogRecord) => boolean; resolve: (r: LogRecord) => void }>()
  const destination = {
    write: (line: string) => {
      const record = JSON.parse(line) as LogRecord
      logs.push(record)
      for (const waiter of logWaiters) {
        if (!waiter.predicate(record)) continue
        logWaiters.delete(waiter)
        waiter.resolve(record)
      }
    },
  }
  const logger = createLogger({ service: 'relay-test', level: options.logLevel ?? 'fatal', destination })
  const running = await startRelay(config, { logger, ...(options.storage && { storage: options.storage }), ...(options.writerThread && { writerThread: options.writerThread }) })
  let stopped: Promise<void> | undefined
  const stop = () => (stopped ??= running.close())
  return {
    url: running.url,
    port: running.port,
    running,
    config,
    dataDir,
    logs,
    waitForLog: (predicate, timeoutMs = TIMEOUT_MS) => {
      const past = logs.find(predicate)
      if (past) return Promise.resolve(past)
      return withTimeout(new Promise<LogRecord>(resolve => logWaiters.add({ predicate, resolve })), 'a relay log line', timeoutMs)
    },
    stop,
    close: async () => {
      await stop()
      await rm(dataDir, { recursive: true, force: true })
    },
  }
}

// ---------------------------------------------------------------------------------------------
// The client

/** Options of `TestClient.connect`. */
export interface ConnectOptions {
  /** Extra HTTP headers sent with the WebSocket upgrade request. */
  headers?: Record<string, string>
}

/** Options of `TestClient.auth`: by default the connection's challenge, `TEST_PUBLIC_URL` and a kind-22242 event created now. */
export interface AuthOptions {
  /** The challenge tag's value (default: the one the relay sent this connection). */
  challenge?: string
  /** The relay tag's value. */
  relay?: string
  /** Replaces parts of the event (kind, created_at, tags, content), e.g. for failure modes. */
  parts?: EventParts
}

/** The public URL test relays with NIP-42 are configured with (`network.public_url`). */
export const TEST_PUBLIC_URL = 'ws://relay.test'

/** Overrides that turn NIP-42 on, with `TEST_PUBLIC_URL` as the relay's public URL. */
export const AUTH_ON: Readonly<Record<string, unknown>> = { 'auth.enabled': true, 'network.public_url': TEST_PUBLIC_URL }

interface Waiter {
  predicate: (m: RelayMessage) => boolean
  resolve: (m: RelayMessage) => void
  reject: (e: Error) => void
}

let syncCounter = 0

/**
 * A Nostr client over a real WebSocket. Every relay message is kept in arrival order until a
 * `next()` (or `takeAll()`) claims it, so a test never misses a frame that came early.
 */
export class TestClient {
  /** Every message received, in order (for diagnostics). */
  readonly history: RelayMessage[] = []
  /** Resolves when the connection closes, with the close code and reason. */
  readonly closed: Promise<{ code: number; reason: string }>
  private buffer: RelayMessage[] = []
  private readonly waiters = new Set<Waiter>()
  private isClosed = false

  private constructor(readonly ws: WebSocket) {
    ws.on('message', (data, isBinary) => this.receive(data as Buffer, isBinary))
    this.closed = new Promise(resolve => {
      ws.on('close', (code, reason) => {
        this.isClosed = true
        for (const waiter of this.waiters) waiter.reject(new Error(`connection closed (${code}) while waiting; received: ${this.recent()}`))
        this.waiters.clear()
        resolve({ code, reason: reason.toString() })
      })
    })
    ws.on('error', () => undefined) // a close always follows; tests look at the close code
  }

  /** Opens a connection to the relay (optionally with extra HTTP headers on the upgrade, e.g. X-Forwarded-For). */
  static connect(url: string, options: ConnectOptions = {}): Promise<TestClient> {
    const ws = new WebSocket(url, { headers: options.headers ?? {} })
    const client = new TestClient(ws)
    return withTimeout(
      new Promise((resolve, reject) => {
        ws.once('open', () => resolve(client))
        ws.once('error', reject)
      }),
      `a connection to ${url}`,
    )
  }

  /** True once the connection has closed. */
  get isOpen(): boolean {
    return !this.isClosed && this.ws.readyState === WebSocket.OPEN
  }

  private receive(data: Buffer, isBinary: boolean): void {
    let message: RelayMessage
    try {
      const parsed: unknown = JSON.parse(data.toString('utf8'))
      message = Array.isArray(parsed) && typeof parsed[0] === 'string' ? (parsed as RelayMessage) : ['<not a relay message>', parsed]
    } catch {
      message = [isBinary ? '<binary>' : '<not json>', data.toString('utf8')]
    }
    this.history.push(message)
    for (const waiter of this.waiters) {
      if (!waiter.predicate(message)) continue
      this.waiters.delete(waiter)
      return waiter.resolve(message)
    }
    this.buffer.push(message)
  }

  private recent(): string {
    return JSON.stringify(this.history.slice(-5)).slice(0, 1000)
  }

  /** Sends a message as JSON text. */
  send(message: unknown[]): void {
    this.ws.send(JSON.stringify(message))
  }

  /** Sends a raw frame: a string as text, a Buffer as a binary frame. */
  sendRaw(frame: string | Buffer): void {
    this.ws.send(frame, { binary: Buffer.isBuffer(frame) })
  }

  /** The next relay message matching `predicate` (earlier unclaimed messages first). */
  next(predicate: (m: RelayMessage) => boolean = () => true, timeoutMs = TIMEOUT_MS): Promise<RelayMessage> {
    const index = this.buffer.findIndex(predicate)
    if (index >= 0) return Promise.resolve(this.buffer.splice(index, 1)[0] as RelayMessage)
    if (this.isClosed) return Promise.reject(new Error(`connection is closed; received: ${this.recent()}`))
    let waiter: Waiter | undefined
    const pending = new Promise<RelayMessage>((resolve, reject) => {
      waiter = { predicate, resolve, reject }
      this.waiters.add(waiter)
    })
    return withTimeout(pending, 'a relay message', timeoutMs).catch(error => {
      if (waiter) this.waiters.delete(waiter)
      const timedOut = error instanceof Error && error.message.startsWith('timed out')
      throw timedOut ? new Error(`${error.message}; received: ${this.recent()}`) : error
    })
  }

  /** Removes and returns every unclaimed message matching `predicate` received so far. */
  takeAll(predicate: (m: RelayMessage) => boolean = () => true): RelayMessage[] {
    const taken = this.buffer.filter(predicate)
    this.buffer = this.buffer.filter(m => !predicate(m))
    return taken
  }

  /**
   * A round trip: resolves once the relay has answered a message sent now, so every frame the relay
   * wrote to this connection before that has arrived. Uses a throwaway REQ (EOSE, or CLOSED when
   * the subscription limit is reached) and closes it.
   */
  async sync(): Promise<void> {
    const subId = `sync-${++syncCounter}`
    this.send(['REQ', subId, { ids: ['0'.repeat(64)], limit: 0 }])
    const reply = await this.next(m => (m[0] === 'EOSE' || m[0] === 'CLOSED') && m[1] === subId)
    if (reply[0] === 'EOSE') this.send(['CLOSE', subId])
  }

  /** Publishes an event and resolves with the relay's OK for its id. */
  async publish(event: NostrEvent | Record<string, unknown>): Promise<OkMessage> {
    this.send(['EVENT', event])
    return (await this.next(m => m[0] === 'OK' && m[1] === event.id)) as OkMessage
  }

  /** Publishes an event and fails unless the relay accepted it with an empty message. */
  async publishOk(event: NostrEvent): Promise<void> {
    const ok = await this.publish(event)
    if (!(ok[2] === true && ok[3] === '')) throw new Error(`expected ["OK","${event.id}",true,""], got ${JSON.stringify(ok)}`)
  }

  /** The EVENT payloads of `subId` up to its EOSE; fails on CLOSED. */
  async collectUntilEose(subId: string, timeoutMs = TIMEOUT_MS): Promise<NostrEvent[]> {
    const events: NostrEvent[] = []
    for (;;) {
      const m = await this.next(x => (x[0] === 'EVENT' || x[0] === 'EOSE' || x[0] === 'CLOSED') && x[1] === subId, timeoutMs)
      if (m[0] === 'EOSE') return events
      if (m[0] === 'CLOSED') throw new Error(`subscription ${subId} was closed: ${String(m[2])}`)
      events.push(m[2] as NostrEvent)
    }
  }

  /** Sends a REQ and returns the stored events up to EOSE (the subscription stays open). */
  req(subId: string, ...filters: Record<string, unknown>[]): Promise<NostrEvent[]> {
    this.send(['REQ', subId, ...filters])
    return this.collectUntilEose(subId)
  }

  /** Sends a REQ, collects the stored events and closes the subscription. */
  async query(...filters: Record<string, unknown>[]): Promise<NostrEvent[]> {
    const subId = `q-${++syncCounter}`
    const events = await this.req(subId, ...filters)
    this.send(['CLOSE', subId])
    return events
  }

  /** Sends a COUNT and resolves with its answer (COUNT or CLOSED). */
  count(subId: string, ...filters: Record<string, unknown>[]): Promise<RelayMessage> {
    this.send(['COUNT', subId, ...filters])
    return this.next(m => (m[0] === 'COUNT' || m[0] === 'CLOSED') && m[1] === subId)
  }

  /** The next live EVENT for `subId`. */
  async nextEvent(subId: string, timeoutMs = TIMEOUT_MS): Promise<NostrEvent> {
    return (await this.next(m => m[0] === 'EVENT' && m[1] === subId, timeoutMs))[2] as NostrEvent
  }

  /**
   * The connection's NIP-42 challenge: the latest `["AUTH", challenge]` received (waiting for one if
   * none came yet). Claims every buffered AUTH frame, so a later `next(m => m[0] === 'AUTH')` sees
   * only a challenge sent after this call.
   */
  async challenge(timeoutMs = TIMEOUT_MS): Promise<string> {
    this.takeAll(m => m[0] === 'AUTH')
    const latest = [...this.history].reverse().find(m => m[0] === 'AUTH')
    if (latest) return String(latest[1])
    return String((await this.next(m => m[0] === 'AUTH', timeoutMs))[1])
  }

  /** Answers the relay's challenge with a kind-22242 event signed by `signer` (NIP-42); resolves with the OK. */
  async auth(signer: Signer, options: AuthOptions = {}): Promise<OkMessage> {
    const event = authEvent(signer, options.challenge ?? (await this.challenge()), options.relay ?? TEST_PUBLIC_URL, options.parts)
    this.send(['AUTH', event])
    return (await this.next(m => m[0] === 'OK' && m[1] === event.id)) as OkMessage
  }

  /** Authenticates as `signer` and fails unless the relay answered OK true "". */
  async authOk(signer: Signer, options: AuthOptions = {}): Promise<void> {
    const ok = await this.auth(signer, options)
    if (!(ok[2] === true && ok[3] === '')) throw new Error(`expected AUTH to be accepted, got ${JSON.stringify(ok)}`)
  }

  /** Stops reading from the socket: the relay's frames pile up in the kernel, then in the relay. */
  pauseReading(): void {
    this.rawSocket().pause()
  }

  /** Resumes reading from the socket. */
  resumeReading(): void {
    this.rawSocket().resume()
  }

  private rawSocket(): Socket {
    const socket = (this.ws as unknown as { _socket?: Socket })._socket
    if (!socket) throw new Error('the WebSocket has no underlying socket')
    return socket
  }

  /** Resolves with the close code once the connection has closed. */
  waitClosed(timeoutMs = TIMEOUT_MS): Promise<{ code: number; reason: string }> {
    return withTimeout(this.closed, 'the connection to close', timeoutMs)
  }

  /** Closes the connection and waits for it to finish closing. */
  async close(): Promise<void> {
    if (this.isClosed) return
    this.ws.close()
    await withTimeout(this.closed, 'the connection to close').catch(() => this.ws.terminate())
  }
}

// ---------------------------------------------------------------------------------------------
// Signing

/** A keypair to sign test events with. */
export interface Signer {
  secretKey: Uint8Array
  pubkey: string
}

/** A fresh random keypair. */
export const newSigner = (): Signer => {
  const secretKey = generateSecretKey()
  return { secretKey, pubkey: getPublicKey(secretKey) }
}

/** The parts of an event a test chooses; the rest defaults to a kind-1 note created now. */
export interface EventParts {
  kind?: number
  created_at?: number
  tags?: string[][]
  content?: string
}

/** Signs an event (kind 1, now, no tags, empty content unless given). */
export const sign = (signer: Signer, parts: EventParts = {}): NostrEvent => {
  const event = finalizeEvent(
    { kind: parts.kind ?? 1, created_at: parts.created_at ?? now(), tags: parts.tags ?? [], content: parts.content ?? '' },
    signer.secretKey,
  )
  const { id, pubkey, created_at, kind, tags, content, sig } = event
  return { id, pubkey, created_at, kind, tags, content, sig }
}

/** A NIP-42 AUTH event (kind 22242, `relay` and `challenge` tags, created now) signed by `signer`; `parts` replace fields. */
export const authEvent = (signer: Signer, challenge: string, relayUrl: string, parts: EventParts = {}): NostrEvent =>
  sign(signer, {
    kind: 22242,
    tags: [
      ['relay', relayUrl],
      ['challenge', challenge],
    ],
    ...parts,
  })

/**
 * Signs `count` events with the same kind and created_at but different content, sorted by id
 * ascending: for tie-break tests (lowest id wins).
 */
export const signTied = (signer: Signer, count: number, parts: EventParts = {}): NostrEvent[] =>
  Array.from({ length: count }, (_, i) => sign(signer, { ...parts, content: `${parts.content ?? 'tie'} ${i}` })).sort((a, b) =>
    a.id < b.id ? -1 : 1,
  )

/** Ids of events, in order. */
export const ids = (events: readonly Pick<NostrEvent, 'id'>[]): string[] => events.map(e => e.id)

/** A copy of the event with some fields replaced or added, as an untyped object (for malformed input). */
export const tampered = (event: NostrEvent, patch: Record<string, unknown>): Record<string, unknown> => ({ ...event, ...patch })

// ---------------------------------------------------------------------------------------------
// The real CLI, as a child process

/** The compiled CLI entry point. */
export const CLI_PATH = fileURLToPath(new URL('../src/cli.js', import.meta.url))

/** A port that was free a moment ago (for the CLI, whose port 0 would be unknown to the test). */
export const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo
      server.close(() => resolve(port))
    })
  })

/** A relay CLI process. */
export interface CliProcess {
  child: ChildProcess
  stdout: string[]
  stderr: string[]
  /** Resolves with the exit code (or signal) when the process ends. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
  /** Resolves with the first JSON log line on stdout matching the predicate. */
  waitForLog(predicate: (record: LogRecord) => boolean, timeoutMs?: number): Promise<LogRecord>
}

/** The environment without any relay settings inherited from the shell running the tests. */
const cleanEnv = (): Record<string, string> => {
  const env: Record<string, string> = {}
  for (const [key, value] of Object.entries(process.env)) if (value !== undefined && !key.startsWith('RELAY_') && key !== 'PORT') env[key] = value
  return env
}

/** Runs `msr-relay <args>` with `env` added to a clean environment, in `cwd` (`nodeArgs`: node's own options). */
export const runCli = (args: string[], env: Record<string, string>, cwd: string, nodeArgs: string[] = []): CliProcess => {
  const child = spawn(process.execPath, [...nodeArgs, CLI_PATH, ...args], { cwd, env: { ...cleanEnv(), ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
  const stdout: string[] = []
  const stderr: string[] = []
  const waiters = new Set<{ predicate: (r: LogRecord) => boolean; resolve: (r: LogRecord) => void }>()
  const parse = (line: string): LogRecord | undefined => {
    try {
      return JSON.parse(line) as LogRecord
    } catch {
      return undefined
    }
  }
  createInterface({ input: child.stdout as NodeJS.ReadableStream }).on('line', line => {
    stdout.push(line)
    const record = parse(line)
    if (!record) return
    for (const w of waiters) {
      if (!w.predicate(record)) continue
      waiters.delete(w)
      w.resolve(record)
    }
  })
  createInterface({ input: child.stderr as NodeJS.ReadableStream }).on('line', line => stderr.push(line))
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>(resolve =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  )
  return {
    child,
    stdout,
    stderr,
    exited,
    waitForLog: (predicate, timeoutMs = TIMEOUT_MS) => {
      const past = stdout.map(parse).find(r => r !== undefined && predicate(r))
      if (past) return Promise.resolve(past)
      const found = new Promise<LogRecord>((resolve, reject) => {
        waiters.add({ predicate, resolve })
        void exited.then(({ code }) => reject(new Error(`relay exited (${code}) first; stderr: ${stderr.join('\n')}`)))
      })
      return withTimeout(found, 'a relay log line', timeoutMs)
    },
  }
}

/**
 * How long `serveCli` waits for 'relay listening': a relay restoring a large snapshot at boot (a replacement
 * replica in the replication soak, 40,000+ events by cycle 60, on a loaded machine) listens only after it.
 * A relay that fails to start exits, which ends the wait at once.
 */
const LISTEN_TIMEOUT_MS = 90_000

/** Starts `msr-relay serve` on `port` and waits until it listens; a process that does not come up is killed. */
export const serveCli = async (port: number, env: Record<string, string>, cwd: string, args: string[] = [], nodeArgs: string[] = []): Promise<CliProcess> => {
  const cli = runCli(['serve', ...args], { PORT: String(port), RELAY_VERIFICATION__WORKERS: '1', RELAY_LOG__LEVEL: 'info', ...env }, cwd, nodeArgs)
  try {
    await cli.waitForLog(r => r.message === 'relay listening', LISTEN_TIMEOUT_MS)
  } catch (error) {
    if (cli.child.exitCode === null && cli.child.signalCode === null) cli.child.kill('SIGKILL')
    throw error
  }
  return cli
}

/** Sends SIGTERM (if still running) and waits for the exit. */
export const stopCli = async (cli: CliProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> => {
  if (cli.child.exitCode === null && cli.child.signalCode === null) cli.child.kill('SIGTERM')
  return withTimeout(cli.exited, 'the relay process to exit')
}
