// The mailbox API under test: the compiled CLI as a child process on a fresh temp dir, with the embedded
// PostgreSQL it starts itself on a free loopback port, and a free HTTP port.
import { spawn, type ChildProcess } from 'node:child_process'
import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs'
import { get } from 'node:http'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'

/** How to start the API. */
export interface ApiLaunch {
  /** Path of the compiled CLI (dist/src/cli.js). */
  cli: string
  /** Environment the child inherits (e.g. DB_POOL_SIZE); the bench's own settings go on top. */
  env: Record<string, string | undefined>
  logLevel: string
  /** Requests per minute per IP and per pubkey (0: the limit is off and costs nothing). */
  rateLimit: number
  /** When set, the child runs with `--cpu-prof` and writes its profile here. */
  cpuProfDir?: string | undefined
  readyTimeoutMs?: number
}

/** A log line at warning level or above (or any non-JSON output). */
export interface LogLine {
  severity: string
  message: string
  /** Logged after the bench sent SIGTERM. */
  atShutdown: boolean
}

/** A running API child. */
export interface ApiProcess {
  pid: number
  port: number
  /** PUBLIC_URL: NIP-98 `u` tags are this plus the path and query. */
  url: string
  pgPort: number
  dataDir: string
  /** What the API's startup lines said (verifier, database), when the log level shows them. */
  startup: { verifier?: string; database?: string }
  /** The first 50 warnings, and how many there were. */
  warnings: LogLine[]
  warningCount: number
  /** Disk space of the PostgreSQL data directory. */
  dataMiB(): number
  /** SIGTERM (the API stops its PostgreSQL), wait for exit, remove the temp dir. */
  stop(): Promise<{ code: number | null; signal: string | null; seconds: number }>
}

const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      const port = typeof address === 'object' && address ? address.port : 0
      server.close(() => resolve(port))
    })
  })

const readyz = (port: number): Promise<boolean> =>
  new Promise(resolve => {
    const req = get({ host: '127.0.0.1', port, path: '/readyz', timeout: 1000 }, res => {
      res.resume()
      resolve(res.statusCode === 200)
    })
    req.on('error', () => resolve(false))
    req.on('timeout', () => (req.destroy(), resolve(false)))
  })

const exited = (child: ChildProcess): Promise<void> =>
  child.exitCode !== null || child.signalCode !== null ? Promise.resolve() : new Promise(resolve => child.once('exit', () => resolve()))

const allocatedBytes = (path: string): number => {
  try {
    const stat = statSync(path)
    if (!stat.isDirectory()) return stat.blocks * 512
    return readdirSync(path).reduce((sum, f) => sum + allocatedBytes(join(path, f)), stat.blocks * 512)
  } catch {
    return 0
  }
}

/** The postmaster's pid (first line of postmaster.pid), to stop it should the API die without stopping it. */
const postmasterPid = (pgDir: string): number | undefined => {
  try {
    const pid = Number(readFileSync(join(pgDir, 'postmaster.pid'), 'latin1').split('\n', 1)[0])
    return Number.isSafeInteger(pid) && pid > 0 ? pid : undefined
  } catch {
    return undefined
  }
}

/** Signals a process we started (or our child started), if it still runs. */
const signal = (pid: number | undefined, name: NodeJS.Signals): void => {
  try {
    if (pid) process.kill(pid, name)
  } catch {
    // already gone
  }
}

/** Follows the child's output: remembers the startup lines and every warning. */
const watchOutput = (child: ChildProcess, api: Pick<ApiProcess, 'startup' | 'warnings' | 'warningCount'>, stopping: () => boolean): void => {
  const onLine = (line: string): void => {
    let entry: { severity?: string; message?: string; verifier?: string; database?: string }
    try {
      entry = JSON.parse(line) as typeof entry
    } catch {
      entry = { severity: 'OUTPUT', message: line }
    }
    if (entry.message === 'mailbox API listening' && entry.verifier) api.startup.verifier = entry.verifier
    if (entry.message === 'database ready' && entry.database) api.startup.database = entry.database
    if (entry.severity === 'INFO' || entry.severity === 'DEBUG' || line.trim() === '') return
    api.warningCount++
    if (api.warnings.length < 50) api.warnings.push({ severity: entry.severity ?? '?', message: entry.message ?? line, atShutdown: stopping() })
  }
  for (const stream of [child.stdout, child.stderr]) if (stream) createInterface({ input: stream }).on('line', onLine)
}

