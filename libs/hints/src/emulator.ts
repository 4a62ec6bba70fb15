/**
 * Test harness for the Google Cloud CLI's Pub/Sub emulator: finds it, starts it on a free loopback port,
 * creates topics and subscriptions through the real client, and stops it with every process it spawned.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { accessSync, constants, realpathSync, statSync } from 'node:fs'
import { createServer } from 'node:net'
import { homedir } from 'node:os'
import { delimiter, dirname, join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { PubSub, type Message } from '@google-cloud/pubsub'

const IN_SDK = 'platform/pubsub-emulator/bin/cloud-pubsub-emulator'
const DEFAULT_PROJECT = 'msr-test'
const STOP_GRACE_MS = 5_000

const isExecutable = (path: string): boolean => {
  try {
    accessSync(path, constants.X_OK)
    return statSync(path).isFile()
  } catch {
    return false
  }
}

/** The first executable `name` in PATH, symlinks resolved. */
const onPath = (name: string): string | undefined => {
  for (const dir of (process.env.PATH ?? '').split(delimiter).filter(Boolean)) {
    const candidate = join(dir, name)
    if (isExecutable(candidate)) return realpathSync(candidate)
  }
  return undefined
}

/** Where an SDK may live; `gcloud` sits in `<sdk>/bin`. */
const sdkRoots = (): string[] => {
  const gcloud = onPath('gcloud')
  const roots = [process.env.CLOUDSDK_ROOT_DIR, '/usr/lib/google-cloud-sdk', '/usr/share/google-cloud-sdk', '/opt/google-cloud-sdk', join(homedir(), 'google-cloud-sdk')]
  return [...new Set([...roots, gcloud && join(dirname(gcloud), '..')].filter((r): r is string => !!r))]
}

/** The emulator's launcher, or a sentence saying what was looked for (for `t.skip`). */
export const findEmulator = (): { path: string } | { missing: string } => {
  const explicit = process.env.PUBSUB_EMULATOR_BIN
  // A wrong explicit setting is reported rather than silently replaced by another emulator.
  if (explicit) return isExecutable(explicit) ? { path: explicit } : { missing: `PUBSUB_EMULATOR_BIN=${explicit} is not an executable file` }
  const candidates = sdkRoots().map(root => join(root, IN_SDK))
  const path = candidates.find(isExecutable)
  if (!path)
    return { missing: `no Pub/Sub emulator found: PUBSUB_EMULATOR_BIN is unset and none of ${candidates.join(', ')} exists (gcloud components install pubsub-emulator)` }
  // The launcher is a shell script that needs a JVM; without one it would only fail at start.
  const java = process.env.JAVA_HOME ? join(process.env.JAVA_HOME, 'bin/java') : onPath('java')
  if (!java || !isExecutable(java)) return { missing: `the Pub/Sub emulator at ${path} needs Java 17, and neither JAVA_HOME nor PATH has java` }
  return { path }
}

/** A loopback port nobody listens on right now. */
const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))))
    })
  })

/**
 * Runs the emulator under a small shell that owns its process group: it reports the emulator's exit as
 * its own, survives the group's SIGTERM long enough to do so, and kills the group when its stdin (a pipe
 * from this process) closes, so an emulator never outlives a test process that crashed or was killed.
 */
const SUPERVISOR = `
exec 3<&0
"$@" </dev/null 3<&- &
emulator=$!
{ read -r _ <&3; kill -TERM 0; } &
exec 3<&-
trap : TERM
wait "$emulator"; status=$?
wait "$emulator" 2>/dev/null
exit "$status"`

/** The last few KB of what the emulator printed, for error messages. */
const tailOf = (child: ChildProcess): (() => string) => {
  let tail = ''
  const keep = (chunk: Buffer): void => void (tail = (tail + chunk.toString('utf8')).slice(-4096))
  child.stdout?.on('data', keep)
  child.stderr?.on('data', keep)
  return () => tail.trim().split('\n').slice(-15).join('\n')
}

/** Resolves once `GET /` answers "Ok"; rejects if the emulator exits or the deadline passes. */
const waitReady = async (host: string, exited: Promise<number | null>, timeoutMs: number, tail: () => string): Promise<void> => {
  let code: number | null | undefined
  void exited.then(c => (code = c === null ? -1 : c))
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if (code !== undefined) throw new Error(`Pub/Sub emulator exited (${code}) before answering on ${host}:\n${tail()}`)
    const ok = await fetch(`http://${host}/`, { signal: AbortSignal.timeout(1_000) }).then(
      async r => (await r.text()).trim() === 'Ok',
      () => false,
    )
    if (ok) return
    await sleep(100)
  }
  throw new Error(`Pub/Sub emulator did not answer on ${host} within ${timeoutMs} ms:\n${tail()}`)
}

/** Signals the whole process group (the launcher's java and the supervisor); quiet if it is gone. */
const signalGroup = (child: ChildProcess, signal: NodeJS.Signals): void => {
  try {
    if (child.pid !== undefined) process.kill(-child.pid, signal)
  } catch {
    // ESRCH: already gone.
  }
}

