// The Pub/Sub emulator down while 445s keep arriving (the relay's production transport, through the real
// client library): OKs stay `OK true`, the outbox grows and /metrics shows it and the failed publishes;
// once the emulator is back on the same port the outbox drains to 0 and a subscriber gets every hint.
// SOAK_OUTAGE_SECONDS sets the outage (12 here; `npm run soak:hints`: 180). Skipped without an emulator.
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { decodeHint } from '@msr/hints'
import { findEmulator, startEmulator, type RunningEmulator } from '@msr/hints/emulator'
import { eventually, freePort, newSigner, RELAY_CLI, RelayClient, removeDir, sample, sign, sleep, spawnService, tempDir, waitReady, type Service } from './platform.js'

const OUTAGE_SECONDS = Number(process.env.SOAK_OUTAGE_SECONDS ?? 12)
const PROJECT = 'msr-outage'
const METRICS_KEY = 'hint-bus-outage-metrics-key-0123'
const SUBSCRIPTION = 'mailbox-group-hints'

/** The topic and the mailbox's ordered subscription, as infra/terraform makes them (an emulator keeps nothing across a restart). */
const createBus = async (emulator: RunningEmulator): Promise<void> => {
  await emulator.createTopic('mls-group-hints')
  await emulator.createSubscription('mls-group-hints', SUBSCRIPTION, { enableMessageOrdering: true })
}

/** What the test saw, for its diagnostic line. */
interface Figures {
  sent: number
  okTrue: number
  duringOutage: number
  peakDepth: number
  failures: number
  /** From the emulator answering again to the first hint leaving the outbox, and to the outbox empty. */
  firstSeconds: number
  drainSeconds: number
  received: number
  missing: number
  duplicates: number
}

const relayEnv = (dir: string, port: number, emulator: RunningEmulator): Record<string, string> => ({
  PORT: String(port),
  PUBSUB_EMULATOR_HOST: emulator.host,
  GOOGLE_CLOUD_PROJECT: PROJECT,
  METADATA_SERVER_DETECTION: 'none',
  RELAY_DATA__PATH: join(dir, 'relay'),
  RELAY_HINTS__TRANSPORT: 'pubsub',
  RELAY_HINTS__PROJECT_ID: PROJECT,
  RELAY_HINTS__MAX_BACKOFF: '"2s"',
  RELAY_HINTS__PUBLISH_TIMEOUT: '"3s"',
  RELAY_AUTH__AUTH_REQUIRED_KINDS: '[]',
  RELAY_RATE_LIMITER__ENABLED: 'false',
  RELAY_VERIFICATION__WORKERS: '1',
  RELAY_METRICS__ENABLED: 'true',
  RELAY_METRICS__AUTH: METRICS_KEY,
})

/** Publishes a 445 every 50 ms until `stop()`; each OK is recorded. */
const steadyTraffic = (client: RelayClient, group: string, ok: Map<string, boolean>) => {
  let running = true
  const loop = (async () => {
    for (let epoch = 1; running; epoch++) {
      const event = sign(newSigner(), 445, [['h', group], ['k', String(epoch)]], 'mls ciphertext')
      const reply = await client.publish(event)
      ok.set(event.id, reply[2] === true)
      await sleep(50)
    }
  })()
  return { stop: async () => ((running = false), await loop) }
}

const summary = (f: Figures): string =>
  `bus outage ${OUTAGE_SECONDS} s: ${f.sent} 445s sent (${f.duringOutage} during the outage), ${f.okTrue} OK true; outbox peak ${f.peakDepth}, ` +
  `${f.failures} failed publishes; after the emulator was back, first hint out in ${f.firstSeconds.toFixed(1)} s, outbox empty in ${f.drainSeconds.toFixed(1)} s; hints received ${f.received}, missing ${f.missing}, duplicates ${f.duplicates}`

