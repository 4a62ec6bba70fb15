// The subscription attack the fuzzer found, as a measured run: `npm run attack -w services/relay`
// (or node services/relay/dist/bench/attack.js [--cli PATH] [--seconds N]).
//
// A relay child on loopback; a publisher sends tagged notes (about 100/s) by a few authors; a probe
// measures REQ→EOSE round trips (20/s) before, during and after the attack. The attack: 8 connections,
// each sending 50 REQs of 20 filters with 300 authors (the publisher's among them) and 1,400 `#t`
// values (~470 KiB per REQ). Reports the probe's p50/p99 per phase, the relay's RSS (baseline, peak,
// 10 s after the attackers left), what the attackers' REQs got, and a fresh client's first round trip
// after. Bounded: every phase has a fixed duration; loopback only.
import { createHash, randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { parseArgs } from 'node:util'
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads'
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

/** A signed kind-1 note by `secret`, tagged with a few of the attackers' topics. */
const note = (signer: Signer, secret: Buffer, pubkey: string, n: number): string => {
  const created_at = Math.floor(Date.now() / 1000)
  const tags = [['t', `topic-${n % TOPICS}`], ['t', `topic-${(n * 7) % TOPICS}`], ['t', 'elsewhere']]
  const content = `note ${n} ${randomBytes(8).toString('hex')}`
  const id = createHash('sha256').update(JSON.stringify([0, pubkey, created_at, 1, tags, content])).digest()
  return JSON.stringify(['EVENT', { id: id.toString('hex'), pubkey, created_at, kind: 1, tags, content, sig: signer.sign(id, secret) }])
}

/** Publishes about `perSecond` notes until stopped. */
const publishLoop = (socket: BenchSocket, signer: Signer, keys: Array<{ secret: Buffer; pubkey: string }>, perSecond: number) => {
  let n = 0
  const timer = setInterval(() => {
    for (let i = 0; i < perSecond / 10; i++) {
      const key = keys[n % keys.length] as { secret: Buffer; pubkey: string }
      socket.send(note(signer, key.secret, key.pubkey, n++))
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

const main = async () => {
  const { values } = parseArgs({ options: { cli: { type: 'string' }, seconds: { type: 'string' } } })
  const cli = values.cli ?? new URL('../src/cli.js', import.meta.url).pathname
  const attackSeconds = Number(values.seconds ?? 20)
  const signer = loadSigner()
  const keys = Array.from({ length: 4 }, () => {
    const secret = randomBytes(32)
    return { secret, pubkey: signer.publicKey(secret) }
  })
  const relay: RelayProcess = await startRelayProcess({ cli, env: { ...process.env, RELAY_VERIFICATION__WORKERS: '1', RELAY_RATE_LIMITER__REQ_PER_MINUTE: '100000' }, logLevel: 'error' })
  try {
    const publisher = await BenchSocket.open(relay.url)
    const publishing = publishLoop(publisher, signer, keys, 100)
    const probe = await startProbe(relay.url)
    const frames = attackFrames(keys.map(k => k.pubkey))
    await sleep(5000)
    const baselineRss = rssMiB(relay.pid)
    probe.setPhase('attack')
    const started = performance.now()
    const attackers = await Promise.all(Array.from({ length: ATTACKERS }, () => attack(relay.url, frames)))
    let peak = baselineRss
    while (performance.now() - started < attackSeconds * 1000) {
      peak = Math.max(peak, rssMiB(relay.pid))
      await sleep(250)
    }
    probe.setPhase('after')
    await Promise.all(attackers.map(a => a.socket.close()))
    const leftAt = performance.now()
    const fresh = await BenchSocket.open(relay.url, 60_000)
    const firstAnswer = await new Promise<number>(resolve => {
      fresh.onFrame = frame => verbOf(frame) === 'EOSE' && resolve(performance.now() - leftAt)
      fresh.send(JSON.stringify(['REQ', 'fresh', { ids: [hex()] }]))
    })
    await sleep(10_000)
    const afterRss = rssMiB(relay.pid)
    publishing.stop()
    const probed = await probe.stop(['baseline', 'attack', 'after'])
    const answers = attackers.reduce((sum, a) => ({ eose: sum.eose + a.answers.eose, closed: sum.closed + a.answers.closed }), { eose: 0, closed: 0 })
    const reasons = new Set(attackers.flatMap(a => [...a.answers.reasons]))
    const line = (label: string, s: ProbeSummary) =>
      console.log(`  probe ${label.padEnd(9)} n ${String(s.n).padStart(4)}  p50 ${ms(s.p50)}  p99 ${ms(s.p99)}  max ${ms(s.max)}  unanswered ${s.unanswered}`)
    console.log(`subscription attack: ${ATTACKERS} connections × ${SUBS} REQs × ${FILTERS} filters (${AUTHORS} authors + ${TOPICS} #t each), ${attackSeconds} s, publisher ${publishing.sent()} notes`)
    console.log(`  relay     ${cli}`)
    for (const phase of ['baseline', 'attack', 'after']) line(phase, probed[phase] as ProbeSummary)
    console.log(`  rss       baseline ${baselineRss.toFixed(0)} MiB, peak ${peak.toFixed(0)} MiB (+${(peak - baselineRss).toFixed(0)}), 10 s after ${afterRss.toFixed(0)} MiB`)
    console.log(`  attackers ${answers.eose} REQs answered EOSE, ${answers.closed} CLOSED${reasons.size ? `: ${[...reasons].join(' | ').slice(0, 300)}` : ''}`)
    console.log(`  fresh client after the attackers left: first REQ answered in ${ms(firstAnswer)}`)
    await Promise.all([publisher.close(), fresh.close()])
  } finally {
    await relay.stop()
  }
}

if (isMainThread) await main()
else await runProbe((workerData as { probe: string }).probe)
