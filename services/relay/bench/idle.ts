// Scenario 4: memory per idle connection. N WebSocket connections that send nothing, opened from this
// process; the relay's own /metrics (heap in use, resident set) read before and after.
import WebSocket from 'ws'

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
}

const metricNames = ['nodejs_heap_size_used_bytes', 'process_resident_memory_bytes', 'msr_relay_connections'] as const
type Reading = Record<(typeof metricNames)[number], number>

/** The relay's memory figures from GET /metrics (with the key the bench gave it). */
const read = async (httpUrl: string, key: string): Promise<Reading> => {
  const text = await (await fetch(`${httpUrl}/metrics`, { headers: { authorization: `Bearer ${key}` } })).text()
  const value = (name: string): number => Number(new RegExp(`^${name} ([0-9.e+]+)$`, 'm').exec(text)?.[1] ?? NaN)
  return Object.fromEntries(metricNames.map(n => [n, value(n)])) as Reading
}


const sleep = (ms: number) => new Promise(resolve => setTimeout(resolve, ms))

/** Opens `count` connections in batches, holds them while the relay is read, then closes them. */
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
    // The least heap of readings 2 s apart (over 40 s in a full run): what the handshakes left behind is
    // garbage, not the connections' memory, and an idle process takes that long to finish collecting it.
    const readings: Reading[] = []
    for (let i = 0; i < samples; i++) {
      await sleep(2000)
      readings.push(await read(httpUrl, metricsKey))
    }
    const least = readings.reduce((a, b) => (b.nodejs_heap_size_used_bytes < a.nodejs_heap_size_used_bytes ? b : a))
    return {
      connections: count,
      heapBefore: before.nodejs_heap_size_used_bytes,
      heapAfter: least.nodejs_heap_size_used_bytes,
      rssAfter: least.process_resident_memory_bytes,
      counted: least.msr_relay_connections,
    }
  } finally {
    for (const ws of sockets) ws.terminate()
  }
}