describe('relay → Pub/Sub emulator down for a while → back', () => {
  it(`keeps accepting 445s through a ${OUTAGE_SECONDS} s outage of the emulator, its outbox growing, then drains it and every hint arrives`, async t => {
    const found = findEmulator()
    if ('missing' in found) return t.skip(`no Pub/Sub emulator on this machine (${found.missing})`)
    const dir = await tempDir()
    const port = await freePort()
    let emulator = await startEmulator({ projectId: PROJECT })
    let relay: Service | undefined
    let subscriber: { close(): Promise<void> } | undefined
    const ok = new Map<string, boolean>()
    const received: string[] = []
    const listen = () => emulator.listen(SUBSCRIPTION, data => {
      const hint = decodeHint(data)
      if (hint.ok) received.push(hint.hint.id)
    })
    const metrics = async () => {
      const text = await (await fetch(`http://127.0.0.1:${port}/metrics`, { headers: { authorization: `Bearer ${METRICS_KEY}` } })).text()
      return { depth: sample(text, 'msr_relay_hint_outbox_depth'), failures: sample(text, 'msr_relay_hint_publish_failures_total{kind="445"}') }
    }
    try {
      await createBus(emulator)
      subscriber = listen()
      relay = spawnService(RELAY_CLI, ['serve'], relayEnv(dir, port, emulator))
      await waitReady(relay, `http://127.0.0.1:${port}/readyz`, 'the relay')
      const client = await RelayClient.connect(`ws://127.0.0.1:${port}`)
      const group = `outage-${Math.random().toString(16).slice(2)}`
      // Before: traffic flows; then everything the bus confirmed is delivered, since a killed emulator loses what it holds.
      let traffic = steadyTraffic(client, group, ok)
      await sleep(2000)
      await traffic.stop()
      const delivered = async () => [...ok.keys()].every(id => received.includes(id)) && (await metrics()).depth === 0
      await eventually(async () => ((await delivered()) ? true : undefined), 'the hints before the outage delivered and out of the outbox')
      const before = await metrics()

      await subscriber.close()
      await emulator.stop()
      const sentBefore = ok.size
      traffic = steadyTraffic(client, group, ok)
      const depths: number[] = []
      const outageEnd = Date.now() + OUTAGE_SECONDS * 1000
      while (Date.now() < outageEnd) {
        await sleep(1000)
        depths.push((await metrics()).depth)
      }
      const during = await metrics()
      await traffic.stop()
      const duringOutage = ok.size - sentBefore

      // Back on the same port; the operator re-creates what the emulator forgot. The relay is frozen
      // meanwhile: a hint it published between the topic's creation and the subscription's would go to a
      // topic without subscribers, which Pub/Sub drops (on Google Cloud both outlive an outage).
      relay.child.kill('SIGSTOP')
      try {
        emulator = await startEmulator({ projectId: PROJECT, port: Number(emulator.host.split(':')[1]) })
        await createBus(emulator)
      } finally {
        relay.child.kill('SIGCONT')
      }
      const back = Date.now()
      subscriber = listen()
      const atBack = (await metrics()).depth
      let firstSeconds = 0
      await eventually(async () => {
        const { depth } = await metrics()
        if (depth < atBack && firstSeconds === 0) firstSeconds = (Date.now() - back) / 1000
        return depth === 0 ? true : undefined
      }, 'the outbox to drain', 300_000)
      const drainSeconds = (Date.now() - back) / 1000
      const expected = [...ok.keys()]
      await eventually(async () => (expected.every(id => received.includes(id)) ? true : undefined), 'every hint at the subscriber', 60_000).catch(() => undefined)
      const distinct = new Set(received)
      const figures: Figures = {
        sent: ok.size, okTrue: [...ok.values()].filter(Boolean).length, duringOutage, peakDepth: Math.max(...depths), failures: during.failures - before.failures,
        firstSeconds, drainSeconds, received: distinct.size, missing: expected.filter(id => !distinct.has(id)).length, duplicates: received.length - distinct.size,
      }
      t.diagnostic(summary(figures))
      client.close()
      assert.equal(figures.okTrue, figures.sent, `every 445 OK true, the bus down or not: ${summary(figures)}`)
      assert.ok(during.depth >= duringOutage - 1, `the outbox holds the outage's hints (depth ${during.depth}, ${duringOutage} sent): ${summary(figures)}`)
      assert.ok(figures.failures > 0, `failed publishes counted: ${summary(figures)}`)
      assert.equal(figures.missing, 0, summary(figures))
    } finally {
      relay?.child.kill('SIGCONT')
      await subscriber?.close().catch(() => undefined)
      await relay?.stop()
      await emulator.stop()
      await removeDir(dir)
    }
  })
})
