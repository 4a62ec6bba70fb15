// Replication kill cycles (issue 22's proof): three relay CLI replicas on one topic of the Pub/Sub emulator;
// clients publish a seeded mix (test/crash-cycles.ts's: notes, replaceable, addressable, deletions by e and
// by a, 445/446) across all three; each cycle SIGKILLs one replica mid-ingest, deletes its data directory
// and starts a replacement on an empty one, which bootstraps from the newest snapshot plus a seek of its
// subscription. Any replica may be the victim, the one that writes the snapshots included: that one first
// loses its link to the bus (a TCP relay between it and the emulator stops passing anything) until it has
// written a snapshot, so it dies with events in its replication outbox that the newest snapshot holds and
// no other replica does; its replacement (the same configuration, as Cloud Run or a StatefulSet would start
// it: it writes the snapshots from then on) must publish them. After each cycle every event that got OK
// true must be served by every replica (the survivors and the replacement), nothing deleted or replaced may
// be served, and the three fingerprints must be equal. Optionally (the soak) the emulator is then frozen:
// OKs under "refuse" must be `OK false "error: …"`, and everything must reach every replica once it answers again.
import { rm } from 'node:fs/promises'
import { createServer, connect, type Server, type Socket } from 'node:net'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { seededRandom, type Random } from '@msr/bench'
import { startEmulator, type RunningEmulator } from '@msr/hints/emulator'
import { snapshotTime } from '@msr/storage'
import { acked, expectations, nextEvent, served, type Author, type CycleTally } from './crash-cycles.js'
import { freePort, newSigner, serveCli, sign, stopCli, tempDir, TestClient, waitUntil, withTimeout, type CliProcess, type NostrEvent, type Signer } from './harness.js'

const TOPIC = 'relay-events'
const ADMIN_KEY = 'replication-cycles-admin-key-0123'
/** Replica 0 writes the snapshots (every 5 s; the others' interval is longer than a cycle), and so does each replacement of it. */
const SNAPSHOT_WRITER = 0
const REPLICAS = 3
/** A client's pause between batches: a steady load two cores carry alongside three relays and the emulator's JVM. */
const PAUSE_BETWEEN_BATCHES_MS = 100
/** Ids of events settled after a kill (no OK, found on a survivor): reported apart. */
const settledAfterKill = new Set<string>()
/** When each event was sent (for a failure message: which moment of a bootstrap it fell in). */
const sentAt = new Map<string, number>()

/** What a campaign runs. */
export interface ReplicationCycleOptions {
  cycles: number
  seed: number
  /** Events each client sends before awaiting their OKs. */
  batch?: number
  /** Traffic before the SIGKILL, drawn uniformly in [min, max] ms. */
  killAfterMs?: [number, number]
  /** After the cycles, freeze the emulator this long while clients publish (0: no outage). */
  pauseMs?: number
  /** Called after each cycle's check, with the figures so far. */
  onCheck?: (report: Readonly<ReplicationCycleReport>) => void
  /**
   * Start each replica's subscription as Pub/Sub would, from its creation on (default; then only the
   * replica's seek brings what was published before). Off: as the emulator makes it, with everything the
   * topic retains (the seek changes nothing then).
   */
  subscriptionFromCreation?: boolean
}

/** What a campaign found: `losses`, `resurrected`, `stale`, `fingerprintMismatches` and the outage's `okTrueDuringPause` and `notDrained` must be 0. */
export interface ReplicationCycleReport extends CycleTally {
  /** Checks after which the three replicas' fingerprints differed. */
  fingerprintMismatches: number
  /** Seconds from starting a replacement to its /readyz 200, each cycle. */
  bootstrapSeconds: number[]
  /** Events in the store of the last replica when it was ready. */
  lastStoreEvents: number
  /**
   * Each kill of the snapshot writer: its replication outbox when killed (cut off from the bus since before its
   * newest snapshot) and the entries its replacement's restore queued again from that snapshot.
   */
  writerKills: Array<{ outbox: number; requeued: number }>
  /** The outage (pauseMs > 0): events sent while frozen, answered OK false "error:", OK true (must be 0), not reaching every replica afterwards (must be 0), and the seconds until they had. */
  outage?: { sent: number; refusedWithError: number; okTrueDuringPause: number; notDrained: number; drainSeconds: number }
}

