// Test harness of the mailbox API: one real PostgreSQL per test file, apps built on it, NIP-98 signing.
import { createHash, randomBytes } from 'node:crypto'
import { chmod, mkdtemp, rm } from 'node:fs/promises'
import { createServer, type AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Express } from 'express'
import { finalizeEvent, generateSecretKey, getPublicKey } from 'nostr-tools/pure'
import { npubEncode } from 'nostr-tools/nip19'
import pg from 'pg'
import request from 'supertest'
import { computeId, loadVerifier, type NostrEvent, type SignatureVerifier } from '@msr/nostr'
import { createLogger } from '@msr/telemetry'
import { buildApp } from '../src/app.js'
import { inlineSignatures, type SignatureCheck } from '../src/auth/signatures.js'
import type { CertsSource } from '../src/auth/push.js'
import { loadMailboxConfig, type MailboxConfig } from '../src/config.js'
import { openDatabase } from '../src/db/database.js'
import { migrate } from '../src/db/migrate.js'
import { createMailboxMetrics, type MailboxMetrics } from '../src/metrics.js'

/** The external base URL every test app is configured with; NIP-98 `u` tags are built from it. */
export const PUBLIC_URL = 'https://mailbox.test'

/** Unix seconds now. */
export const now = (): number => Math.floor(Date.now() / 1000)

/** Resolves after `ms`. */
export const sleep = (ms: number): Promise<void> => new Promise(resolve => setTimeout(resolve, ms))

/** A free loopback port (the kernel picks it; a tiny race with other processes remains). */
export const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo
      server.close(() => resolve(port))
    })
  })

/**
 * A temporary directory the `postgres` user can enter: as root, embedded PostgreSQL runs as that user,
 * and mkdtemp's 0700 would lock it out of its own data directory.
 */
export const tempDir = async (prefix = 'msr-mailbox-test-'): Promise<string> => {
  const dir = await mkdtemp(join(tmpdir(), prefix))
  await chmod(dir, 0o755)
  return dir
}

/** Standard padded base64 of `n` random bytes (an opaque artifact). */
export const b64 = (n: number): string => randomBytes(n).toString('base64')

/** Addresses handed out so far in each 198.<block>.0.0/16 (a test file's process has a database of its own). */
const handedOut = new Map<number, number>()

/**
 * A benchmarking-range address (198.18.0.0/15) no other test of this file was given, so each test has IP
 * budgets of its own. Counted, not random: two random addresses of a /16 met about once in two hundred
 * runs of gate.test.ts, and the shared rate-limit row then counted both tests' requests.
 */
export const freshIp = (block = 18): string => {
  const n = (handedOut.get(block) ?? 0) + 1
  if (n > 0xffff) throw new Error(`freshIp: 198.${block}.0.0/16 is used up`)
  handedOut.set(block, n)
  return `198.${block}.${n >> 8}.${n & 255}`
}

// ---------------------------------------------------------------------------------------------
// PostgreSQL

/** The PostgreSQL of one test file. */
export interface TestPostgres {
  /** A pool on the file's database (migrated unless started with `migrate: false`). */
  pool: pg.Pool
  /** Connection string of the file's database. */
  url: string
  /** Where it runs, for test names and failure messages. */
  describe: string
  /** Another pool on the file's database, as a second instance would have; ended by `close()`. */
  connect(max?: number): pg.Pool
  /** A new empty database on the same server (for migration and readiness tests); dropped by `close()`. */
  freshDatabase(): Promise<{ url: string; pool: pg.Pool; connect(max?: number): pg.Pool }>
  /** Ends every pool, drops the databases this file created and stops an embedded server. */
  close(): Promise<void>
}

const silent = () => createLogger({ service: 'mailbox-test', level: 'fatal' })

const uniqueName = (): string => `msr_mailbox_test_${process.pid}_${randomBytes(4).toString('hex')}`

const withDatabase = (url: string, database: string): string => {
  const u = new URL(url)
  u.pathname = `/${database}`
  return u.toString()
}

/** A server to create databases on, and how to let it go. */
interface Server {
  url: string
  admin: pg.Pool
  describe: string
  stop(): Promise<void>
}

/** DATABASE_URL's server; the file gets a database of its own on it. */
const externalServer = async (url: string): Promise<Server> => {
  const admin = new pg.Pool({ connectionString: url, max: 2 })
  return { url, admin, describe: 'DATABASE_URL', stop: () => admin.end() }
}

/** A fresh embedded PostgreSQL in a temporary directory, on a free port (retried if the port was taken). */
const embeddedServer = async (): Promise<Server> => {
  const dir = await tempDir()
  for (let attempt = 1; ; attempt++) {
    const port = await freePort()
    try {
      const database = await openDatabase({ dataDir: join(dir, `pg-${attempt}`), port, poolSize: 4, logger: silent() })
      const { user, password, host } = database.pool.options
      const url = `postgres://${encodeURIComponent(String(user))}:${encodeURIComponent(String(password))}@${host}:${port}/postgres`
      return {
        url,
        admin: database.pool,
        describe: `embedded PostgreSQL on port ${port}`,
        stop: async () => {
          await database.close()
          await rm(dir, { recursive: true, force: true })
        },
      }
    } catch (error) {
      if (attempt >= 3) {
        await rm(dir, { recursive: true, force: true })
        throw error
      }
    }
  }
}

