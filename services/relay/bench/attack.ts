// Attacks on the relay, as measured runs: `npm run attack -w services/relay` (or node
// services/relay/dist/bench/attack.js [--cli PATH] [--seconds N] [--attack subscriptions,slow-readers,flood]).
//
// A relay child on loopback; a publisher sends tagged notes (about 100/s) by a few authors; a probe
// measures REQ→EOSE round trips (20/s) before, during and after each attack, one after the other:
// - subscriptions (the one the fuzzer found): 8 connections, each sending 50 REQs of 20 filters with 300
//   authors (the publisher's among them) and 1,400 `#t` values (~470 KiB per REQ); what the attackers'
//   REQs got, and a fresh client's first round trip after they left;
// - slow-readers: 10 connections subscribe to every note and never read, while a second publisher sends
//   1,000 notes of 4 KiB a second: the relay must disconnect them (client_drops_total{cause="slow"})
//   with its memory bounded;
// - flood: 2,000 connections opened at once from one address: those over max_connections_per_ip refused
//   (HTTP 429, refused_connections_total), the others held, then closed.
// Reports the probe's p50/p99 per phase and the relay's RSS (baseline, peak during, 10 s after each).
// Bounded: every phase has a fixed duration; loopback only.
import { createHash, randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { parseArgs } from 'node:util'
import type { Socket } from 'node:net'
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads'
import WebSocket from 'ws'
import { loadSigner, ms, summarize, type Signer } from '@msr/bench'
import { BenchSocket, verbOf } from './bench-socket.js'
import { startRelayProcess, type RelayProcess } from './relay-process.js'

const ATTACKERS = 8
const SUBS = 50
const FILTERS = 20
const AUTHORS = 300
const TOPICS = 1400

const sleep = (milliseconds: number) => new Promise(resolve => setTimeout(resolve, milliseconds))
const hex = () => randomBytes(32).toString('hex')
const rssMiB = (pid: number): number => {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').find(l => l.startsWith('VmRSS:'))
  return Number(line?.split(/\s+/)[1] ?? 0) / 1024
}

/** A signed kind-1 note by `secret`, tagged with a few of the attackers' topics; `padding` bytes of content more. */
const note = (signer: Signer, secret: Buffer, pubkey: string, n: number, padding = 0): string => {
  const created_at = Math.floor(Date.now() / 1000)
  const tags = [['t', `topic-${n % TOPICS}`], ['t', `topic-${(n * 7) % TOPICS}`], ['t', 'elsewhere']]
  const content = `note ${n} ${randomBytes(8).toString('hex')}${'x'.repeat(padding)}`
  const id = createHash('sha256').update(JSON.stringify([0, pubkey, created_at, 1, tags, content])).digest()
  return JSON.stringify(['EVENT', { id: id.toString('hex'), pubkey, created_at, kind: 1, tags, content, sig: signer.sign(id, secret) }])
}

/** Publishes about `perSecond` notes (with `padding` bytes of content more) until stopped. */
const publishLoop = (socket: BenchSocket, signer: Signer, keys: Array<{ secret: Buffer; pubkey: string }>, perSecond: number, padding = 0) => {
  let n = 0
  const timer = setInterval(() => {
    for (let i = 0; i < perSecond / 10; i++) {
      const key = keys[n % keys.length] as { secret: Buffer; pubkey: string }
      socket.send(note(signer, key.secret, key.pubkey, n++, padding))
    }
  }, 100)
  return { stop: () => clearInterval(timer), sent: () => n }
}

/** Sends a REQ every `everyMs` and records each REQ→EOSE time in the current phase's list. */
const probeLoop = (socket: BenchSocket, everyMs: number) => {
  const samples = new Map<string, number[]>()
  let phase = 'baseline'
  let seq = 0
  const sentAt = new Map<string, { at: number; phase: string }>()
  socket.onFrame = frame => {
    if (verbOf(frame) !== 'EOSE') return
    const subId = JSON.parse(frame.toString('utf8'))[1] as string
    const sent = sentAt.get(subId)
    if (!sent) return
    sentAt.delete(subId)
    const list = samples.get(sent.phase) ?? []
    list.push(performance.now() - sent.at)
    samples.set(sent.phase, list)
    socket.send(JSON.stringify(['CLOSE', subId]))
  }
  const timer = setInterval(() => {
    const subId = `p${seq++}`
    sentAt.set(subId, { at: performance.now(), phase })
    socket.send(JSON.stringify(['REQ', subId, { ids: [hex()], limit: 1 }]))
  }, everyMs)
  return {
    setPhase: (name: string) => (phase = name),
    stop: () => clearInterval(timer),
    summary: (name: string) => ({ ...summarize(samples.get(name) ?? []), unanswered: [...sentAt.values()].filter(s => s.phase === name).length }),
  }
}

/** The attack's 50 REQ frames (~470 KiB each), built before the clock starts so the generator only sends. */
const attackFrames = (authors: string[]): string[] =>
  Array.from({ length: SUBS }, (_, s) => {
    const filters = Array.from({ length: FILTERS }, () => ({
      authors: [...authors, ...Array.from({ length: AUTHORS - authors.length }, hex)],
      '#t': Array.from({ length: TOPICS }, (_, i) => `topic-${i}`),
      limit: 10,
    }))
    return JSON.stringify(['REQ', `a${s}`, ...filters])
  })

type ProbeSummary = ReturnType<ReturnType<typeof probeLoop>['summary']>

/**
 * The probe on a worker thread of its own: the generator's main thread is busy sending the attack, and
 * its delays must not count as the relay's.
 */
const startProbe = async (url: string) => {
  const worker = new Worker(new URL(import.meta.url), { workerData: { probe: url } })
  await new Promise(resolve => worker.once('message', resolve))
  return {
    setPhase: (phase: string) => worker.postMessage({ phase }),
    /** Stops probing; the summaries of the phases. */
    stop: async (phases: string[]): Promise<Record<string, ProbeSummary>> => {
      worker.postMessage({ stop: phases })
      const result = (await new Promise(resolve => worker.once('message', resolve))) as Record<string, ProbeSummary>
      await worker.terminate()
      return result
    },
  }
}

/** The worker side of startProbe. */
const runProbe = async (url: string) => {
  const socket = await BenchSocket.open(url)
  const probe = probeLoop(socket, 50)
  parentPort?.on('message', (message: { phase?: string; stop?: string[] }) => {
    if (message.phase) probe.setPhase(message.phase)
    if (!message.stop) return
    probe.stop()
    parentPort?.postMessage(Object.fromEntries(message.stop.map(phase => [phase, probe.summary(phase)])))
  })
  parentPort?.postMessage('ready')
}

/** One attacker: the 50 REQs; counts what came back. */
const attack = async (url: string, frames: readonly string[]) => {
  const socket = await BenchSocket.open(url, 30_000)
  const answers = { eose: 0, closed: 0, reasons: new Set<string>() }
  socket.onFrame = frame => {
    const verb = verbOf(frame)
    if (verb === 'EOSE') answers.eose++
    if (verb === 'CLOSED') {
      answers.closed++
      answers.reasons.add(String(JSON.parse(frame.toString('utf8'))[2]).replace(/\d+/g, 'N'))
    }
  }
  for (const frame of frames) {
    socket.send(frame)
    await sleep(5)
  }
  return { socket, answers }
}

/** What one attack phase needs, and what it reports. */
interface Ground {
  relay: RelayProcess
  signer: Signer
  keys: Array<{ secret: Buffer; pubkey: string }>
  seconds: number
  /** The relay's counter `name{label="value"}` from /metrics. */
  counter: (name: string, label: string, value: string) => Promise<number>
  /** The relay's V8 heap in use and its external (Buffer) memory, MiB, from /metrics. */
  memory: () => Promise<{ heap: number; external: number }>
}

/** Holds for `seconds`, sampling the relay's RSS; the peak. */
const holdSampling = async (relay: RelayProcess, seconds: number): Promise<number> => {
  let peak = rssMiB(relay.pid)
  for (const started = performance.now(); performance.now() - started < seconds * 1000; await sleep(250)) peak = Math.max(peak, rssMiB(relay.pid))
  return peak
}

/** The subscription attack: what the attackers' REQs got, and a fresh client's first round trip after they left. */
const subscriptionAttack = async ({ relay, keys, seconds }: Ground): Promise<{ peak: number; lines: string[] }> => {
  const frames = attackFrames(keys.map(k => k.pubkey))
  const attackers = await Promise.all(Array.from({ length: ATTACKERS }, () => attack(relay.url, frames)))
  const peak = await holdSampling(relay, seconds)
  await Promise.all(attackers.map(a => a.socket.close()))
  const leftAt = performance.now()
  const fresh = await BenchSocket.open(relay.url, 60_000)
  const firstAnswer = await new Promise<number>(resolve => {
    fresh.onFrame = frame => verbOf(frame) === 'EOSE' && resolve(performance.now() - leftAt)
    fresh.send(JSON.stringify(['REQ', 'fresh', { ids: [hex()] }]))
  })
  await fresh.close()
  const answers = attackers.reduce((sum, a) => ({ eose: sum.eose + a.answers.eose, closed: sum.closed + a.answers.closed }), { eose: 0, closed: 0 })
  const reasons = new Set(attackers.flatMap(a => [...a.answers.reasons]))
  return {
    peak,
    lines: [
      `${ATTACKERS} connections × ${SUBS} REQs × ${FILTERS} filters (${AUTHORS} authors + ${TOPICS} #t each)`,
      `attackers ${answers.eose} REQs answered EOSE, ${answers.closed} CLOSED${reasons.size ? `: ${[...reasons].join(' | ').slice(0, 300)}` : ''}`,
      `fresh client after the attackers left: first REQ answered in ${ms(firstAnswer)}`,
    ],
  }
}

const SLOW_READERS = 10

/** Slow readers: subscribed to every note, never reading, while a second publisher sends big notes fast. */
const slowReaders = async ({ relay, signer, keys, seconds, counter, memory }: Ground): Promise<{ peak: number; lines: string[] }> => {
  const before = await counter('msr_relay_client_drops_total', 'cause', 'slow')
  const readers = await Promise.all(
    Array.from({ length: SLOW_READERS }, async (_, i) => {
      const ws = new WebSocket(relay.url)
      await new Promise((resolve, reject) => (ws.once('open', resolve), ws.once('error', reject)))
      ws.send(JSON.stringify(['REQ', `slow${i}`, { kinds: [1] }]))
      ws.on('error', () => undefined)
      ;(ws as unknown as { _socket: Socket })._socket.pause() // never reads again
      return ws
    }),
  )
  const flooder = await BenchSocket.open(relay.url)
  const flooding = publishLoop(flooder, signer, keys, 1000, 4096)
  const peak = await holdSampling(relay, Math.max(seconds, 15))
  flooding.stop()
  const dropped = (await counter('msr_relay_client_drops_total', 'cause', 'slow')) - before
  const during = await memory()
  for (const ws of readers) ws.terminate()
  await flooder.close()
  await sleep(5000)
  const later = await memory()
  return {
    peak,
    lines: [
      `${SLOW_READERS} readers that never read, ${flooding.sent()} notes of 4 KiB published meanwhile; the relay dropped ${dropped} as too slow`,
      `relay heap ${during.heap.toFixed(0)} MiB and Buffers ${during.external.toFixed(0)} MiB at the end, ${later.heap.toFixed(0)} and ${later.external.toFixed(0)} MiB 5 s after the readers left`,
    ],
  }
}

const FLOOD = 2000

/** A connection flood from one address: how many the relay took and refused. */
const connectionFlood = async ({ relay, seconds, counter }: Ground): Promise<{ peak: number; lines: string[] }> => {
  const before = await counter('msr_relay_refused_connections_total', 'reason', 'connections_per_ip')
  const outcomes = await Promise.all(
    Array.from({ length: FLOOD }, () =>
      new Promise<WebSocket | number>(resolve => {
        const ws = new WebSocket(relay.url)
        ws.once('open', () => resolve(ws))
        ws.once('unexpected-response', (_req, res) => (resolve(res.statusCode ?? 0), ws.terminate()))
        ws.once('error', () => resolve(0))
      }),
    ),
  )
  const open = outcomes.filter((o): o is WebSocket => typeof o !== 'number')
  const statuses = outcomes.filter((o): o is number => typeof o === 'number')
  const peak = await holdSampling(relay, seconds)
  for (const ws of open) ws.terminate()
  const refused = (await counter('msr_relay_refused_connections_total', 'reason', 'connections_per_ip')) - before
  const codes = [...new Set(statuses)].map(code => `${code || 'error'} × ${statuses.filter(s => s === code).length}`).join(', ')
  return { peak, lines: [`${FLOOD} connections at once from one address: ${open.length} open, ${statuses.length} refused (${codes || 'none'}); refused_connections_total{reason="connections_per_ip"} +${refused}`] }
}

const ATTACKS = { subscriptions: subscriptionAttack, 'slow-readers': slowReaders, flood: connectionFlood } as const
type AttackName = keyof typeof ATTACKS

const main = async () => {
  const { values } = parseArgs({ options: { cli: { type: 'string' }, seconds: { type: 'string' }, attack: { type: 'string' } } })
  const cli = values.cli ?? new URL('../src/cli.js', import.meta.url).pathname
  const seconds = Number(values.seconds ?? 20)
  const names = (values.attack ?? Object.keys(ATTACKS).join(',')).split(',').map(n => n.trim())
  const unknown = names.filter(n => !(n in ATTACKS))
  if (unknown.length > 0) throw new Error(`unknown attack ${unknown.join(', ')} (known: ${Object.keys(ATTACKS).join(', ')})`)
  const signer = loadSigner()
  const keys = Array.from({ length: 4 }, () => {
    const secret = randomBytes(32)
    return { secret, pubkey: signer.publicKey(secret) }
  })
  const metricsKey = randomBytes(16).toString('hex')
  const env = { ...process.env, RELAY_VERIFICATION__WORKERS: '1', RELAY_RATE_LIMITER__REQ_PER_MINUTE: '100000', RELAY_METRICS__ENABLED: 'true', RELAY_METRICS__AUTH: metricsKey }
  const relay: RelayProcess = await startRelayProcess({ cli, env, logLevel: 'error' })
  const counter = async (name: string, label: string, value: string): Promise<number> => {
    const text = await (await fetch(`http://127.0.0.1:${new URL(relay.url).port}/metrics`, { headers: { authorization: `Bearer ${metricsKey}` } })).text()
    const line = text.split('\n').find(l => l.startsWith(`${name}{${label}="${value}"}`))
    return line ? Number(line.split(' ').at(-1)) : 0
  }
  const memory = async () => {
    const text = await (await fetch(`http://127.0.0.1:${new URL(relay.url).port}/metrics`, { headers: { authorization: `Bearer ${metricsKey}` } })).text()
    const value = (name: string) => Number(text.split('\n').find(l => l.startsWith(`${name} `))?.split(' ')[1] ?? NaN) / 2 ** 20
    return { heap: value('nodejs_heap_size_used_bytes'), external: value('nodejs_external_memory_bytes') }
  }
  try {
    const publisher = await BenchSocket.open(relay.url)
    const publishing = publishLoop(publisher, signer, keys, 100)
    const probe = await startProbe(relay.url)
    await sleep(5000)
    const baselineRss = rssMiB(relay.pid)
    const phases = ['baseline']
    const reports: Array<{ name: string; lines: string[]; peak: number; after: number }> = []
    for (const name of names as AttackName[]) {
      probe.setPhase(name)
      phases.push(name, `after ${name}`)
      const { peak, lines } = await ATTACKS[name]({ relay, signer, keys, seconds, counter, memory })
      probe.setPhase(`after ${name}`)
      await sleep(10_000)
      reports.push({ name, lines, peak, after: rssMiB(relay.pid) })
    }
    publishing.stop()
    const probed = await probe.stop(phases)
    const line = (label: string, s: ProbeSummary) =>
      console.log(`  probe ${label.padEnd(20)} n ${String(s.n).padStart(4)}  p50 ${ms(s.p50)}  p99 ${ms(s.p99)}  max ${ms(s.max)}  unanswered ${s.unanswered}`)
    console.log(`attacks on ${cli}: ${names.join(', ')}, ${seconds} s each; publisher ${publishing.sent()} notes; relay RSS baseline ${baselineRss.toFixed(0)} MiB`)
    line('baseline', probed.baseline as ProbeSummary)
    for (const report of reports) {
      console.log(`${report.name}:`)
      for (const text of report.lines) console.log(`  ${text}`)
      line(report.name, probed[report.name] as ProbeSummary)
      line(`after ${report.name}`, probed[`after ${report.name}`] as ProbeSummary)
      console.log(`  rss   peak ${report.peak.toFixed(0)} MiB (+${(report.peak - baselineRss).toFixed(0)}), 10 s after ${report.after.toFixed(0)} MiB`)
    }
    await publisher.close()
  } finally {
    await relay.stop()
  }
}

if (isMainThread) await main()
else await runProbe((workerData as { probe: string }).probe)
