// The relay under test: the compiled CLI as a child process, on a fresh temp data dir and a free loopback port.
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs'
import { get } from 'node:http'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'

/** How to start the relay. */
export interface RelayLaunch {
  /** Path of the compiled CLI (dist/src/cli.js). */
  cli: string
  /** Environment the child inherits (RELAY_* keys in it configure the relay); ours are set on top. */
  env: Record<string, string | undefined>
  /** RELAY_LOG__LEVEL for the child. */
  logLevel: string
  /** Passed as `serve --config FILE` when set; otherwise defaults and environment only. */
  configFile?: string | undefined
  /** When set, the child runs with `--cpu-prof` and writes its profiles here. */
  cpuProfDir?: string | undefined
  readyTimeoutMs?: number
}

/** A log line the relay wrote at warning level or above (or any non-JSON output). */
export interface RelayLogLine {
  severity: string
  message: string
}

/** A running relay child. */
export interface RelayProcess {
  pid: number
  port: number
  url: string
  dataDir: string
  /** The verifier named by the relay's startup line ('relay listening'), when its log level shows it. */
  verifier: string | undefined
  /** Warnings and errors the relay logged (the first 50), and how many there were. */
  warnings: RelayLogLine[]
  warningCount: number
  /** Disk space the store's files take (allocated blocks: LMDB files are sparse). */
  storeMiB(): number
  /** SIGTERM, wait for exit (then SIGKILL after a grace period), remove the temp dir. */
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

const allocatedMiB = (dir: string): number => {
  try {
    return readdirSync(dir).reduce((sum, f) => sum + statSync(join(dir, f)).blocks * 512, 0) / 2 ** 20
  } catch {
    return 0
  }
}

/** Follows the child's output: remembers the verifier from the startup line and every warning. */
const watchOutput = (child: ChildProcess, relay: Pick<RelayProcess, 'verifier' | 'warnings' | 'warningCount'>): void => {
  const onLine = (line: string): void => {
    let entry: { severity?: string; message?: string; verifier?: string }
    try {
      entry = JSON.parse(line) as typeof entry
    } catch {
      entry = { severity: 'OUTPUT', message: line }
    }
    if (entry.message === 'relay listening' && entry.verifier) relay.verifier = entry.verifier
    if (entry.severity === 'INFO' || entry.severity === 'DEBUG' || line.trim() === '') return
    relay.warningCount++
    if (relay.warnings.length < 50) relay.warnings.push({ severity: entry.severity ?? '?', message: entry.message ?? line })
  }
  for (const stream of [child.stdout, child.stderr]) if (stream) createInterface({ input: stream }).on('line', onLine)
}

/** Starts the relay and resolves once /readyz answers 200. */
export const startRelayProcess = async (launch: RelayLaunch): Promise<RelayProcess> => {
  const dataDir = mkdtempSync(join(tmpdir(), 'msr-bench-'))
  const port = await freePort()
  const nodeArgs = launch.cpuProfDir ? ['--cpu-prof', '--cpu-prof-dir', launch.cpuProfDir] : []
  const configArgs = launch.configFile ? ['--config', launch.configFile] : []
  // cwd is the temp dir so that no config/relay.toml of the working tree is picked up by accident.
  const child = spawn(process.execPath, [...nodeArgs, launch.cli, 'serve', ...configArgs], {
    cwd: dataDir,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: {
      ...launch.env,
      RELAY_DATA__PATH: join(dataDir, 'lmdb'),
      RELAY_NETWORK__HOST: '127.0.0.1',
      PORT: String(port),
      RELAY_LOG__LEVEL: launch.logLevel,
    },
  })
  const removeDir = () => rmSync(dataDir, { recursive: true, force: true })
  // If the generator dies, the relay must not outlive it.
  const killOnExit = () => (child.kill('SIGKILL'), removeDir())
  process.once('exit', killOnExit)
  const relay: RelayProcess = {
    pid: child.pid ?? -1,
    port,
    url: `ws://127.0.0.1:${port}`,
    dataDir,
    verifier: undefined,
    warnings: [],
    warningCount: 0,
    storeMiB: () => allocatedMiB(join(dataDir, 'lmdb')),
    stop: async () => {
      const started = performance.now()
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM')
        const grace = setTimeout(() => child.kill('SIGKILL'), 15_000)
        await exited(child)
        clearTimeout(grace)
      }
      process.off('exit', killOnExit)
      removeDir()
      return { code: child.exitCode, signal: child.signalCode, seconds: (performance.now() - started) / 1000 }
    },
  }
  watchOutput(child, relay)
  const deadline = performance.now() + (launch.readyTimeoutMs ?? 30_000)
  while (!(await readyz(port))) {
    if (child.exitCode !== null || child.signalCode !== null || performance.now() > deadline) {
      const why = relay.warnings.map(w => `  ${w.severity} ${w.message}`).join('\n')
      await relay.stop()
      throw new Error(`the relay did not become ready (exit ${child.exitCode ?? child.signalCode ?? 'none'})\n${why}`)
    }
    await new Promise(resolve => setTimeout(resolve, 50))
  }
  return relay
}