/**
 * One real PostgreSQL for a test file: a fresh database on DATABASE_URL's server when it is set, else an
 * embedded server of its own. The file's database is migrated unless `migrate: false`.
 */
export const startPostgres = async (opts: { migrate?: boolean } = {}): Promise<TestPostgres> => {
  const server = process.env.DATABASE_URL ? await externalServer(process.env.DATABASE_URL) : await embeddedServer()
  const pools: pg.Pool[] = []
  const created: string[] = []
  const createDatabase = async () => {
    const name = uniqueName()
    await server.admin.query(`CREATE DATABASE ${name}`)
    created.push(name)
    const url = withDatabase(server.url, name)
    const connect = (max = 10) => {
      const pool = new pg.Pool({ connectionString: url, max })
      pool.on('error', () => undefined)
      pools.push(pool)
      return pool
    }
    return { url, pool: connect(), connect }
  }
  const close = async () => {
    try {
      await Promise.all(pools.map(p => p.end().catch(() => undefined)))
      for (const name of created) await server.admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)
    } finally {
      await server.stop()
    }
  }
  try {
    const main = await createDatabase()
    if (opts.migrate !== false) await migrate(main.pool)
    return { pool: main.pool, url: main.url, describe: server.describe, connect: main.connect, freshDatabase: createDatabase, close }
  } catch (error) {
    // Without this, a running embedded server would keep the test process alive after the failure.
    await close().catch(() => undefined)
    throw new Error(`could not prepare the test database on ${server.describe}`, { cause: error })
  }
}

// ---------------------------------------------------------------------------------------------
// Apps

/** One structured log line the app wrote. */
export type LogRecord = Record<string, unknown> & { message?: string }

/** An app built in-process on a test database. */
export interface TestApp {
  app: Express
  config: MailboxConfig
  metrics: MailboxMetrics
  /** Raw log lines (captured at `logLevel`, default: fatal only). */
  logs: string[]
  /** NIP-98-signing request helpers on this app. */
  api: Api
}

/** The configuration of a test app: PUBLIC_URL, then `env` (environment variable names and values). */
export const testConfig = (env: Record<string, string> = {}): MailboxConfig => {
  const loaded = loadMailboxConfig({ PUBLIC_URL, ...env })
  if (!loaded.ok) throw new Error(`invalid test configuration:\n  ${loaded.errors.join('\n  ')}`)
  return loaded.value
}

let verifier: Promise<SignatureVerifier> | undefined

/** Builds the express app on `pool` with `env` configuration, as main.ts would (but not listening). */
export const buildTestApp = async (
  pool: pg.Pool,
  env: Record<string, string> = {},
  opts: { logLevel?: string; pushCerts?: CertsSource; signatures?: SignatureCheck } = {},
): Promise<TestApp> => {
  const config = testConfig(env)
  const logs: string[] = []
  const logger = createLogger({ service: 'mailbox-test', level: opts.logLevel ?? 'fatal', destination: { write: (line: string) => void logs.push(line) } })
  const metrics = createMailboxMetrics({ defaultMetrics: false })
  const app = buildApp({ config, pool, signatures: opts.signatures ?? inlineSignatures(await (verifier ??= loadVerifier())), metrics, logger, ...(opts.pushCerts && { pushCerts: opts.pushCerts }) })
  return { app, config, metrics, logs, api: apiClient(app, config.publicUrl) }
}

// ---------------------------------------------------------------------------------------------
// NIP-98

/** A Nostr identity. */
export interface Signer {
  secretKey: Uint8Array
  /** Lowercase hex. */
  pubkey: string
  npub: string
}

/** A fresh random identity. */
export const newSigner = (): Signer => {
  const secretKey = generateSecretKey()
  const pubkey = getPublicKey(secretKey)
  return { secretKey, pubkey, npub: npubEncode(pubkey) }
}

/** sha256 hex of the exact body bytes (the NIP-98 `payload` tag). */
export const sha256Hex = (body: string | Buffer): string => createHash('sha256').update(body).digest('hex')

/** Ways to make a NIP-98 event wrong; each replaces what the honest event would carry. */
export interface Tamper {
  kind?: number
  created_at?: number
  u?: string
  method?: string
  /** A payload tag value; `null` leaves the tag out even when there is a body. */
  payload?: string | null
  content?: string
  /** Edits the signed event (breaking its id or signature unless the edit restores them). */
  afterSigning?: (event: NostrEvent) => void
  /** Encodes the event JSON into the header value (default: standard base64). */
  encode?: (json: string) => string
}

