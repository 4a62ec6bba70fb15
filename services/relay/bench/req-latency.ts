// REQ latency: one REQ at a time per connection, timed from send to EOSE, then CLOSE.
import { PerformanceObserver, type PerformanceEntry } from 'node:perf_hooks'
import { summarize, type Summary } from '@msr/bench'
import { isRateLimited, messageOf, verbOf, type BenchSocket } from './bench-socket.js'
import { mulberry32, type Pools } from './event-factory.js'

/** What the filters may ask for: the store's authors, tag pools, time span and some stored ids. */
export interface StoreShape {
  pubkeys: string[]
  pools: Pools
  /** Ids of events the store load publishes (a sample), for the ids REQs. */
  ids: string[]
  createdFrom: number
  createdTo: number
}

/** A kind of REQ in the mix. */
export interface QueryType {
  label: string
  limit: number
  filter: (rng: () => number, shape: StoreShape) => Record<string, unknown>
}

const HOUR = 3600
const pick = <T>(rng: () => number, items: readonly T[]): T => items[Math.floor(rng() * items.length)] as T

/** `n` distinct items (all of them when there are fewer), in random order. */
const pickDistinct = <T>(rng: () => number, items: readonly T[], n: number): T[] => {
  const chosen = new Set<number>()
  while (chosen.size < Math.min(n, items.length)) chosen.add(Math.floor(rng() * items.length))
  return [...chosen].map(i => items[i] as T)
}

/** Ids per ids REQ: as many as the limit, so a REQ of ids that all exist serves 500 events. */
const IDS_PER_REQ = 500

/** The REQ mix of the scenario, issued round-robin. */
export const QUERY_TYPES: readonly QueryType[] = [
  { label: '{kinds:[1]}', limit: 500, filter: () => ({ kinds: [1], limit: 500 }) },
  { label: '{authors:[a]}', limit: 500, filter: (rng, s) => ({ authors: [pick(rng, s.pubkeys)], limit: 500 }) },
  { label: "{'#h':[g],kinds:[445]}", limit: 500, filter: (rng, s) => ({ '#h': [pick(rng, s.pools.h)], kinds: [445], limit: 500 }) },
  { label: "{'#t':[t]}", limit: 500, filter: (rng, s) => ({ '#t': [pick(rng, s.pools.t)], limit: 500 }) },
  { label: '{ids:[500 ids]}', limit: 500, filter: (rng, s) => ({ ids: pickDistinct(rng, s.ids, IDS_PER_REQ), limit: 500 }) },
  { label: "{'#p':[x]}", limit: 100, filter: (rng, s) => ({ '#p': [pick(rng, s.pools.p)], limit: 100 }) },
  {
    label: '{since,until}',
    limit: 500,
    filter: (rng, s) => {
      const until = s.createdFrom + Math.floor(rng() * (s.createdTo - s.createdFrom))
      return { since: until - HOUR * (1 + Math.floor(rng() * 12)), until, limit: 500 }
    },
  },
]

/** One REQ's figures. */
export interface ReqSample {
  type: number
  /** When it was sent, on the bench's clock (performance.now()). */
  at: number
  ms: number
  events: number
  /** The CLOSED message when the relay refused or timed out the query. */
  closed?: string
}

/** Latency and result size per query type and over all of them. */
export interface ReqResult {
  connections: number
  samples: ReqSample[]
  seconds: number
  byType: Array<{ label: string; limit: number; latency: Summary; events: Summary; closed: number }>
  all: Summary
  /** Latency of every query with limit 500. */
  limit500: Summary
  closedExamples: string[]
  /** REQs the relay ended with CLOSED "rate-limited: …": counted apart and left out of every latency and events figure. */
  rateLimited: number
  rateLimitedExample?: string
  /** The generator's own garbage collections during the pass, and the REQs whose wait one of them fell in. */
  generatorGc: GeneratorGc
}

/**
 * Pauses of the load generator itself: a REQ timed across one waited for the generator too, not only for
 * the relay. Reported beside the latencies, never taken out of them.
 */
export interface GeneratorGc {
  count: number
  totalMs: number
  longestMs: number
  /** REQs (the figures' samples) sent before a collection ended and answered after it began. */
  overlapping: number
  /** Of the slowest 1 % of those REQs (at least one), how many overlapped a collection. */
  slowest: number
  slowestOverlapping: number
}

/** Collections of this process from now until `stop()`. */
const watchGc = (): { stop: () => PerformanceEntry[] } => {
  const entries: PerformanceEntry[] = []
  const observer = new PerformanceObserver(list => entries.push(...list.getEntries()))
  observer.observe({ entryTypes: ['gc'] })
  return {
    stop: () => {
      entries.push(...observer.takeRecords())
      observer.disconnect()
      return entries
    },
  }
}