interface Replica {
  slot: number
  generation: number
  port: number
  cli: CliProcess
  dataDir: string
  /** Its way to the emulator. */
  link: BusLink
}

/**
 * A TCP relay between one replica and the emulator (its PUBSUB_EMULATOR_HOST) that can be cut: then nothing
 * passes either way, as for a replica that lost its network to Pub/Sub. A publish sent meanwhile never
 * reaches the emulator (freezing the emulator would not do: it reads what waited in its socket once resumed).
 */
class BusLink {
  private cut = false
  private readonly sockets = new Set<Socket>()
  private server: Server | undefined

  /** Listens on a free local port, relaying to `target` (host:port). */
  async open(target: string): Promise<string> {
    const [host, port] = [target.slice(0, target.lastIndexOf(':')), Number(target.slice(target.lastIndexOf(':') + 1))]
    const server = (this.server = createServer(inbound => {
      const outbound = connect(port, host)
      for (const [from, to] of [[inbound, outbound], [outbound, inbound]] as const) {
        this.sockets.add(from)
        from.on('data', chunk => void (this.cut || to.write(chunk)))
        from.on('close', () => (this.sockets.delete(from), to.destroy()))
        from.on('error', () => to.destroy())
      }
    }))
    await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
    return `127.0.0.1:${(server.address() as { port: number }).port}`
  }

  /** From now on nothing passes. */
  sever(): void {
    this.cut = true
  }

  close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy()
    return new Promise(resolve => (this.server ? this.server.close(() => resolve()) : resolve()))
  }
}

const subscriptionOf = (slot: number, generation: number): string => `replica-${slot}-${generation}`

const url = (r: Replica): string => `ws://127.0.0.1:${r.port}`

const get = async (r: Replica, path: string): Promise<Response> =>
  fetch(`http://127.0.0.1:${r.port}${path}`, { headers: { Authorization: `Bearer ${ADMIN_KEY}` }, signal: AbortSignal.timeout(10_000) })

const fingerprintOf = async (r: Replica): Promise<string> => {
  const print = (await (await get(r, '/admin/fingerprint')).json()) as { events: number; sha256: string }
  return `${print.events}:${print.sha256}`
}

/** The three fingerprints, equal or not. */
const fingerprints = (replicas: Replica[]): Promise<string[]> => Promise.all(replicas.map(fingerprintOf))

/** A campaign's fixed parts: the emulator, the directory, the snapshots. */
class Cluster {
  readonly replicas: Replica[] = []
  /** What the harness did when (for a failure message). */
  readonly log: string[] = []
  private readonly made = new Set<string>()

  constructor(
    readonly emulator: RunningEmulator,
    readonly dir: string,
    private readonly fromCreation: boolean,
  ) {}

  /**
   * Starts the replica of `slot` on an empty data directory with a subscription made for it as Pub/Sub would
   * (from now on: the emulator would otherwise replay the topic's retention to a new subscription), and waits
   * for it to report ready; resolves with the seconds that took.
   */
  async start(slot: number, generation: number): Promise<number> {
    const subscription = subscriptionOf(slot, generation)
    if (!this.made.has(subscription)) await this.make(subscription)
    this.log.push(`${new Date().toISOString()} starting replica ${slot} (generation ${generation})`)
    if (this.fromCreation) await this.emulator.seek(subscription, new Date())
    const link = new BusLink()
    const linkHost = await link.open(this.emulator.host) // first: freePort cannot hand out its port then
    const port = await freePort()
    const dataDir = join(this.dir, `data-${slot}-${generation}`)
    const started = Date.now()
    const writer = slot === SNAPSHOT_WRITER
    const cli = await serveCli(
      port,
      {
        PUBSUB_EMULATOR_HOST: linkHost,
        RELAY_DATA__PATH: dataDir,
        RELAY_REPLICATION__TOPIC: TOPIC,
        RELAY_REPLICATION__PROJECT_ID: this.emulator.projectId,
        RELAY_REPLICATION__SUBSCRIPTION: subscription,
        RELAY_REPLICATION__REPLICA_ID: `r${slot}g${generation}`,
        RELAY_REPLICATION__CATCH_UP_QUIET: '500ms',
        RELAY_BACKUP__TARGET: join(this.dir, 'snapshots'),
        RELAY_BACKUP__INTERVAL: writer ? '5s' : '1h', // longer than a replacement's start: its newest snapshot is usually older than its subscription
        RELAY_BACKUP__KEEP: '3',
        RELAY_BACKUP__ON_SHUTDOWN: 'false',
        RELAY_ADMIN__KEY: ADMIN_KEY,
        RELAY_METRICS__ENABLED: 'true',
        RELAY_METRICS__AUTH: ADMIN_KEY,
        RELAY_AUTH__AUTH_REQUIRED_KINDS: '[]',
        RELAY_AUTH__PRIVATE_KINDS: '[]',
        RELAY_RATE_LIMITER__ENABLED: 'false',
        RELAY_DATA__DB_QUERY_TIMEOUT: '10s',
        RELAY_DATA__QUERY_WORKERS: '1',
        RELAY_LOG__LEVEL: 'info', // serveCli waits for the 'relay listening' line
      },
      this.dir,
    ).catch(async (error: unknown) => {
      await link.close() // nothing else would: the process would not exit
      throw error
    })
    const replica = { slot, generation, port, cli, dataDir, link }
    this.replicas[slot] = replica
    await waitUntil(async () => (await get(replica, '/readyz')).status === 200, `replica ${slot} (generation ${generation}) to report ready`, 60_000, 50)
    return (Date.now() - started) / 1000
  }