/** A signed kind-27235 event for `method url` with `body` (payload tag = sha256 of its UTF-8 bytes). */
export const authEvent = (secretKey: Uint8Array, method: string, url: string, body?: string, tamper: Tamper = {}): NostrEvent => {
  const tags = [
    ['u', tamper.u ?? url],
    ['method', tamper.method ?? method],
  ]
  const payload = tamper.payload === undefined ? (body === undefined ? undefined : sha256Hex(Buffer.from(body, 'utf8'))) : tamper.payload
  if (payload !== null && payload !== undefined) tags.push(['payload', payload])
  const event = { ...finalizeEvent({ kind: tamper.kind ?? 27235, created_at: tamper.created_at ?? now(), tags, content: tamper.content ?? '' }, secretKey) }
  tamper.afterSigning?.(event)
  return event
}

/** The Authorization header value carrying `event`. */
export const encodeAuth = (event: NostrEvent, encode: (json: string) => string = json => Buffer.from(json, 'utf8').toString('base64')): string =>
  `Nostr ${encode(JSON.stringify(event))}`

/** `Nostr <base64 kind-27235 event>` for `method url` with `body`, optionally tampered with. */
export const authHeader = (secretKey: Uint8Array, method: string, url: string, body?: string, tamper: Tamper = {}): string =>
  encodeAuth(authEvent(secretKey, method, url, body, tamper), tamper.encode)

/** Recomputes an edited event's id (its signature stays that of the old id). */
export const rehash = (event: NostrEvent): void => {
  event.id = computeId(event)
}

// ---------------------------------------------------------------------------------------------
// Requests

/** A query string from defined values (`?a=1&b=2`), or '' when there are none. */
export const qs = (params: Record<string, string | number | undefined>): string => {
  const entries = Object.entries(params).filter((e): e is [string, string | number] => e[1] !== undefined)
  return entries.length === 0 ? '' : `?${new URLSearchParams(entries.map(([k, v]): [string, string] => [k, String(v)])).toString()}`
}

/** Requests on /api/v1 signed with NIP-98 for the app's PUBLIC_URL (unsigned when `signer` is undefined). */
export interface Api {
  /** POST `path` (under /api/v1) with `body` sent as exactly the JSON text that was hashed. */
  post(path: string, signer: Signer | undefined, body?: unknown, tamper?: Tamper): request.Test
  /** GET `path` (under /api/v1, query included). */
  get(path: string, signer: Signer | undefined, tamper?: Tamper): request.Test
  /** The absolute URL a client signs for `path` (under /api/v1). */
  url(path: string): string
}

/** Request helpers on `app`; a string body is sent verbatim, anything else as its JSON text. */
export const apiClient = (app: Express, publicUrl: string = PUBLIC_URL): Api => {
  const url = (path: string) => `${publicUrl}/api/v1${path}`
  return {
    url,
    post: (path, signer, body, tamper) => {
      const text = body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body)
      const req = request(app).post(`/api/v1${path}`)
      if (signer) void req.set('Authorization', authHeader(signer.secretKey, 'POST', url(path), text, tamper))
      if (text === undefined) return req
      return req.set('Content-Type', 'application/json').send(text)
    },
    get: (path, signer, tamper) => {
      const req = request(app).get(`/api/v1${path}`)
      return signer ? req.set('Authorization', authHeader(signer.secretKey, 'GET', url(path), undefined, tamper)) : req
    },
  }
}

/** The API error of a response body, asserting its shape `{ error: { code, message } }`. */
export const apiError = (body: unknown): { code: string; message: string } => {
  const error = (body as { error?: { code?: unknown; message?: unknown } } | undefined)?.error
  if (typeof error?.code !== 'string' || typeof error.message !== 'string' || error.message.length === 0)
    throw new Error(`not an API error body: ${JSON.stringify(body)}`)
  return { code: error.code, message: error.message }
}

/** Asserts a response is the API error `status` / `code` (with the body in the failure message). */
export const expectError = (res: { status: number; body: unknown; headers: Record<string, string> }, status: number, code: string): { code: string; message: string } => {
  if (res.status !== status) throw new Error(`expected ${status} ${code}, got ${res.status}: ${JSON.stringify(res.body)}`)
  if (!/^application\/json/.test(res.headers['content-type'] ?? '')) throw new Error(`expected a JSON error, got content-type ${res.headers['content-type']}`)
  const error = apiError(res.body)
  if (error.code !== code) throw new Error(`expected code ${code}, got ${error.code}: ${error.message}`)
  return error
}

/** Asserts a response has `status` (with the body in the failure message). */
export const expectStatus = (res: { status: number; body: unknown; text?: string }, status: number): void => {
  if (res.status !== status) throw new Error(`expected ${status}, got ${res.status}: ${res.text ?? JSON.stringify(res.body)}`)
}
