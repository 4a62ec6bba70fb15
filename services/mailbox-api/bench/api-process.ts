// The mailbox API under test: the compiled CLI as a child process on a fresh temp dir, with the embedded
// PostgreSQL it starts itself on a free loopback port, and a free HTTP port.
import { spawn, type ChildProcess } from 'node:child_process'
import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { followOutput, freePort, GC_NODE_ARGS, GcWatch, isWarning, MEASURED_MALLOC_ENV, settledMemory, terminate, waitUntilReady, type LogLine, type Memory, type ServiceChild } from '@msr/bench'

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
  /** Where the temp dir (the API's cwd, its PostgreSQL's data) is made; undefined: the OS's temp dir. */
  parentDir?: string | undefined
  /** When set, the child (and so its PostgreSQL, which inherits the affinity) runs on these CPUs only (taskset list). */
  cpus?: string | undefined
  readyTimeoutMs?: number
  /** Start the child so that `settledMemory` can force a garbage collection in it, with MEASURED_MALLOC_ENV (the fuzzer's memory check). */
  gc?: boolean
}

/** A log line at warning level or above (or any non-JSON output). */
export interface ApiLogLine extends LogLine {
  /** Logged after the bench sent SIGTERM. */
  atShutdown: boolean
}

/** A running API child; `url` is PUBLIC_URL (NIP-98 `u` tags are this plus the path and query). */
export interface ApiProcess extends ServiceChild<ApiLogLine> {
  pgPort: number
  /** What the API's startup lines said (verifier, database), when the log level shows them. */
  startup: { verifier?: string; database?: string }
  /** Disk space of the PostgreSQL data directory. */
  dataMiB(): number
  /** Its memory after forced garbage collections (undefined unless started with `gc`, or when it is gone). */
  settledMemory(): Promise<Memory | undefined>
}

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
const watchOutput = (child: ChildProcess, api: Pick<ApiProcess, 'startup' | 'warnings' | 'warningCount'>, stopping: () => boolean, gc: GcWatch): void => {
  followOutput(child, (entry, line) => {
    gc.seen(entry.message)
    if (entry.message === 'mailbox API listening' && typeof entry.verifier === 'string') api.startup.verifier = entry.verifier
    if (entry.message === 'database ready' && typeof entry.database === 'string') api.startup.database = entry.database
    if (!isWarning(entry, line)) return
    api.warningCount++
    if (api.warnings.length < 50) api.warnings.push({ severity: entry.severity ?? '?', message: entry.message ?? line, atShutdown: stopping() })
  })
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
  const dataDir = mkdtempSync(join(launch.parentDir ?? tmpdir(), 'msr-mailbox-bench-'))
  // Run as root, the API hands the data directory to a `postgres` user, which must be able to reach it.
  chmodSync(dataDir, 0o755)
  const [port, pgPort] = [await freePort(), await freePort()]
  const nodeArgs = [...(launch.cpuProfDir ? ['--cpu-prof', '--cpu-prof-dir', launch.cpuProfDir] : []), ...(launch.gc ? GC_NODE_ARGS : [])]
  const command = [process.execPath, ...nodeArgs, launch.cli, 'serve']
  // taskset execs node in its own process, so the pid is the API's.
  const [file, ...args] = launch.cpus ? ['taskset', '-c', launch.cpus, ...command] : command
  const child = spawn(file as string, args, {
    cwd: dataDir,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...childEnv(launch, dataDir, port, pgPort), ...(launch.gc ? MEASURED_MALLOC_ENV : {}) },
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
  const gc = new GcWatch()
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
    settledMemory: async () => (launch.gc ? settledMemory(child.pid ?? -1, () => gc.collect(child)) : undefined),
    stop: async () => {
      const started = performance.now()
      const postmaster = postmasterPid(pgDir)
      stopping = true
      await terminate(child, 20_000)
      // The API stops PostgreSQL on SIGTERM; after a SIGKILL it could not have.
      if (child.signalCode === 'SIGKILL') signal(postmaster, 'SIGQUIT')
      process.off('exit', killOnExit)
      removeDir()
      return { code: child.exitCode, signal: child.signalCode, seconds: (performance.now() - started) / 1000 }
    },
  }
  watchOutput(child, api, () => stopping, gc)
  await waitUntilReady({ child, port, name: 'the mailbox API', timeoutMs: launch.readyTimeoutMs ?? 60_000, warnings: api.warnings, stop: api.stop })
  return api
}