  /**
   * Makes a subscription ahead of its replica, while no one publishes: the emulator can miss, for a
   * subscription being created, a publish it handles at that moment, and no later seek brings it back
   * (seen here as a whole batch of five events missing on one replacement; Pub/Sub would replay it from
   * the topic's retention).
   */
  async make(subscription: string): Promise<void> {
    this.made.add(subscription)
    this.log.push(`${new Date().toISOString()} creating subscription ${subscription}`)
    await this.emulator.createSubscription(TOPIC, subscription)
  }

  /**
   * Cuts the replica of `slot` off the bus, waits for its clients to get an event committed, then for a
   * snapshot it starts after that: what is in its replication outbox then is in that snapshot, and nowhere
   * else. Resolves with its outbox depth then.
   */
  async cutOffUntilSnapshot(slot: number): Promise<number> {
    const replica = this.replicas[slot] as Replica
    this.log.push(`${new Date().toISOString()} cut replica ${slot} (generation ${replica.generation}) off the bus`)
    replica.link.sever()
    await waitUntil(async () => (await outboxDepth(replica)) > 0, `an event committed on replica ${slot} while cut off`, 30_000, 50)
    const queuedAt = Date.now()
    const written = await replica.cli.waitForLog(r => r.message === 'snapshot written' && (snapshotTime(String(r.snapshot))?.getTime() ?? 0) > queuedAt, 60_000)
    this.log.push(`${new Date().toISOString()} replica ${slot} wrote ${String(written.snapshot)} while cut off`)
    return outboxDepth(replica)
  }

  /** SIGKILLs the replica of `slot` and deletes its data directory (Cloud Run: the disk goes with the instance). */
  async kill(slot: number): Promise<void> {
    const replica = this.replicas[slot] as Replica
    this.log.push(`${new Date().toISOString()} SIGKILL replica ${slot} (generation ${replica.generation})`)
    replica.cli.child.kill('SIGKILL')
    await withTimeout(replica.cli.exited, 'the killed replica to exit')
    await replica.link.close()
    await rm(replica.dataDir, { recursive: true, force: true })
  }

  async stop(): Promise<void> {
    await Promise.all(this.replicas.map(r => stopCli(r.cli)))
    await Promise.all(this.replicas.map(r => r.link.close()))
  }
}

/** What a replica says about its bootstrap and what it received (for a failure message). */
const diagnosis = async (r: Replica): Promise<string> => {
  const metrics = await get(r, '/metrics').then(
    async response => (await response.text()).split('\n').filter(l => l.startsWith('msr_relay_replication_received_total')),
    (error: unknown) => [`unreachable: ${String(error)}; exit ${JSON.stringify(r.cli.child.exitCode ?? r.cli.child.signalCode)}`, ...r.cli.stderr.slice(-10)],
  )
  const logs = r.cli.stdout.filter(l => /bootstrap|caught up|restored|"severity":"(WARNING|ERROR)"/.test(l)).map(l => l.slice(0, 400))
  return [...metrics, ...logs].join('\n    ')
}

