// Hints under crash cycles, as the mailbox sees them: the relay CLI is SIGKILLed again and again during
// 445/446 ingest and restarted on the same data directory, its hints POSTed with the push token to the real
// mailbox API (`msr-mailbox serve` on embedded PostgreSQL, up throughout), as the local transport and a
// Pub/Sub push subscription deliver them. Every other kill lands at a random moment; the others right
// after the mailbox answered a push and before the relay reads the answer (the redelivery case). At the
// end every stored 445 has counted once in its group's registry entry and every stored 446 is listed once
// for each recipient: nothing applied twice, nothing missing, and the redeliveries are counted.
import { createServer, type IncomingMessage, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { seededRandom, type Random } from '@msr/bench'
import { decodePushEnvelope } from '@msr/hints'
import { createMailboxClient } from '@msr/mailbox-client'
import { finalizeEvent, type NostrEvent } from 'nostr-tools/pure'
import WebSocket from 'ws'
import { eventually, freePort, MAILBOX_CLI, newSigner, RELAY_CLI, removeDir, sample, sleep, spawnService, tempDir, waitReady, type Service, type Signer } from './platform.js'

/** What a campaign runs. */
export interface HintCrashOptions {
  cycles: number
  seed: number
  /** Client connections publishing at once. */
  clients?: number
  /** Events each client sends before awaiting their OKs. */
  batch?: number
  /** Traffic before a kill, drawn uniformly in [min, max] ms. */
  killAfterMs?: [number, number]
  /** Called after each cycle with the figures so far (the soak's progress lines). */
  onCycle?: (report: Readonly<HintCrashReport>) => void
}

/** What a campaign found: `lost`, `missing`, `doubleApplied` and `phantom` must be 0. */
export interface HintCrashReport {
  cycles: number
  /** Kills timed between the mailbox's answer to a push and the relay reading it. */
  killsAfterCommit: number
  sent: number
  acknowledged: number
  /** Events with OK true the relay no longer serves at the end. */
  lost: number
  stored445: number
  stored446: number
  /** Pushes the mailbox answered 2xx (every delivery, redeliveries included). */
  deliveries: number
  /** Deliveries of a hint the mailbox had already had. */
  redeliveries: number
  /** The mailbox's own count (msr_mailbox_hints_total): applied, and recognised as duplicates. */
  applied: number
  duplicates: number
  /** Stored 445s not counted in their group, and 446s not listed for a recipient. */
  missing: number
  /** Hints whose effect the mailbox shows more than once (group counts above the stored 445s, dm hints listed twice). */
  doubleApplied: number
  /** Effects with no stored event behind them. */
  phantom: number
  /** One line per problem found (first 20). */
  problems: string[]
}

const TOKEN = 'hint-crash-cycles-push-token-0123'
const METRICS_KEY = 'hint-crash-cycles-metrics-key-0123'
const GROUPS = ['crash-group-a', 'crash-group-b', 'crash-group-c']

/** The mailbox's push route behind a forwarding proxy that counts deliveries and can kill the relay on the next answer. */
class PushProxy {
  readonly deliveries = new Map<string, number>()
  /** Set: called once, instead of forwarding the answer, when the mailbox next answers 2xx. */
  onNextCommit: (() => void) | undefined
  private server!: Server

  constructor(private readonly target: string) {}

  async start(): Promise<this> {
    this.server = createServer((req, res) => void this.forward(req).then(
      code => (code === undefined ? res.destroy() : res.writeHead(code).end()),
      () => res.writeHead(502).end(),
    ))
    await new Promise<void>(resolve => this.server.listen(0, '127.0.0.1', () => resolve()))
    return this
  }

  get url(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/internal/pubsub/push`
  }

  /** The mailbox's status, or undefined when the relay was killed instead of being answered. */
  private async forward(req: IncomingMessage): Promise<number | undefined> {
    const chunks: Buffer[] = []
    for await (const chunk of req) chunks.push(chunk as Buffer)
    const body = Buffer.concat(chunks)
    const res = await fetch(this.target, { method: 'POST', headers: { 'content-type': 'application/json', authorization: req.headers.authorization ?? '' }, body })
    await res.arrayBuffer()
    if (!res.ok) return res.status
    const decoded = decodePushEnvelope(JSON.parse(body.toString('utf8')))
    if (decoded.ok) this.deliveries.set(decoded.hint.id, (this.deliveries.get(decoded.hint.id) ?? 0) + 1)
    const kill = this.onNextCommit
    if (!kill) return res.status
    this.onNextCommit = undefined
    kill()
    return undefined
  }

  close(): Promise<void> {
    this.server.closeAllConnections()
    return new Promise(resolve => this.server.close(() => resolve()))
  }
}

/** A publishing connection whose pending OKs fail when the relay goes away. */
class Publisher {
  private readonly pending = new Map<string, { resolve: (ok: boolean) => void; reject: (e: Error) => void }>()
  open = true

  private constructor(readonly ws: WebSocket) {
    ws.on('message', data => {
      const m = JSON.parse(String(data)) as unknown[]
      if (m[0] === 'OK') this.pending.get(m[1] as string)?.resolve(m[2] === true)
    })
    ws.on('close', () => {
      this.open = false
      for (const p of this.pending.values()) p.reject(new Error('connection closed'))
    })
    ws.on('error', () => undefined)
  }

  static connect(url: string): Promise<Publisher> {
    const ws = new WebSocket(url)
    const publisher = new Publisher(ws)
    return new Promise((resolve, reject) => {
      ws.once('open', () => resolve(publisher))
      ws.once('error', reject)
    })
  }

  publish(event: NostrEvent): Promise<boolean> {
    const answer = new Promise<boolean>((resolve, reject) => this.pending.set(event.id, { resolve, reject }))
    this.ws.send(JSON.stringify(['EVENT', event]))
    return answer.finally(() => this.pending.delete(event.id))
  }

  /** REQ by ids until EOSE, then CLOSE (a connection may hold only so many subscriptions); rejects on CLOSED. */
  async query(ids: string[]): Promise<Set<string>> {
    const sub = `q${Math.random().toString(36).slice(2)}`
    const found = new Set<string>()
    await new Promise<void>((resolve, reject) => {
      const onMessage = (data: WebSocket.RawData): void => {
        const m = JSON.parse(String(data)) as unknown[]
        if (m[1] !== sub) return
        if (m[0] === 'EVENT') found.add((m[2] as NostrEvent).id)
        if (m[0] !== 'EOSE' && m[0] !== 'CLOSED') return
        this.ws.off('message', onMessage)
        if (m[0] === 'CLOSED') return reject(new Error(`REQ closed: ${String(m[2])}`))
        this.ws.send(JSON.stringify(['CLOSE', sub]))
        resolve()
      }
      this.ws.on('message', onMessage)
      this.ws.send(JSON.stringify(['REQ', sub, { ids, limit: ids.length }]))
    })
    return found
  }
}

/** The campaign's events and what the relay said of each. */
interface Ledger {
  events: NostrEvent[]
  acked: Set<string>
  epochs: Map<string, number>
  clock: number
  recipients: Signer[]
}

const tag = (e: NostrEvent, name: string): string[] => e.tags.filter(t => t[0] === name).map(t => t[1] as string)

/** A 445 to one of the groups (its epoch rising) or a 446 to one or two of the recipients. */
const nextEvent = (ledger: Ledger, sender: Signer, rand: Random): NostrEvent => {
  const created_at = ++ledger.clock
  if (rand.chance(0.5)) {
    const group = rand.pick(GROUPS)
    const epoch = (ledger.epochs.get(group) ?? 0) + rand.below(2)
    ledger.epochs.set(group, epoch)
    return finalizeEvent({ kind: 445, created_at, tags: [['h', group], ['k', String(epoch)]], content: 'mls ciphertext' }, sender.secretKey)
  }
  const to = rand.chance(0.3) ? ledger.recipients.slice(0, 2) : [rand.pick(ledger.recipients)]
  return finalizeEvent({ kind: 446, created_at, tags: to.map(r => ['p', r.pubkey]), content: 'noise ciphertext' }, sender.secretKey)
}

/** One client publishing pipelined batches until its connection dies. */
const publishUntilClosed = async (client: Publisher, ledger: Ledger, rand: Random, batch: number): Promise<void> => {
  const sender = newSigner()
  while (client.open) {
    const events = Array.from({ length: batch }, () => nextEvent(ledger, sender, rand))
    ledger.events.push(...events)
    const settled = await Promise.allSettled(events.map(e => client.publish(e).then(ok => void (ok && ledger.acked.add(e.id)))))
    if (settled.some(s => s.status === 'rejected')) return
  }
}

/** The relay's environment: one data directory for every cycle, hints through the proxy with the push token. */
const relayEnv = (dir: string, port: number, pushUrl: string): Record<string, string> => ({
  PORT: String(port),
  RELAY_DATA__PATH: join(dir, 'relay'),
  RELAY_HINTS__TRANSPORT: 'local',
  RELAY_HINTS__PUSH_URL: pushUrl,
  RELAY_HINTS__PUSH_TOKEN: TOKEN,
  RELAY_HINTS__MAX_BACKOFF: '"400ms"',
  RELAY_AUTH__AUTH_REQUIRED_KINDS: '[]',
  RELAY_AUTH__PRIVATE_KINDS: '[]',
  RELAY_RATE_LIMITER__ENABLED: 'false',
  RELAY_VERIFICATION__WORKERS: '1',
  RELAY_METRICS__ENABLED: 'true',
  RELAY_METRICS__AUTH: METRICS_KEY,
  RELAY_DATA__DB_QUERY_TIMEOUT: '"10s"',
})

const scrape = async (url: string): Promise<string> => (await fetch(url, { headers: { authorization: `Bearer ${METRICS_KEY}` } })).text()

/** One cycle: publish from every client, SIGKILL (at random; in odd cycles on the next committed push), wait for the exit. */
const cycle = async (relay: Service, url: string, proxy: PushProxy, ledger: Ledger, rand: Random, options: Required<HintCrashOptions>, report: HintCrashReport) => {
  const clients = await Promise.all(Array.from({ length: options.clients }, () => Publisher.connect(url)))
  const publishing = clients.map(c => publishUntilClosed(c, ledger, rand.fork(), options.batch))
  await sleep(rand.between(...options.killAfterMs))
  const kill = () => void relay.child.kill('SIGKILL')
  if (report.cycles % 2 === 1) {
    proxy.onNextCommit = () => (report.killsAfterCommit++, kill())
    // No push within a second (nothing new to hint): a plain kill.
    await Promise.race([relay.exited, sleep(1000)])
    proxy.onNextCommit = undefined
  }
  kill()
  await relay.exited
  await Promise.all(publishing)
  for (const c of clients) c.ws.terminate()
}

/** Stored ids among `ids`, asked of a running relay 200 at a time. */
const storedAmong = async (url: string, ids: string[]): Promise<Set<string>> => {
  const client = await Publisher.connect(url)
  const found = new Set<string>()
  for (let i = 0; i < ids.length; i += 200) for (const id of await client.query(ids.slice(i, i + 200))) found.add(id)
  client.ws.close()
  return found
}

/** Every dm hint id listed for `recipient`, all pages, repeats kept. */
const listedDmHints = async (mailbox: string, recipient: Signer): Promise<string[]> => {
  const client = createMailboxClient({ baseUrl: mailbox, signer: recipient.secretKey })
  const ids: string[] = []
  let cursor: string | undefined
  do {
    const page = await client.dmHints.list({ limit: 500, ...(cursor && { cursor }) })
    ids.push(...page.items.map(h => h.eventId))
    cursor = page.nextCursor
  } while (cursor)
  return ids
}

/** Compares what the mailbox shows with the stored 445/446 events. */
const checkMailbox = async (mailbox: string, stored: NostrEvent[], ledger: Ledger, report: HintCrashReport) => {
  const problem = (line: string) => void (report.problems.length < 20 && report.problems.push(line))
  const reader = createMailboxClient({ baseUrl: mailbox, signer: newSigner().secretKey })
  for (const group of GROUPS) {
    const messages = stored.filter(e => e.kind === 445 && tag(e, 'h')[0] === group)
    const entry = await reader.groups.get(group)
    const counted = entry?.messageCount ?? 0
    report.missing += Math.max(0, messages.length - counted)
    report.doubleApplied += Math.max(0, counted - messages.length)
    if (counted !== messages.length) problem(`${group}: ${counted} messages counted, ${messages.length} stored`)
    const epoch = Math.max(...messages.map(e => Number(tag(e, 'k')[0])))
    if (messages.length > 0 && entry?.lastEpoch !== epoch) problem(`${group}: epoch ${String(entry?.lastEpoch)}, stored up to ${epoch}`)
  }
  for (const recipient of ledger.recipients) {
    const expected = new Set(stored.filter(e => e.kind === 446 && tag(e, 'p').includes(recipient.pubkey)).map(e => e.id))
    const listed = await listedDmHints(mailbox, recipient)
    const once = new Set(listed)
    report.doubleApplied += listed.length - once.size
    const absent = [...expected].filter(id => !once.has(id))
    const phantom = [...once].filter(id => !expected.has(id))
    report.missing += absent.length
    report.phantom += phantom.length
    for (const id of absent) problem(`no dm hint for ${id.slice(0, 12)} to ${recipient.pubkey.slice(0, 8)}`)
    for (const id of phantom) problem(`dm hint ${id.slice(0, 12)} with no stored event`)
  }
}

/** Runs the campaign on a fresh temporary directory (removed afterwards) and returns its figures. */
export const runHintCrashCycles = async (opts: HintCrashOptions): Promise<HintCrashReport> => {
  const options: Required<HintCrashOptions> = { clients: 3, batch: 5, killAfterMs: [100, 600], onCycle: () => undefined, ...opts }
  const rand = seededRandom(options.seed)
  const report: HintCrashReport = {
    cycles: 0, killsAfterCommit: 0, sent: 0, acknowledged: 0, lost: 0, stored445: 0, stored446: 0, deliveries: 0, redeliveries: 0,
    applied: 0, duplicates: 0, missing: 0, doubleApplied: 0, phantom: 0, problems: [],
  }
  const ledger: Ledger = { events: [], acked: new Set(), epochs: new Map(), clock: Math.floor(Date.now() / 1000) - 7 * 86_400, recipients: [newSigner(), newSigner(), newSigner()] }
  const dir = await tempDir()
  const [relayPort, mailboxPort, pgPort] = [await freePort(), await freePort(), await freePort()]
  const mailboxUrl = `http://127.0.0.1:${mailboxPort}`
  const mailbox = spawnService(MAILBOX_CLI, ['serve'], {
    PORT: String(mailboxPort), MAILBOX_DATA_DIR: join(dir, 'postgres'), MAILBOX_EMBEDDED_PG_PORT: String(pgPort), HINTS_PUSH_TOKEN: TOKEN, METRICS_AUTH: METRICS_KEY,
  })
  const proxy = await new PushProxy(`${mailboxUrl}/internal/pubsub/push`).start()
  const env = relayEnv(dir, relayPort, proxy.url)
  const relayUrl = `ws://127.0.0.1:${relayPort}`
  let relay: Service | undefined
  try {
    await waitReady(mailbox, `${mailboxUrl}/readyz`, 'the mailbox API')
    for (let i = 0; i <= options.cycles; i++) {
      relay = spawnService(RELAY_CLI, ['serve'], env)
      await waitReady(relay, `http://127.0.0.1:${relayPort}/readyz`, 'the relay')
      if (i === options.cycles) break
      await cycle(relay, relayUrl, proxy, ledger, rand, options, report)
      report.cycles = i + 1
      options.onCycle({ ...report, sent: ledger.events.length })
    }
    // The last relay drains its outbox (what the killed ones left included), then the mailbox is compared.
    await eventually(async () => (sample(await scrape(`http://127.0.0.1:${relayPort}/metrics`), 'msr_relay_hint_outbox_depth') === 0 ? true : undefined), 'the outbox to drain', 60_000)
    const stored = await storedAmong(relayUrl, ledger.events.map(e => e.id))
    const kept = ledger.events.filter(e => stored.has(e.id))
    report.sent = ledger.events.length
    report.acknowledged = ledger.acked.size
    report.lost = [...ledger.acked].filter(id => !stored.has(id)).length
    report.stored445 = kept.filter(e => e.kind === 445).length
    report.stored446 = kept.filter(e => e.kind === 446).length
    report.deliveries = [...proxy.deliveries.values()].reduce((a, b) => a + b, 0)
    report.redeliveries = report.deliveries - proxy.deliveries.size
    const metrics = await scrape(`${mailboxUrl}/metrics`)
    const count = (outcome: string) => [445, 446].reduce((n, kind) => n + sample(metrics, `msr_mailbox_hints_total{kind="${kind}",outcome="${outcome}"}`), 0)
    report.applied = count('applied')
    report.duplicates = count('duplicate')
    await checkMailbox(mailboxUrl, kept, ledger, report)
  } finally {
    await relay?.stop()
    await proxy.close()
    await mailbox.stop()
    await removeDir(dir)
  }
  return report
}

/** The one-line summary the soak prints. */
export const summary = (r: HintCrashReport, seed: number): string =>
  `hint crash cycles: seed ${seed}, ${r.cycles} SIGKILLs (${r.killsAfterCommit} between the mailbox's answer and the relay reading it), ` +
  `${r.sent} sent, ${r.acknowledged} OK true, lost ${r.lost}; stored 445 ${r.stored445}, 446 ${r.stored446}; deliveries ${r.deliveries}, ` +
  `redeliveries ${r.redeliveries}; mailbox applied ${r.applied}, duplicates ${r.duplicates}; missing ${r.missing}, applied twice ${r.doubleApplied}, phantom ${r.phantom}`
