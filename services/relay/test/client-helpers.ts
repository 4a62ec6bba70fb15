// Test helpers beyond the harness: a client seen from a given address, raw upgrade outcomes (HTTP 429),
// and Prometheus text parsing.
import WebSocket from 'ws'
import { TestClient, withTimeout } from './harness.js'

/** Opens a TestClient that appears to come from `ip` (relay started with network.trusted_proxies = 1). */
export const connectFrom = (url: string, ip: string): Promise<TestClient> => TestClient.connect(url, { headers: { 'X-Forwarded-For': ip } })

/** The HTTP status and body of a WebSocket upgrade: 101 when it succeeded (the socket is then closed again). */
export const upgradeStatus = (url: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string }> => {
  const ws = new WebSocket(url, { headers })
  ws.on('error', () => undefined)
  return withTimeout(
    new Promise(resolve => {
      ws.once('open', () => {
        ws.close()
        resolve({ status: 101, body: '' })
      })
      ws.once('unexpected-response', (_req, res) => {
        let body = ''
        res.setEncoding('utf8')
        res.on('data', (chunk: string) => (body += chunk))
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }))
      })
    }),
    `the upgrade to ${url}`,
  )
}

/** A Prometheus text exposition as sample lines: `name{labels}` → value. */
export const samples = (text: string): Map<string, number> => {
  const out = new Map<string, number>()
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue
    const at = line.lastIndexOf(' ')
    out.set(line.slice(0, at), Number(line.slice(at + 1)))
  }
  return out
}