/** One client publishing batches until told to stop (it finishes its batch) or its connection dies. */
const publishBatches = async (client: TestClient, a: Author, others: Signer[], rand: Random, batch: number, sent: { n: number }, stop: { now: boolean }): Promise<void> => {
  while (client.isOpen && !stop.now) {
    const events = Array.from({ length: batch }, () => nextEvent(a, others, rand))
    const replies = events.map(e => {
      a.events.push(e)
      a.status.set(e.id, 'inflight')
      sentAt.set(e.id, Date.now())
      sent.n++
      // "not yet replicated" (ack_timeout passed, a loaded machine): kept and published later, so it may
      // still take effect; settled like an event in flight at a kill, once the replicas agree.
      return client.publish(e).then(ok => void a.status.set(e.id, ok[2] ? 'acked' : ok[3].startsWith('error: not yet replicated') ? 'inflight' : 'refused'))
    })
    if ((await Promise.allSettled(replies)).some(s => s.status === 'rejected')) return
    await sleep(PAUSE_BETWEEN_BATCHES_MS)
  }
}

/** Events committed on the replica and not yet confirmed by the bus. */
const outboxDepth = async (r: Replica): Promise<number> => {
  const text = await (await get(r, '/metrics')).text()
  return Number(/^msr_relay_replication_outbox_depth (\d+)/m.exec(text)?.[1] ?? NaN)
}

/** Waits (up to a minute) for every outbox to be empty and the replicas to agree; false when they never did. */
const converge = async (replicas: Replica[]): Promise<boolean> =>
  waitUntil(
    async () => (await Promise.all(replicas.map(outboxDepth))).every(d => d === 0) && new Set(await fingerprints(replicas)).size === 1,
    'the replicas to agree',
    60_000,
    200,
  ).then(
    () => true,
    () => false,
  )

/**
 * Settles what was in flight to the killed replica (stored on the survivor `settler` or not), then checks
 * every replica against the model.
 */
const check = async (
  replicas: Replica[],
  authors: Author[],
  report: ReplicationCycleReport,
  faults: { lost: Set<string>; resurrected: Set<string>; stale: Set<string> },
  when: string,
  settler: number,
) => {
  const clients = await Promise.all(replicas.map(r => TestClient.connect(url(r))))
  try {
    for (const a of authors) {
      const inflight = a.events.filter(e => a.status.get(e.id) === 'inflight').map(e => e.id)
      const stored = await served(clients[settler] as TestClient, inflight)
      for (const id of inflight) a.status.set(id, stored.has(id) ? 'acked' : 'refused')
      for (const id of stored) settledAfterKill.add(id)
      report.inFlightStored += stored.size
      report.inFlightLost += inflight.length - stored.size
      const { present, deleted, replaced } = expectations(a)
      for (const [i, client] of clients.entries()) {
        const found = await served(client, [...present, ...deleted, ...replaced])
        const note = (set: Set<string>, what: string, id: string) => {
          if (!set.has(id) && report.problems.length < 20) report.problems.push(`${when}: replica ${i}: ${what} ${id}`)
          set.add(id)
        }
        const kind = (id: string) => `kind ${a.events.find(e => e.id === id)?.kind}${settledAfterKill.has(id) ? ', no OK: in flight at a kill' : ''}, sent ${new Date(sentAt.get(id) ?? 0).toISOString()}`
        for (const id of present) if (!found.has(id)) note(faults.lost, `lost (${kind(id)})`, id)
        for (const id of deleted) if (found.has(id)) note(faults.resurrected, 'deleted but served', id)
        for (const id of replaced) if (found.has(id)) note(faults.stale, 'replaced but served', id)
      }
    }
  } finally {
    await Promise.all(clients.map(c => c.close()))
  }
}

/**
 * One cycle: every author publishes on some replica; one replica is killed mid-ingest (the snapshot writer
 * once cut off the bus and snapshotted) and replaced empty while the others go on. Resolves with the victim.
 */
