// The relay under test: the compiled CLI as a child process, on a fresh temp data dir and a free loopback port.
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, readdirSync, rmSync, statfsSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { followOutput, freePort, GC_NODE_ARGS, GcWatch, isWarning, MEASURED_MALLOC_ENV, settledMemory, terminate, waitUntilReady, type Memory, type ServiceChild } from '@msr/bench'

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
  /** Where the relay's temp data dir is made (`--store-dir`); the OS's temp dir when unset. */
  storeDir?: string | undefined
  /** When set, the child runs with `--cpu-prof` and writes its profiles here. */
  cpuProfDir?: string | undefined
  /**
   * OTEL_* variables set on top of `env` (exporter, endpoint, sampler). Tracing starts only when
   * OTEL_TRACES_EXPORTER names an exporter; the register module is loaded either way.
   */
  otel?: Record<string, string> | undefined
  readyTimeoutMs?: number
  /** Start the child so that `settledMemory` can force a garbage collection in it, with MEASURED_MALLOC_ENV (the fuzzer's memory check). */
  gc?: boolean
}

/** A running relay child. */
export interface RelayProcess extends ServiceChild {
  /** The verifier named by the relay's startup line ('relay listening'), when its log level shows it. */
  verifier: string | undefined
  /** Disk space the store's files take (allocated blocks: LMDB files are sparse). */
  storeMiB(): number
  /** Its memory after forced garbage collections (undefined unless started with `gc`, or when it is gone). */
  settledMemory(): Promise<Memory | undefined>
}

const allocatedMiB = (dir: string): number => {
  try {
    return readdirSync(dir).reduce((sum, f) => sum + statSync(join(dir, f)).blocks * 512, 0) / 2 ** 20
  } catch {
    return 0
  }
}

/** statfs magic numbers of the file systems a store is likely to be on (linux/magic.h). */
const FILE_SYSTEMS: ReadonlyMap<number, string> = new Map([
  [0xef53, 'ext4'],
  [0x01021994, 'tmpfs: memory'],
  [0x58465342, 'xfs'],
  [0x9123683e, 'btrfs'],
  [0x794c7630, 'overlayfs'],
  [0x6969, 'nfs'],
  [0x65735546, 'fuse'],
  [0x2fc12fc1, 'zfs'],
  [0x858458f6, 'ramfs: memory'],
])

/**
 * The file system `dir` is on, by name where known (the store's commits cost most where syncing means
 * writing to a device: tmpfs, as on Cloud Run, where the disk is memory, syncs nothing).
 */
export const fileSystemOf = (dir: string): string => {
  try {
    const { type } = statfsSync(dir)
    return FILE_SYSTEMS.get(type) ?? `file system 0x${type.toString(16)}`
  } catch {
    return 'file system unknown'
  }
}

/** Follows the child's output: remembers the verifier from the startup line and every warning. */
const watchOutput = (child: ChildProcess, relay: Pick<RelayProcess, 'verifier' | 'warnings' | 'warningCount'>, gc: GcWatch): void => {
  followOutput(child, (entry, line) => {
    gc.seen(entry.message)
    if (entry.message === 'relay listening' && typeof entry.verifier === 'string') relay.verifier = entry.verifier
    if (!isWarning(entry, line)) return
    relay.warningCount++
    if (relay.warnings.length < 50) relay.warnings.push({ severity: entry.severity ?? '?', message: entry.message ?? line })
  })
}

/**
 * `--import @msr/telemetry/register`, as the relay is started in production, resolved here: the child's cwd is
 * its temp dir, from which the bare name would not resolve. Loaded in every run, so that "tracing off" is
 * measured through the same start path (the module then loads nothing more).
 */
export const TELEMETRY_REGISTER = import.meta.resolve('@msr/telemetry/register')

/** OTEL_SERVICE_NAME of the relay child unless the environment names one. */
export const SERVICE_NAME = 'msr-relay'

/** Starts the relay and resolves once /readyz answers 200. */
export const startRelayProcess = async (launch: RelayLaunch): Promise<RelayProcess> => {
  const dataDir = mkdtempSync(join(launch.storeDir ?? tmpdir(), 'msr-bench-'))
  const port = await freePort()
  const nodeArgs = [...(launch.cpuProfDir ? ['--cpu-prof', '--cpu-prof-dir', launch.cpuProfDir] : []), ...(launch.gc ? GC_NODE_ARGS : []), '--import', TELEMETRY_REGISTER]
  const configArgs = launch.configFile ? ['--config', launch.configFile] : []
  // cwd is the temp dir so that no config/relay.toml of the working tree is picked up by accident.
  const child = spawn(process.execPath, [...nodeArgs, launch.cli, 'serve', ...configArgs], {
    cwd: dataDir,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: {
      ...launch.env,
      OTEL_SERVICE_NAME: launch.env.OTEL_SERVICE_NAME || SERVICE_NAME,
      // As the relay's launchers run it (npm start, the image): context kept within synchronous calls.
      MSR_TRACE_CONTEXT: launch.env.MSR_TRACE_CONTEXT || 'sync',
      ...launch.otel,
      ...(launch.gc ? MEASURED_MALLOC_ENV : {}),
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
  const gc = new GcWatch()
  const relay: RelayProcess = {
    pid: child.pid ?? -1,
    port,
    url: `ws://127.0.0.1:${port}`,
    dataDir,
    verifier: undefined,
    warnings: [],
    warningCount: 0,
    storeMiB: () => allocatedMiB(join(dataDir, 'lmdb')),
    settledMemory: async () => (launch.gc ? settledMemory(child.pid ?? -1, () => gc.collect(child)) : undefined),
    stop: async () => {
      const started = performance.now()
      await terminate(child, 15_000)
      process.off('exit', killOnExit)
      removeDir()
      return { code: child.exitCode, signal: child.signalCode, seconds: (performance.now() - started) / 1000 }
    },
  }
  watchOutput(child, relay, gc)
  await waitUntilReady({ child, port, name: 'the relay', timeoutMs: launch.readyTimeoutMs ?? 30_000, warnings: relay.warnings, stop: relay.stop })
  return relay
}
