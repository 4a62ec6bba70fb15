// Scenario 4: memory per idle connection. N WebSocket connections that send nothing, opened from this
// process; the relay's own /metrics (heap in use, resident set) read before and after.
import WebSocket from 'ws'
import { parseRelayGc } from './relay-gc.js'

/** What scenario 4 measured. */
export interface IdleResult {
  connections: number
  /** The relay's V8 heap in use, bytes: before, and the least of the readings with the connections open. */
  heapBefore: number
  heapAfter: number
  /** The relay's resident set with the connections open, bytes. */
  rssAfter: number
  /** Connections the relay counted as open (its msr_relay_connections gauge). */
  counted: number
  /** Full (mark-compact) collections of the relay's heap while they were held. */
  majorCollections: number
  /** Seconds the connections were held and read. */
  heldSeconds: number
}

const metricNames = ['nodejs_heap_size_used_bytes', 'process_resident_memory_bytes', 'msr_relay_connections'] as const
/** One read of the relay's /metrics: the figures above, and how many full collections it has made so far. */
export type Reading = Record<(typeof metricNames)[number], number> & { majorCollections: number }

/** The relay's memory figures from GET /metrics (with the key the bench gave it). */
const read = async (httpUrl: string, key: string): Promise<Reading> => {
  const text = await (await fetch(`${httpUrl}/metrics`, { headers: { authorization: `Bearer ${key}` } })).text()
  const value = (name: string): number => Number(new RegExp(`^${name} ([0-9.e+]+)$`, 'm').exec(text)?.[1] ?? NaN)
  const figures = Object.fromEntries(metricNames.map(n => [n, value(n)])) as Omit<Reading, 'majorCollections'>
  return { ...figures, majorCollections: parseRelayGc(text).markCompact.count }
}


const sleep = (ms: number) => new Promise(resolve => setTimeout(resolve, ms))

/**
 * The reading that stands for the connections' memory: the least heap among the readings made after the
 * first full collection since they opened (`majorAtOpen` full collections before), or among all of them
 * when none came. Until a full collection, the heap also holds the handshakes' garbage and whatever the
 * relay's timers (pings) have left since: an idle relay makes one within a minute or so, later on a slow
 * machine, so a fixed number of readings measured the machine's speed as much as the connections.
 */
export const idleReading = (readings: readonly Reading[], majorAtOpen: number): Reading => {
  const collected = readings.filter(r => r.majorCollections > majorAtOpen)
  const pool = collected.length > 0 ? collected : readings
  if (pool.length === 0) throw new Error('idle: no reading of the relay\'s /metrics')
  return pool.reduce((a, b) => (b.nodejs_heap_size_used_bytes < a.nodejs_heap_size_used_bytes ? b : a))
}

/** True when the readings so far are enough: at least `samples`, and one after a full collection (or `max` in all). */
export const enoughReadings = (readings: readonly Reading[], majorAtOpen: number, samples: number, max: number): boolean =>
  readings.length >= max || (readings.length >= samples && readings.some(r => r.majorCollections > majorAtOpen))

/**
 * Opens `count` connections in batches, holds them while the relay is read every 2 s (`samples` readings,
 * more until one follows a full collection, at most three times as many), then closes them.
 */
export const idleConnections = async (wsUrl: string, metricsKey: string, count: number, samples: number): Promise<IdleResult> => {
  const httpUrl = wsUrl.replace(/^ws/, 'http')
  const before = await read(httpUrl, metricsKey)
  const sockets: WebSocket[] = []
  try {
    for (let i = 0; i < count; i += 250) {
      const batch = Array.from({ length: Math.min(250, count - i) }, () => new WebSocket(wsUrl, { perMessageDeflate: false }))
      sockets.push(...batch)
      await Promise.all(batch.map(ws => new Promise((resolve, reject) => (ws.once('open', resolve), ws.once('error', reject)))))
    }
    const opened = await read(httpUrl, metricsKey)
    const held = performance.now()
    const readings: Reading[] = []
    while (!enoughReadings(readings, opened.majorCollections, samples, 3 * samples)) {
      await sleep(2000)
      readings.push(await read(httpUrl, metricsKey))
    }
    const least = idleReading(readings, opened.majorCollections)
    return {
      connections: count,
      heapBefore: before.nodejs_heap_size_used_bytes,
      heapAfter: least.nodejs_heap_size_used_bytes,
      rssAfter: least.process_resident_memory_bytes,
      counted: least.msr_relay_connections,
      majorCollections: (readings.at(-1)?.majorCollections ?? opened.majorCollections) - opened.majorCollections,
      heldSeconds: (performance.now() - held) / 1000,
    }
  } finally {
    for (const ws of sockets) ws.terminate()
  }
}