const cycle = async (cluster: Cluster, c: number, authors: Author[], rand: Random, options: Required<ReplicationCycleOptions>, report: ReplicationCycleReport): Promise<number> => {
  const sent = { n: 0 }
  const stop = { now: false }
  const signers = authors.map(a => a.signer)
  for (let slot = 0; slot < REPLICAS; slot++) await cluster.make(subscriptionOf(slot, c + 1))
  const clients = await Promise.all(authors.map((_, i) => TestClient.connect(url(cluster.replicas[(i + c) % REPLICAS] as Replica))))
  const publishing = clients.map((client, i) => publishBatches(client, authors[i] as Author, signers, rand.fork(), options.batch, sent, stop))
  const [min, max] = options.killAfterMs
  await sleep(rand.between(min, max))
  const victim = Math.floor(rand.next() * REPLICAS)
  // The window in which the snapshot writer's newest snapshot holds entries it never publishes is a few
  // milliseconds: cut it off the bus to open it, as a replica that lost its network before it died.
  const outbox = victim === SNAPSHOT_WRITER ? await cluster.cutOffUntilSnapshot(victim) : undefined
  await cluster.kill(victim)
  // Ingest goes on at the survivors while the replacement boots: what they accept after the newest snapshot
  // and before the replacement's subscription exists reaches it only by the seek.
  report.bootstrapSeconds.push(await cluster.start(victim, c + 1))
  if (outbox !== undefined) report.writerKills.push({ outbox, requeued: await requeuedBy(cluster.replicas[victim] as Replica) })
  for (let slot = 0; slot < REPLICAS; slot++) if (slot !== victim) await cluster.emulator.deleteSubscription(subscriptionOf(slot, c + 1))
  stop.now = true
  await withTimeout(Promise.all(publishing), 'the clients to finish their batches')
  await Promise.all(clients.map(client => client.close().catch(() => undefined)))
  report.sent += sent.n
  return victim
}

/** The replication entries a replacement's restore queued again (its log says so). */
const requeuedBy = async (r: Replica): Promise<number> => {
  const restored = await r.cli.waitForLog(l => l.message === 'restored the newest snapshot', 1000).catch(() => undefined)
  return Number(restored?.replicationQueued ?? 0)
}

/** The outage (soak): clients on every replica publish while the emulator is frozen; then everything must drain everywhere. */
const outage = async (cluster: Cluster, pauseMs: number, report: ReplicationCycleReport): Promise<void> => {
  const author = newSigner()
  const clients = await Promise.all(cluster.replicas.map(r => TestClient.connect(url(r))))
  const answers: Array<Promise<[string, string, boolean, string]>> = []
  const events: NostrEvent[] = []
  cluster.emulator.pause()
  const frozenAt = Date.now()
  try {
    for (let i = 0; Date.now() - frozenAt < pauseMs - 5_000; i++) {
      const event = sign(author, { content: `during the outage ${i}` })
      events.push(event)
      answers.push((clients[i % REPLICAS] as TestClient).publish(event) as Promise<[string, string, boolean, string]>)
      await sleep(1000)
    }
    const settled = await Promise.all(answers)
    const remainingMs = pauseMs - (Date.now() - frozenAt)
    if (remainingMs > 0) await sleep(remainingMs)
    const okTrue = settled.filter(ok => ok[2]).length
    const refused = settled.filter(ok => !ok[2] && ok[3].startsWith('error: ')).length
    report.outage = { sent: events.length, refusedWithError: refused, okTrueDuringPause: okTrue, notDrained: events.length, drainSeconds: NaN }
  } finally {
    cluster.emulator.resume()
  }
  const resumedAt = Date.now()
  const missing = async () => {
    let n = 0
    for (const client of clients) n += events.length - (await served(client, events.map(e => e.id))).size
    return n
  }
  await waitUntil(async () => (await missing()) === 0, 'the events of the outage to reach every replica', 60_000, 250).catch(() => undefined)
  const outageReport = report.outage as NonNullable<ReplicationCycleReport['outage']>
  outageReport.notDrained = await missing()
  outageReport.drainSeconds = (Date.now() - resumedAt) / 1000
  await Promise.all(clients.map(c => c.close()))
}