/** SIGTERM, then SIGKILL after the grace period; resolves when the supervisor (hence the emulator) has exited. */
const stopGroup = async (child: ChildProcess, exited: Promise<unknown>): Promise<void> => {
  if (child.exitCode !== null || child.signalCode !== null) return void signalGroup(child, 'SIGKILL')
  signalGroup(child, 'SIGTERM')
  // Unref'd: a pending grace timer would otherwise hold the test process for 5 s after a quick exit.
  const gone = await Promise.race([exited.then(() => true), sleep(STOP_GRACE_MS, false, { ref: false })])
  // The emulator may have left the watcher behind, or ignored SIGTERM: either way nothing may survive.
  signalGroup(child, 'SIGKILL')
  if (!gone) await exited
}

/** A started emulator, and the admin calls a test needs. */
export interface RunningEmulator {
  /** `127.0.0.1:PORT`, for `PUBSUB_EMULATOR_HOST` or a client's `apiEndpoint`. */
  host: string
  projectId: string
  /** The id of the emulator's process group (its supervising shell leads it; the JVM runs in it): for CPU accounting. */
  processGroup: number
  /** Creates a topic; `retentionSeconds` keeps its messages (acknowledged or not) that long, for seeks back in time. */
  createTopic(name: string, opts?: { retentionSeconds?: number }): Promise<void>
  createSubscription(topic: string, name: string, opts?: { enableMessageOrdering?: boolean; ackDeadlineSeconds?: number }): Promise<void>
  /**
   * Seeks a subscription to a time (messages published before it count as acknowledged). Note: unlike
   * Pub/Sub, the emulator hands a subscription created on a topic with retention everything the topic
   * retains; seeking it to its creation time gives Pub/Sub's behaviour.
   */
  seek(subscription: string, time: Date): Promise<void>
  deleteSubscription(name: string): Promise<void>
  /** Streaming pull of `subscription`: each message's data goes to `onMessage`, then is acked. */
  listen(subscription: string, onMessage: (data: Buffer) => void): { close(): Promise<void> }
  /**
   * Freezes the emulator's process group (SIGSTOP): connections stay open and nothing answers, as in a bus
   * outage; `resume` (SIGCONT) lets it go on with its state intact (a restart would lose it).
   */
  pause(): void
  resume(): void
  /** Kills the emulator's process group and waits for it; safe to call twice. */
  stop(): Promise<void>
}

/**
 * Starts the emulator on `port` (a restart after an outage) or a free loopback port; rejects with its
 * output's tail when it does not come up.
 */
export const startEmulator = async (opts: { projectId?: string; timeoutMs?: number; port?: number } = {}): Promise<RunningEmulator> => {
  const found = findEmulator()
  if ('missing' in found) throw new Error(found.missing)
  const port = opts.port ?? (await freePort())
  const host = `127.0.0.1:${port}`
  const child = spawn('/bin/sh', ['-c', SUPERVISOR, 'pubsub-emulator', found.path, '--host=127.0.0.1', `--port=${port}`], {
    detached: true, // its own process group, so one signal reaches the java the launcher starts
    stdio: ['pipe', 'pipe', 'pipe'],
    env: { ...process.env, METADATA_SERVER_DETECTION: 'none' },
  })
  const exited = new Promise<number | null>(resolve => child.once('exit', code => resolve(code)))
  // Belt and braces next to the supervisor: a normal exit of this process takes the group along.
  const onExit = (): void => signalGroup(child, 'SIGKILL')
  process.once('exit', onExit)
  const tail = tailOf(child)
  const stop = async (): Promise<void> => {
    await stopGroup(child, exited)
    process.removeListener('exit', onExit)
  }
  try {
    await waitReady(host, exited, opts.timeoutMs ?? 60_000, tail)
  } catch (err) {
    await stop()
    throw err
  }
  const signal = (name: NodeJS.Signals) => (): void => signalGroup(child, name)
  return running(host, opts.projectId ?? DEFAULT_PROJECT, child.pid ?? -1, { stop, pause: signal('SIGSTOP'), resume: signal('SIGCONT') })
}

/** The admin side, over the real client so tests exercise what production uses. */
const running = (host: string, projectId: string, processGroup: number, control: { stop: () => Promise<void>; pause: () => void; resume: () => void }): RunningEmulator => {
  const admin = new PubSub({ projectId, apiEndpoint: host, emulatorMode: true, universeDomain: 'googleapis.com' })
  return {
    host,
    projectId,
    processGroup,
    createTopic: async (name, opts = {}) =>
      void (await admin.createTopic({ name, ...(opts.retentionSeconds && { messageRetentionDuration: { seconds: opts.retentionSeconds } }) })),
    createSubscription: async (topic, name, opts = {}) => void (await admin.topic(topic).createSubscription(name, opts)),
    seek: async (name, time) => void (await admin.subscription(name).seek(time)),
    deleteSubscription: async name => void (await admin.subscription(name).delete()),
    listen: (name, onMessage) => {
      const subscription = admin.subscription(name)
      subscription.on('message', (message: Message) => (onMessage(message.data), message.ack()))
      subscription.on('error', () => undefined) // the emulator going away mid-stream: the test counts what arrived
      return { close: () => subscription.close() }
    },
    pause: control.pause,
    resume: control.resume,
    stop: async () => {
      control.resume() // a stopped group would not act on SIGTERM
      await admin.close().catch(() => undefined)
      await control.stop()
    },
  }
}
