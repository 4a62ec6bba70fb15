// The service under test as a child process: a free loopback port, its log lines, readiness on /readyz, and
// a bounded stop. What to start and how to configure it stays with each service's bench.
import type { ChildProcess } from 'node:child_process'
import { get } from 'node:http'
import { createServer } from 'node:net'
import { createInterface } from 'node:readline'

/** A log line the child wrote at warning level or above (or any non-JSON output). */
export interface LogLine {
  severity: string
  message: string
}

/** How a stopped child ended, and how long the stop took. */
export interface Stopped {
  code: number | null
  signal: string | null
  seconds: number
}

/** What both benches know of their running service child. */
export interface ServiceChild<L extends LogLine = LogLine> {
  pid: number
  port: number
  /** Where the generator connects (ws:// or http://). */
  url: string
  dataDir: string
  /** The first 50 warnings, and how many there were. */
  warnings: L[]
  warningCount: number
  /** SIGTERM, wait for exit (then SIGKILL after a grace period), remove the temp dir. */
  stop(): Promise<Stopped>
}

/** A loopback port nobody listens on right now. */
export const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      const port = typeof address === 'object' && address ? address.port : 0
      server.close(() => resolve(port))
    })
  })

/** Whether GET /readyz on the loopback port answers 200 within a second. */
const readyz = (port: number): Promise<boolean> =>
  new Promise(resolve => {
    const req = get({ host: '127.0.0.1', port, path: '/readyz', timeout: 1000 }, res => {
      res.resume()
      resolve(res.statusCode === 200)
    })
    req.on('error', () => resolve(false))
    req.on('timeout', () => (req.destroy(), resolve(false)))
  })

/** Whether the child has exited (by itself or by a signal). */
export const hasExited = (child: ChildProcess): boolean => child.exitCode !== null || child.signalCode !== null

/** SIGTERM, then SIGKILL if it still runs after `graceMs`; resolves once the child has exited. */
export const terminate = async (child: ChildProcess, graceMs: number): Promise<void> => {
  if (hasExited(child)) return
  child.kill('SIGTERM')
  const grace = setTimeout(() => child.kill('SIGKILL'), graceMs)
  await new Promise<void>(resolve => (hasExited(child) ? resolve() : child.once('exit', () => resolve())))
  clearTimeout(grace)
}

/** One line of the child's output: its JSON log entry, or `{ severity: 'OUTPUT', message: line }`. */
export interface LogEntry {
  severity?: string
  message?: string
  [field: string]: unknown
}

/** Calls `onEntry` for every line the child writes to stdout or stderr. */
export const followOutput = (child: ChildProcess, onEntry: (entry: LogEntry, line: string) => void): void => {
  const onLine = (line: string): void => {
    let entry: LogEntry
    try {
      entry = JSON.parse(line) as LogEntry
    } catch {
      entry = { severity: 'OUTPUT', message: line }
    }
    onEntry(entry, line)
  }
  for (const stream of [child.stdout, child.stderr]) if (stream) createInterface({ input: stream }).on('line', onLine)
}

/** Whether a line is a warning or worse (or any non-JSON output), i.e. worth reporting. */
export const isWarning = (entry: LogEntry, line: string): boolean => !(entry.severity === 'INFO' || entry.severity === 'DEBUG' || line.trim() === '')

/** What waitUntilReady needs of the child it waits for. */
export interface Starting {
  child: ChildProcess
  port: number
  /** `the relay`: named in the error. */
  name: string
  timeoutMs: number
  /** The warnings logged so far, quoted in the error. */
  warnings: readonly LogLine[]
  /** Stops the child and cleans up, before the error is thrown. */
  stop(): Promise<unknown>
}

/** Resolves once /readyz answers 200; if the child exits or the time runs out first, stops it and throws. */
export const waitUntilReady = async ({ child, port, name, timeoutMs, warnings, stop }: Starting): Promise<void> => {
  const deadline = performance.now() + timeoutMs
  while (!(await readyz(port))) {
    if (hasExited(child) || performance.now() > deadline) {
      const why = warnings.map(w => `  ${w.severity} ${w.message}`).join('\n')
      await stop()
      throw new Error(`${name} did not become ready (exit ${child.exitCode ?? child.signalCode ?? 'none'})\n${why}`)
    }
    await new Promise(resolve => setTimeout(resolve, 50))
  }
}