/** The child's environment: the caller's, minus DATABASE_URL (the bench measures the embedded PostgreSQL), plus ours. */
const childEnv = (launch: ApiLaunch, dataDir: string, port: number, pgPort: number): Record<string, string | undefined> => {
  const { DATABASE_URL: _external, ...inherited } = launch.env
  return {
    ...inherited,
    PORT: String(port),
    HOST: '127.0.0.1',
    PUBLIC_URL: `http://127.0.0.1:${port}`,
    MAILBOX_DATA_DIR: join(dataDir, 'pg'),
    MAILBOX_EMBEDDED_PG_PORT: String(pgPort),
    // Requests carry X-Forwarded-For (one address per simulated device), as behind Cloud Run's proxy.
    TRUSTED_PROXIES: '1',
    MAILBOX_RATE_LIMIT_PER_IP: String(launch.rateLimit),
    MAILBOX_RATE_LIMIT_PER_PUBKEY: String(launch.rateLimit),
    LOG_LEVEL: launch.logLevel,
  }
}

/** Starts the API and resolves once /readyz answers 200 (migrations applied). */
export const startApiProcess = async (launch: ApiLaunch): Promise<ApiProcess> => {
  const dataDir = mkdtempSync(join(tmpdir(), 'msr-mailbox-bench-'))
  // Run as root, the API hands the data directory to a `postgres` user, which must be able to reach it.
  chmodSync(dataDir, 0o755)
  const [port, pgPort] = [await freePort(), await freePort()]
  const nodeArgs = launch.cpuProfDir ? ['--cpu-prof', '--cpu-prof-dir', launch.cpuProfDir] : []
  const child = spawn(process.execPath, [...nodeArgs, launch.cli, 'serve'], {
    cwd: dataDir,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: childEnv(launch, dataDir, port, pgPort),
  })
  const pgDir = join(dataDir, 'pg')
  const removeDir = () => rmSync(dataDir, { recursive: true, force: true })
  // If the generator dies, neither the API nor its PostgreSQL may outlive it.
  const killOnExit = () => {
    const postmaster = postmasterPid(pgDir)
    child.kill('SIGKILL')
    signal(postmaster, 'SIGQUIT')
    removeDir()
  }
  process.once('exit', killOnExit)
  let stopping = false
  const api: ApiProcess = {
    pid: child.pid ?? -1,
    port,
    url: `http://127.0.0.1:${port}`,
    pgPort,
    dataDir,
    startup: {},
    warnings: [],
    warningCount: 0,
    dataMiB: () => allocatedBytes(pgDir) / 2 ** 20,
    stop: async () => {
      const started = performance.now()
      const postmaster = postmasterPid(pgDir)
      stopping = true
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM')
        const grace = setTimeout(() => child.kill('SIGKILL'), 20_000)
        await exited(child)
        clearTimeout(grace)
      }
      // The API stops PostgreSQL on SIGTERM; after a SIGKILL it could not have.
      if (child.signalCode === 'SIGKILL') signal(postmaster, 'SIGQUIT')
      process.off('exit', killOnExit)
      removeDir()
      return { code: child.exitCode, signal: child.signalCode, seconds: (performance.now() - started) / 1000 }
    },
  }
  watchOutput(child, api, () => stopping)
  const deadline = performance.now() + (launch.readyTimeoutMs ?? 60_000)
  while (!(await readyz(port))) {
    if (child.exitCode !== null || child.signalCode !== null || performance.now() > deadline) {
      const why = api.warnings.map(w => `  ${w.severity} ${w.message}`).join('\n')
      await api.stop()
      throw new Error(`the mailbox API did not become ready (exit ${child.exitCode ?? child.signalCode ?? 'none'})\n${why}`)
    }
    await new Promise(resolve => setTimeout(resolve, 50))
  }
  return api
}
