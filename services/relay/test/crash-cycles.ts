// Crash cycles (the reliability campaign): the relay CLI is SIGKILLed at random moments while several
// clients publish a seeded mix (notes, replaceable, addressable, NIP-09 deletions by e and by a, 445 and
// 446 with hint tags) and snapshots are written; after each restart on the same data directory every event
// that got OK true must be served (replaceable: the newest), no deleted or replaced event may come back,
// and at the end the push endpoint must have seen a hint for every stored 445/446 (at least once).
import { mkdtemp, readdir, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { seededRandom, type Random } from '@msr/bench'
import { PushEndpoint } from './push-endpoint.js'
import {
  freePort,
  newSigner,
  serveCli,
  sign,
  stopCli,
  TestClient,
  waitUntil,
  withTimeout,
  type CliProcess,
  type NostrEvent,
  type Signer,
} from './harness.js'

/** What a campaign runs. */
export interface CrashOptions {
  cycles: number
  seed: number
  /** Client connections publishing at once. */
  clients?: number
  /** Events each client sends before awaiting their OKs. */
  batch?: number
  /** Traffic before the SIGKILL, drawn uniformly in [min, max] ms. */
  killAfterMs?: [number, number]
  /** RELAY_BACKUP__INTERVAL: short, so snapshots run when the kill comes. */
  snapshotInterval?: string
  /** How long the last relay may take to deliver every hint. */
  hintTimeoutMs?: number
  /** Called after each cycle's check, with the figures so far (the soak's progress lines). */
  onCheck?: (report: Readonly<CrashReport>) => void
  /** Where the campaign's temporary directory (store, snapshots) is made: the OS's temp dir by default. */
  base?: string
  /** More RELAY_* settings for every relay of the campaign. */
  env?: Record<string, string>
}

/** What any kill-cycle campaign counts (this one's crash cycles, and replication-cycles.ts's). */
export interface CycleTally {
  cycles: number
  sent: number
  acknowledged: number
  refused: number
  /** Sent with no OK before the kill, found stored afterwards / not. */
  inFlightStored: number
  inFlightLost: number
  /** Events that must be served (OK true, not deleted, not replaced) and were not at some check (distinct ids). */
  losses: number
  /** Events deleted by an OK-true deletion that were served again. */
  resurrected: number
  /** Replaced versions of replaceable/addressable events served again. */
  stale: number
  /** One line per problem found (first 20), for the failure message. */
  problems: string[]
}

/** What a campaign found: `losses`, `resurrected`, `stale` and `hintsMissing` must all be 0. */
export interface CrashReport extends CycleTally {
  hintsExpected: number
  hintsSeen: number
  hintsMissing: number
  /** Hints delivered more than once (redelivery after a kill), counted per extra delivery. */
  hintDuplicates: number
  snapshotsWritten: number
  /** Temporary files of snapshots a kill interrupted, still in the target at the end. */
  snapshotTempsLeft: number
  /** A relay on an empty directory restored from the snapshots after the last (clean) stop: the events it serves. */
  restoredEvents: number
  /** The same check on that restored relay: lost, deleted but served, replaced but served (distinct ids). */
  restoreFaults: number
}

export type Status = 'acked' | 'inflight' | 'refused'

/** One author's events and what the relay said about them. */
export interface Author {
  signer: Signer
  clock: number
  events: NostrEvent[]
  status: Map<string, Status>
}

const REPLACEABLE = [0, 3]
const ADDRESSABLE = 30000
const D_TAGS = ['alpha', 'beta', 'gamma']
const GROUP = 'c0ffee00c0ffee00'

const slotOf = (e: NostrEvent): string | undefined => {
  if (REPLACEABLE.includes(e.kind)) return `${e.kind}:${e.pubkey}`
  if (e.kind === ADDRESSABLE) return `${e.kind}:${e.pubkey}:${e.tags.find(t => t[0] === 'd')?.[1] ?? ''}`
  return undefined
}

export const acked = (a: Author): NostrEvent[] => a.events.filter(e => a.status.get(e.id) === 'acked')

/** The next event of the mix for `author`: deletions target only its own events that got OK true. */
export const nextEvent = (a: Author, others: Signer[], rand: Random): NostrEvent => {
  const pick = rand.pick
  const created_at = ++a.clock
  const r = rand.next()
  if (r < 0.1) {
    const notes = acked(a).filter(e => e.kind === 1)
    if (notes.length > 0) return sign(a.signer, { kind: 5, created_at, tags: [['e', pick(notes).id]] })
  } else if (r < 0.15) {
    const slots = [...new Set(acked(a).filter(e => e.kind === ADDRESSABLE).map(slotOf))]
    if (slots.length > 0) return sign(a.signer, { kind: 5, created_at, tags: [['a', pick(slots) as string]] })
  } else if (r < 0.25) return sign(a.signer, { kind: pick(REPLACEABLE), created_at, content: `v${created_at}` })
  else if (r < 0.4) return sign(a.signer, { kind: ADDRESSABLE, created_at, tags: [['d', pick(D_TAGS)]], content: `v${created_at}` })
  else if (r < 0.55) return sign(a.signer, { kind: 445, created_at, tags: [['h', GROUP], ['k', String(created_at % 100)]], content: 'mls ciphertext' })
  else if (r < 0.7) return sign(a.signer, { kind: 446, created_at, tags: [['p', pick(others).pubkey]], content: 'noise ciphertext' })
  return sign(a.signer, { kind: 1, created_at, content: `note ${created_at}` })
}

/** One client publishing in batches until its connection dies; every OK is recorded as it arrives. */
const publishUntilClosed = async (client: TestClient, a: Author, others: Signer[], rand: Random, batch: number, sent: { n: number }) => {
  while (client.isOpen) {
    const events = Array.from({ length: batch }, () => nextEvent(a, others, rand))
    const replies = events.map(e => {
      a.events.push(e)
      a.status.set(e.id, 'inflight')
      sent.n++
      return client.publish(e).then(ok => void a.status.set(e.id, ok[2] ? 'acked' : 'refused'))
    })
    const settled = await Promise.allSettled(replies)
    if (settled.some(s => s.status === 'rejected')) return
  }
}

/** The ids among `wanted` the relay serves (REQs by ids, 200 a filter). */
export const served = async (client: TestClient, wanted: string[]): Promise<Set<string>> => {
  const found = new Set<string>()
  for (let i = 0; i < wanted.length; i += 200) {
    const chunk = wanted.slice(i, i + 200)
    for (const e of await client.query({ ids: chunk, limit: chunk.length })) found.add(e.id)
  }
  return found
}

/** What the model says must be served and must not be, from the events that got OK true. */
export const expectations = (a: Author): { present: Set<string>; deleted: Set<string>; replaced: Set<string> } => {
  const events = acked(a)
  const deletedIds = new Set<string>()
  const slotDeletedAt = new Map<string, number>()
  for (const e of events.filter(x => x.kind === 5)) {
    for (const [name, value] of e.tags) {
      if (name === 'e' && value) deletedIds.add(value)
      if (name === 'a' && value) slotDeletedAt.set(value, Math.max(slotDeletedAt.get(value) ?? 0, e.created_at))
    }
  }
  const newest = new Map<string, NostrEvent>()
  for (const e of events) {
    const slot = slotOf(e)
    if (!slot) continue
    const best = newest.get(slot)
    if (!best || e.created_at > best.created_at) newest.set(slot, e)
  }
  const present = new Set<string>()
  const deleted = new Set<string>()
  const replaced = new Set<string>()
  for (const e of events) {
    const slot = slotOf(e)
    if (deletedIds.has(e.id) || (slot && (slotDeletedAt.get(slot) ?? -1) >= e.created_at)) deleted.add(e.id)
    else if (slot && newest.get(slot) !== e) replaced.add(e.id)
    else present.add(e.id)
  }
  return { present, deleted, replaced }
}

/** Ids found wrong at any check (each counted once however many checks see it). */
interface Faults {
  lost: Set<string>
  resurrected: Set<string>
  stale: Set<string>
}

/** After a restart: settles what was in flight at the kill, then checks the model against the relay. */
const check = async (url: string, authors: Author[], report: CrashReport, faults: Faults, when: string): Promise<void> => {
  const client = await TestClient.connect(url)
  try {
    for (const a of authors) {
      const inflight = a.events.filter(e => a.status.get(e.id) === 'inflight').map(e => e.id)
      const stored = await served(client, inflight)
      for (const id of inflight) a.status.set(id, stored.has(id) ? 'acked' : 'refused')
      report.inFlightStored += stored.size
      report.inFlightLost += inflight.length - stored.size
      const { present, deleted, replaced } = expectations(a)
      const found = await served(client, [...present, ...deleted, ...replaced])
      const note = (set: Set<string>, what: string, id: string) => {
        if (!set.has(id) && report.problems.length < 20) report.problems.push(`${when}: ${what} ${id}`)
        set.add(id)
      }
      for (const id of present) if (!found.has(id)) note(faults.lost, 'lost', id)
      for (const id of deleted) if (found.has(id)) note(faults.resurrected, 'deleted but served', id)
      for (const id of replaced) if (found.has(id)) note(faults.stale, 'replaced but served', id)
    }
  } finally {
    await client.close()
  }
}

/** The relay's environment: one data directory for every cycle, hints to `push`, snapshots to a directory. */
const relayEnv = (dir: string, push: PushEndpoint, snapshotInterval: string): Record<string, string> => ({
  RELAY_DATA__PATH: join(dir, 'data'),
  RELAY_HINTS__TRANSPORT: 'local',
  RELAY_HINTS__PUSH_URL: push.url,
  RELAY_HINTS__PUSH_TOKEN: 'push-token-for-crash-cycles-0123',
  RELAY_HINTS__MAX_BACKOFF: '400ms',
  RELAY_BACKUP__TARGET: join(dir, 'snapshots'),
  RELAY_BACKUP__INTERVAL: snapshotInterval,
  RELAY_BACKUP__KEEP: '2',
  RELAY_AUTH__AUTH_REQUIRED_KINDS: '[]',
  RELAY_AUTH__PRIVATE_KINDS: '[]',
  RELAY_RATE_LIMITER__ENABLED: 'false',
  // The checks read hundreds of ids at once on a machine the test shares; the default 100 ms is for clients.
  RELAY_DATA__DB_QUERY_TIMEOUT: '10s',
})

const snapshotLines = (cli: CliProcess): number => cli.stdout.filter(line => line.includes('"snapshot written"')).length

/** One cycle on a started relay: publish from every client, SIGKILL after a random delay, wait for the exit. */
const cycle = async (cli: CliProcess, port: number, authors: Author[], rand: Random, options: Required<CrashOptions>, report: CrashReport) => {
  const sent = { n: 0 }
  try {
    const clients = await Promise.all(authors.map(() => TestClient.connect(`ws://127.0.0.1:${port}`)))
    const signers = authors.map(a => a.signer)
    const publishing = clients.map((c, i) => publishUntilClosed(c, authors[i] as Author, signers, rand.fork(), options.batch, sent))
    const [min, max] = options.killAfterMs
    await sleep(rand.between(min, max))
    cli.child.kill('SIGKILL')
    await withTimeout(cli.exited, 'the killed relay to exit')
    await withTimeout(Promise.all(publishing), 'the clients to see the connection close')
    for (const c of clients) c.ws.terminate()
  } finally {
    if (cli.child.exitCode === null && cli.child.signalCode === null) cli.child.kill('SIGKILL')
    await cli.exited
  }
  report.sent += sent.n
  report.snapshotsWritten += snapshotLines(cli)
}

const hintKinds = new Set([445, 446])

/** Waits until the push endpoint has a hint of every stored 445/446; counts what it saw. */
const awaitHints = async (push: PushEndpoint, authors: Author[], report: CrashReport, timeoutMs: number) => {
  const expected = authors.flatMap(a => acked(a).filter(e => hintKinds.has(e.kind)).map(e => e.id))
  const seen = () => new Set(push.accepted.map(r => r.hint.id))
  await waitUntil(() => expected.every(id => seen().has(id)), 'a hint of every stored 445/446', timeoutMs, 100).catch(() => undefined)
  const got = seen()
  report.hintsExpected = expected.length
  report.hintsSeen = expected.filter(id => got.has(id)).length
  report.hintsMissing = report.hintsExpected - report.hintsSeen
  report.hintDuplicates = push.accepted.length - got.size
  for (const id of expected.filter(x => !got.has(x)).slice(0, 5)) report.problems.push(`no hint for ${id}`)
}

/**
 * After the last stop (SIGTERM, so a last snapshot holds everything): a relay on an empty directory restores
 * from the snapshots and must pass the same check; also counts temporary files kills left in the target.
 */
const checkRestore = async (port: number, env: Record<string, string>, dir: string, authors: Author[], report: CrashReport) => {
  const target = env.RELAY_BACKUP__TARGET as string
  report.snapshotTempsLeft = (await readdir(target)).filter(name => name.endsWith('.tmp')).length
  const restoreEnv = { ...env, RELAY_DATA__PATH: join(dir, 'restored'), RELAY_HINTS__TRANSPORT: 'none', RELAY_BACKUP__ON_SHUTDOWN: 'false' }
  const cli = await serveCli(port, restoreEnv, dir)
  const faults: Faults = { lost: new Set(), resurrected: new Set(), stale: new Set() }
  try {
    const client = await TestClient.connect(`ws://127.0.0.1:${port}`)
    report.restoredEvents = (await served(client, authors.flatMap(a => acked(a).map(e => e.id)))).size
    await client.close()
    await check(`ws://127.0.0.1:${port}`, authors, report, faults, 'restored from the snapshots')
  } finally {
    await stopCli(cli)
  }
  report.restoreFaults = faults.lost.size + faults.resurrected.size + faults.stale.size
}

/** Runs the campaign on a fresh temporary directory (removed afterwards) and returns its figures. */
export const runCrashCycles = async (opts: CrashOptions): Promise<CrashReport> => {
  const options: Required<CrashOptions> = {
    clients: 3,
    batch: 5,
    killAfterMs: [50, 500],
    snapshotInterval: '150ms',
    hintTimeoutMs: 30_000,
    onCheck: () => undefined,
    base: tmpdir(),
    env: {},
    ...opts,
  }
  const rand = seededRandom(options.seed)
  const report: CrashReport = {
    cycles: 0, sent: 0, acknowledged: 0, refused: 0, inFlightStored: 0, inFlightLost: 0, losses: 0, resurrected: 0, stale: 0,
    hintsExpected: 0, hintsSeen: 0, hintsMissing: 0, hintDuplicates: 0, snapshotsWritten: 0, snapshotTempsLeft: 0, restoredEvents: 0, restoreFaults: 0, problems: [],
  }
  // Old enough that a whole soak's clock (one second per event) stays in the past.
  const start = Math.floor(Date.now() / 1000) - 7 * 86_400
  const authors: Author[] = Array.from({ length: options.clients }, () => ({ signer: newSigner(), clock: start, events: [], status: new Map() }))
  const dir = await mkdtemp(join(options.base, 'msr-crash-cycles-'))
  const push = await new PushEndpoint().start()
  const env = { ...relayEnv(dir, push, options.snapshotInterval), ...options.env }
  const port = await freePort()
  const faults: Faults = { lost: new Set(), resurrected: new Set(), stale: new Set() }
  try {
    // Each start after a kill first checks what the killed relay left, then takes the next cycle's traffic.
    for (let i = 0; i <= options.cycles; i++) {
      const cli = await serveCli(port, env, dir)
      if (i > 0) await check(`ws://127.0.0.1:${port}`, authors, report, faults, `after kill ${i}`).catch(async error => {
        await stopCli(cli)
        throw error
      })
      if (i > 0) options.onCheck({ ...report, losses: faults.lost.size, resurrected: faults.resurrected.size, stale: faults.stale.size })
      if (i === options.cycles) {
        await awaitHints(push, authors, report, options.hintTimeoutMs).finally(() => stopCli(cli))
        report.snapshotsWritten += snapshotLines(cli)
        break
      }
      await cycle(cli, port, authors, rand, options, report)
      report.cycles = i + 1
    }
    Object.assign(report, { losses: faults.lost.size, resurrected: faults.resurrected.size, stale: faults.stale.size })
    await checkRestore(port, env, dir, authors, report)
    const statuses = authors.flatMap(a => [...a.status.values()])
    report.acknowledged = statuses.filter(s => s === 'acked').length - report.inFlightStored
    report.refused = statuses.filter(s => s === 'refused').length - report.inFlightLost
  } finally {
    await push.close()
    await rm(dir, { recursive: true, force: true })
  }
  return report
}

/** The one-line summary the soak prints. */
export const summary = (r: CrashReport, seed: number): string =>
  `crash cycles: seed ${seed}, ${r.cycles} cycles, ${r.sent} sent, ${r.acknowledged} OK true, ${r.refused} OK false, ` +
  `in flight at the kill ${r.inFlightStored} stored / ${r.inFlightLost} not; losses ${r.losses}, resurrected ${r.resurrected}, ` +
  `stale ${r.stale}; hints expected ${r.hintsExpected}, seen ${r.hintsSeen}, missing ${r.hintsMissing}, duplicates ${r.hintDuplicates}; ` +
  `snapshots ${r.snapshotsWritten} (temporary files left ${r.snapshotTempsLeft}); restored from them ${r.restoredEvents} events, ` +
  `faults ${r.restoreFaults}`