/** Runs the campaign (emulator, three replicas, a temporary directory; all gone afterwards) and returns its figures. */
export const runReplicationCycles = async (opts: ReplicationCycleOptions): Promise<ReplicationCycleReport> => {
  const options: Required<ReplicationCycleOptions> = { batch: 5, killAfterMs: [200, 800], pauseMs: 0, onCheck: () => undefined, subscriptionFromCreation: true, ...opts }
  const rand = seededRandom(options.seed)
  const report: ReplicationCycleReport = {
    cycles: 0, sent: 0, acknowledged: 0, refused: 0, inFlightStored: 0, inFlightLost: 0, losses: 0, resurrected: 0, stale: 0,
    fingerprintMismatches: 0, bootstrapSeconds: [], lastStoreEvents: 0, writerKills: [], problems: [],
  }
  const start = Math.floor(Date.now() / 1000) - 7 * 86_400
  const authors: Author[] = Array.from({ length: REPLICAS }, () => ({ signer: newSigner(), clock: start, events: [], status: new Map() }))
  const faults = { lost: new Set<string>(), resurrected: new Set<string>(), stale: new Set<string>() }
  const dir = await tempDir('msr-replication-cycles-')
  const emulator = await startEmulator()
  const cluster = new Cluster(emulator, dir, options.subscriptionFromCreation)
  try {
    await emulator.createTopic(TOPIC, { retentionSeconds: 86_400 })
    for (let slot = 0; slot < REPLICAS; slot++) await cluster.start(slot, 0)
    for (let c = 0; c < options.cycles; c++) {
      const victim = await cycle(cluster, c, authors, rand, options, report)
      if (!(await converge(cluster.replicas))) {
        report.fingerprintMismatches++
        const prints = await Promise.all(cluster.replicas.map(r => fingerprintOf(r).catch((error: unknown) => `unreachable (${String(error)})`)))
        report.problems.push(`after cycle ${c + 1}: fingerprints differ: ${prints.join(' ')}`)
        report.problems.push(...cluster.log.slice(-6).map(l => `  ${l}`))
        for (const replica of cluster.replicas) report.problems.push(`  replica ${replica.slot} (generation ${replica.generation}): ${await diagnosis(replica)}`)
      }
      await check(cluster.replicas, authors, report, faults, `after cycle ${c + 1}`, (victim + 1) % REPLICAS)
      report.cycles = c + 1
      Object.assign(report, { losses: faults.lost.size, resurrected: faults.resurrected.size, stale: faults.stale.size })
      options.onCheck(report)
    }
    report.lastStoreEvents = Number((await fingerprintOf(cluster.replicas[REPLICAS - 1] as Replica)).split(':')[0])
    if (options.pauseMs > 0) {
      await outage(cluster, options.pauseMs, report)
      if (!(await converge(cluster.replicas))) {
        report.fingerprintMismatches++
        report.problems.push(`after the outage: fingerprints differ: ${(await fingerprints(cluster.replicas)).join(' ')}`)
      }
    }
    const statuses = authors.flatMap(a => [...a.status.values()])
    report.acknowledged = statuses.filter(s => s === 'acked').length - report.inFlightStored
    report.refused = statuses.filter(s => s === 'refused').length - report.inFlightLost
    if (acked(authors[0] as Author).length === 0) report.problems.push('nothing acknowledged')
  } finally {
    await cluster.stop().catch(() => undefined)
    await emulator.stop()
    await rm(dir, { recursive: true, force: true })
  }
  return report
}

const percentile = (values: number[], p: number): number => [...values].sort((a, b) => a - b)[Math.min(values.length - 1, Math.floor((p / 100) * values.length))] ?? NaN

/** The one-line summary the test and the soak print. */
export const summary = (r: ReplicationCycleReport, seed: number): string =>
  `replication cycles: seed ${seed}, ${r.cycles} cycles (3 replicas, one SIGKILLed and replaced empty each), ${r.sent} sent, ${r.acknowledged} OK true, ` +
  `${r.refused} OK false, in flight at the kill ${r.inFlightStored} stored / ${r.inFlightLost} not; losses ${r.losses}, resurrected ${r.resurrected}, ` +
  `stale ${r.stale}, fingerprint mismatches ${r.fingerprintMismatches}; bootstrap to ready p50 ${percentile(r.bootstrapSeconds, 50).toFixed(1)} s, ` +
  `max ${Math.max(...r.bootstrapSeconds).toFixed(1)} s (last store ${r.lastStoreEvents} events); snapshot writer killed ${r.writerKills.length} times ` +
  `(outbox at the kill ${r.writerKills.map(k => k.outbox).join('/') || '-'}, queued again by its replacement ${r.writerKills.map(k => k.requeued).join('/') || '-'})` +
  (r.outage
    ? `; outage: ${r.outage.sent} sent while frozen, ${r.outage.refusedWithError} OK false "error:", ${r.outage.okTrueDuringPause} OK true, ` +
      `${r.outage.notDrained} not on every replica afterwards, drained in ${r.outage.drainSeconds.toFixed(1)} s`
    : '')