/** How the generator's collections (`gcs`) lay over the REQs in `samples`. */
export const generatorGcOf = (gcs: readonly Pick<PerformanceEntry, 'startTime' | 'duration'>[], samples: readonly Pick<ReqSample, 'at' | 'ms'>[]): GeneratorGc => {
  const overlaps = (s: Pick<ReqSample, 'at' | 'ms'>) => gcs.some(g => g.startTime < s.at + s.ms && g.startTime + g.duration > s.at)
  const slowest = [...samples].sort((a, b) => b.ms - a.ms).slice(0, Math.max(1, Math.ceil(samples.length / 100)))
  return {
    count: gcs.length,
    totalMs: gcs.reduce((sum, g) => sum + g.duration, 0),
    longestMs: gcs.reduce((max, g) => Math.max(max, g.duration), 0),
    overlapping: samples.filter(overlaps).length,
    slowest: samples.length === 0 ? 0 : slowest.length,
    slowestOverlapping: slowest.filter(overlaps).length,
  }
}

/** True for a REQ the relay refused as rate limited. */
export const rateLimitedReq = (s: ReqSample): boolean => s.closed !== undefined && isRateLimited(s.closed)

/** Pre-built REQ frames (built before timing starts). */
const buildRequests = (count: number, shape: StoreShape, seed: number, prefix: string): Array<{ type: number; frame: string; close: string }> => {
  const rng = mulberry32(seed)
  return Array.from({ length: count }, (_, i) => {
    const type = i % QUERY_TYPES.length
    const subId = `${prefix}${i}`
    const filter = (QUERY_TYPES[type] as QueryType).filter(rng, shape)
    return { type, frame: JSON.stringify(['REQ', subId, filter]), close: JSON.stringify(['CLOSE', subId]) }
  })
}

/** Runs `requests` REQs one at a time on each socket; returns one sample per REQ. */
const drive = (socket: BenchSocket, requests: ReturnType<typeof buildRequests>): Promise<ReqSample[]> =>
  new Promise((resolve, reject) => {
    const samples: ReqSample[] = []
    let i = 0
    let events = 0
    let sentAt = 0
    const next = () => {
      const request = requests[i]
      if (!request) return resolve(samples)
      events = 0
      sentAt = performance.now()
      socket.send(request.frame)
    }
    const finish = (closed?: string) => {
      const ms = performance.now() - sentAt
      const request = requests[i++] as (typeof requests)[number]
      const sample = { type: request.type, at: sentAt, ms, events }
      samples.push(closed === undefined ? sample : { ...sample, closed })
      if (closed === undefined) socket.send(request.close)
      next()
    }
    socket.onFrame = frame => {
      const verb = verbOf(frame)
      if (verb === 'EVENT') events++
      else if (verb === 'EOSE') finish()
      else if (verb === 'CLOSED') finish(messageOf(frame))
      else if (verb === 'NOTICE') reject(new Error(`relay NOTICE during REQ: ${messageOf(frame)}`))
    }
    next()
  })

/** n split over the sockets: how many socket k issues. */
const shareOf = (n: number, sockets: number, k: number): number => Math.floor(n / sockets) + (k < n % sockets ? 1 : 0)

/** Untimed REQs (JIT and page cache warm-up). */
export const warmUp = async (sockets: readonly BenchSocket[], shape: StoreShape, count: number): Promise<void> => {
  await Promise.all(sockets.map((s, k) => drive(s, buildRequests(shareOf(count, sockets.length, k), shape, 1000 + k, `w${k}-`))))
}

/** Issues `total` REQs over the sockets, one at a time per socket, and summarizes them. */
export const measureReqs = async (sockets: readonly BenchSocket[], shape: StoreShape, total: number): Promise<ReqResult> => {
  const share = (n: number, k: number) => shareOf(n, sockets.length, k)
  const batches = sockets.map((_, k) => buildRequests(share(total, k), shape, 7 + k, `r${k}-`))
  const gc = watchGc()
  const started = performance.now()
  const all = (await Promise.all(sockets.map((s, k) => drive(s, batches[k] ?? [])))).flat()
  const seconds = (performance.now() - started) / 1000
  const gcs = gc.stop().filter(g => g.startTime + g.duration >= started)
  const limited = all.filter(rateLimitedReq)
  const samples = all.filter(s => !rateLimitedReq(s))
  const byType = QUERY_TYPES.map((q, type) => {
    const mine = samples.filter(s => s.type === type)
    return {
      label: q.label,
      limit: q.limit,
      latency: summarize(mine.map(s => s.ms)),
      events: summarize(mine.map(s => s.events)),
      closed: mine.filter(s => s.closed !== undefined).length,
    }
  })
  return {
    connections: sockets.length,
    samples,
    seconds,
    byType,
    all: summarize(samples.map(s => s.ms)),
    limit500: summarize(samples.filter(s => QUERY_TYPES[s.type]?.limit === 500).map(s => s.ms)),
    closedExamples: [...new Set(samples.flatMap(s => (s.closed === undefined ? [] : [s.closed])))].slice(0, 5),
    rateLimited: limited.length,
    ...(limited[0]?.closed !== undefined && { rateLimitedExample: limited[0].closed }),
    generatorGc: generatorGcOf(gcs, samples),
  }
}
