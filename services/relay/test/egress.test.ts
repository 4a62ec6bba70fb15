// The relay makes no outbound network connections: the real CLI runs with a preload (egress-preload.ts)
// that records every connect, DNS lookup, HTTP(S) request and TLS connect, in its main and worker threads.
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { readFile, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { promisify } from 'node:util'
import { samples } from './client-helpers.js'
import { freePort, newSigner, serveCli, sign, stopCli, tampered, tempDir, TEST_PUBLIC_URL, TestClient, withTimeout } from './harness.js'

const PRELOAD = new URL('./egress-preload.js', import.meta.url).href
const KEY = 'egress-metrics-key-0123456789'

const read = (file: string): Promise<string> => readFile(file, 'utf8').catch((error: NodeJS.ErrnoException) => (error.code === 'ENOENT' ? '' : Promise.reject(error)))

describe('outbound connections', () => {
  let dir: string

  before(async () => {
    dir = await tempDir('msr-relay-egress-')
  })
  after(() => rm(dir, { recursive: true, force: true }))

  /** The environment that preloads the recorder, writing to files in `dir` named after `run`. */
  const recorded = (run: string) => ({
    env: { NODE_OPTIONS: `--import=${PRELOAD}`, MSR_EGRESS_LOG: join(dir, `${run}.egress`), MSR_EGRESS_LOADED: join(dir, `${run}.loaded`) },
    egress: () => read(join(dir, `${run}.egress`)),
    loaded: () => read(join(dir, `${run}.loaded`)),
  })

  it('control: the preload records connects, lookups, HTTP(S) and TLS requests, UDP, fetch, in workers too', async () => {
    const port = await freePort() // closed: every attempt fails fast, without leaving the machine
    const script = join(dir, 'control.mjs')
    await writeFile(
      script,
      `import net from 'node:net'
import dns from 'node:dns'
import dgram from 'node:dgram'
import { request } from 'node:http'
import https from 'node:https'
import { connect } from 'node:tls'
import { Worker } from 'node:worker_threads'
const port = ${port}
const done = []
const settle = emitter => done.push(new Promise(resolve => { emitter.on('error', resolve); emitter.on('close', resolve) }))
settle(net.connect(port, '127.0.0.1'))
done.push(new Promise(resolve => dns.lookup('localhost', resolve)))
done.push(dns.promises.lookup('localhost').catch(() => {}))
const req = request('http://127.0.0.1:' + port + '/'); settle(req); req.end()
const sreq = https.get('https://127.0.0.1:' + port + '/'); settle(sreq)
settle(connect(port, '127.0.0.1'))
done.push(fetch('http://127.0.0.1:' + port + '/').catch(() => {}))
const udp = dgram.createSocket('udp4'); done.push(new Promise(resolve => udp.send('x', port, '127.0.0.1', () => { udp.close(); resolve() })))
const worker = new Worker(new URL('data:text/javascript,' + encodeURIComponent("import net from 'node:net'; net.connect(${port}, '127.0.0.1').on('error', () => process.exit(0))")))
done.push(new Promise(resolve => worker.on('exit', resolve)))
await Promise.all(done)
`,
    )
    const run = recorded('control')
    await withTimeout(promisify(execFile)(process.execPath, [script], { env: { ...process.env, ...run.env }, cwd: dir }), 'the control script')
    const egress = await run.egress()
    for (const api of ['net.Socket.connect main', 'dns.lookup main', 'dns.promises.lookup main', 'http.request main', 'https.get main', 'tls.connect main', 'dgram.Socket.send main'])
      assert.ok(egress.includes(`${api} `), `${api} was not recorded:\n${egress}`)
    assert.match(egress, new RegExp(`^net\\.Socket\\.connect worker \\d+ .*${port}`, 'm'), 'a connect from a worker thread was not recorded')
    assert.ok(egress.split('\n').filter(l => l.startsWith('net.Socket.connect main')).length >= 5, 'fetch, http, https and tls connect too')
    assert.match(await run.loaded(), /^\d+ main\n\d+ worker \d+\n$/)
  })

  it('the relay opens none while serving publish, REQ, live fan-out, COUNT, AUTH, NIP-11 and /metrics, and while shutting down', async () => {
    const port = await freePort()
    const run = recorded('relay')
    const cli = await serveCli(
      port,
      {
        ...run.env,
        RELAY_DATA__PATH: join(dir, 'data'),
        RELAY_AUTH__ENABLED: 'true',
        RELAY_NETWORK__PUBLIC_URL: `"${TEST_PUBLIC_URL}"`,
        RELAY_METRICS__ENABLED: 'true',
        RELAY_METRICS__AUTH: `"${KEY}"`,
        RELAY_DATA__QUERY_WORKERS: '2',
        // Background jobs run often enough to be observed.
        RELAY_NETWORK__PING_INTERVAL: '"200ms"',
        RELAY_DATA__EXPIRATION_SWEEP_INTERVAL: '"200ms"',
      },
      dir,
    )
    const url = `ws://127.0.0.1:${port}`
    const http = (path: string, headers: Record<string, string> = {}) => fetch(`http://127.0.0.1:${port}${path}`, { headers })
    const alice = newSigner()
    let stopped: Awaited<ReturnType<typeof stopCli>> | undefined
    const writer = await TestClient.connect(url)
    const reader = await TestClient.connect(url)
    try {
      await writer.authOk(alice)
      assert.equal((await writer.auth(newSigner(), { relay: 'wss://elsewhere.example' }))[2], false)
      await reader.authOk(newSigner())
      reader.send(['REQ', 'live', { authors: [alice.pubkey] }])
      await reader.collectUntilEose('live')
      const note = sign(alice, { content: 'hello' })
      await writer.publishOk(note)
      assert.deepEqual(await reader.nextEvent('live'), note)
      await writer.publishOk(sign(newSigner(), { kind: 445, tags: [['h', 'g']] }))
      await writer.publishOk(sign(alice, { kind: 1, tags: [['-']] }))
      // Expiring, with a margin a slow machine cannot eat (an event expired on arrival is refused).
      await writer.publishOk(sign(alice, { kind: 1, tags: [['expiration', String(Math.floor(Date.now() / 1000) + 60)]] }))
      await writer.publishOk(sign(alice, { kind: 20001 }))
      assert.equal((await writer.publish(note))[2], true)
      assert.equal((await writer.publish(tampered(sign(alice), { sig: 'cd'.repeat(64) })))[2], false)
      assert.ok((await writer.query({ authors: [alice.pubkey] })).length >= 3)
      assert.equal((await writer.count('n', { kinds: [445] }))[0], 'COUNT')
      reader.send(['CLOSE', 'live'])
      assert.equal((await http('/', { Accept: 'application/nostr+json' })).status, 200)
      assert.equal((await http('/healthz')).status, 200)
      assert.equal((await http('/metrics')).status, 404)
      const metrics = await http('/metrics', { Authorization: `Bearer ${KEY}` })
      assert.equal(metrics.status, 200)
      assert.ok((samples(await metrics.text()).get('msr_relay_connections_total') ?? 0) >= 2)
      await new Promise(resolve => setTimeout(resolve, 1500)) // pings, expiry sweeps
    } finally {
      await Promise.all([writer.close(), reader.close()])
      // Stopped whatever happened above: a relay left running would hold the test file open.
      stopped = await stopCli(cli)
    }
    assert.deepEqual(stopped, { code: 0, signal: null })
    assert.equal(await run.egress(), '', 'the relay attempted outbound connections')
    const threads = (await run.loaded()).trim().split('\n')
    assert.equal(threads.filter(t => / main$/.test(t)).length, 1, 'the preload ran in the relay')
    assert.ok(threads.filter(t => / worker \d+$/.test(t)).length >= 3, `the preload ran in the verify and query workers: ${threads.join('; ')}`)
  })
})
