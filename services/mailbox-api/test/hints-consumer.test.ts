// The streaming-pull hint consumer against the Google Cloud SDK's Pub/Sub emulator: published hints are
// applied through the same handler as the push route, poison is acked, a database failure is nacked.
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { after, before, describe, it, type TestContext } from 'node:test'
import { PubSub } from '@google-cloud/pubsub'
import { encodeHint, hintAttributes, type Hint } from '@msr/hints'
import { findEmulator, startEmulator, type RunningEmulator } from '@msr/hints/emulator'
import { createLogger } from '@msr/telemetry'
import { migrate } from '../src/db/migrate.js'
import { createHintReceiver, type HintReceiver } from '../src/domain/hints.js'
import { startHintsConsumer, type HintsConsumer } from '../src/hints-consumer.js'
import { startMailbox } from '../src/main.js'
import { createMailboxMetrics, type MailboxMetrics } from '../src/metrics.js'
import { buildTestApp, expectStatus, newSigner, now, qs, sleep, startPostgres, testConfig, type Signer, type TestPostgres } from './harness.js'

const emulator = findEmulator()
let emu: RunningEmulator | undefined
let publisher: PubSub | undefined
let pg: TestPostgres

before(async () => {
  pg = await startPostgres()
  if ('missing' in emulator) return
  emu = await startEmulator()
  publisher = new PubSub({ projectId: emu.projectId, apiEndpoint: emu.host, emulatorMode: true, universeDomain: 'googleapis.com' })
})

after(async () => {
  await publisher?.close()
  await emu?.stop()
  await pg?.close()
})

/** The running emulator, or undefined once the test is marked skipped saying why. */
const running = (t: TestContext): RunningEmulator | undefined => {
  if ('missing' in emulator) return void t.skip(`Pub/Sub emulator absent: ${emulator.missing}`)
  return emu
}

const silent = () => createLogger({ service: 'mailbox-test', level: 'fatal' })
const hex32 = () => randomBytes(32).toString('hex')
const groupHint = (group: string, epoch: number): Hint => ({ v: 1, id: hex32(), kind: 445, pubkey: hex32(), created_at: now(), group, epoch })
const dmHint = (sender: Signer, recipient: Signer): Hint => ({ v: 1, id: hex32(), kind: 446, pubkey: sender.pubkey, created_at: now(), recipients: [recipient.pubkey] })

/** A fresh topic with one subscription on it (ack deadline 10 s, the minimum). */
const topicWithSubscription = async (e: RunningEmulator): Promise<{ topic: string; subscription: string }> => {
  const suffix = randomBytes(4).toString('hex')
  const [topic, subscription] = [`hints-${suffix}`, `mailbox-${suffix}`]
  await e.createTopic(topic)
  await e.createSubscription(topic, subscription, { ackDeadlineSeconds: 10 })
  return { topic, subscription }
}

/** Publishes a hint (with its attributes), or arbitrary data, with the real client. */
const publish = async (topic: string, message: Hint | Buffer): Promise<string> =>
  (publisher as PubSub).topic(topic).publishMessage(Buffer.isBuffer(message) ? { data: message } : { data: encodeHint(message), attributes: hintAttributes(message) })

/** Polls `check` until it holds (or fails after `ms`, naming `what`). */
const until = async (what: string, check: () => Promise<boolean> | boolean, ms = 20_000): Promise<void> => {
  const deadline = Date.now() + ms
  while (!(await check())) {
    assert.ok(Date.now() < deadline, `timed out waiting for ${what}`)
    await sleep(50)
  }
}

const counted = async (metrics: MailboxMetrics, labels: { kind?: string; outcome?: string }): Promise<number> =>
  (await metrics.hints.get()).values
    .filter(v => Object.entries(labels).every(([k, x]) => String(v.labels[k as keyof typeof labels]) === x))
    .reduce((s, v) => s + v.value, 0)

/** A receiver that records each message id it is handed, then hands it on (or fails, or waits first). */
const recording = (inner: HintReceiver, opts: { delayMs?: number } = {}) => {
  const calls: string[] = []
  const finished: string[] = []
  const receive: HintReceiver = async (received, via) => {
    calls.push(received.messageId ?? '?')
    if (opts.delayMs) await sleep(opts.delayMs)
    const outcome = await inner(received, via)
    finished.push(received.messageId ?? '?')
    return outcome
  }
  return { receive, calls, finished }
}

describe('hint pull consumer (Pub/Sub emulator)', () => {
  it('applies published hints, acks duplicates and poison (never redelivered), and closes cleanly', async t => {
    const e = running(t)
    if (!e) return
    const { topic, subscription } = await topicWithSubscription(e)
    const metrics = createMailboxMetrics({ defaultMetrics: false })
    const first = recording(createHintReceiver({ pool: pg.pool, metrics, logger: silent(), dmHintTtlSeconds: 3600 }))
    const consumer = startHintsConsumer({ subscription: `projects/${e.projectId}/subscriptions/${subscription}`, emulatorHost: e.host, maxMessages: 10, receive: first.receive, logger: silent() })
    let second: HintsConsumer | undefined
    try {
      const [alice, bob] = [newSigner(), newSigner()]
      const group = hex32()
      const groupMessage = groupHint(group, 3)
      const dm = dmHint(alice, bob)
      await publish(topic, groupMessage)
      await publish(topic, dm)
      await publish(topic, Buffer.from('not json'))
      await publish(topic, Buffer.from(JSON.stringify({ ...groupMessage, v: 2 })))
      await publish(topic, groupMessage) // the relay republished the same event: a new message, the same event id
      await until('five hints consumed', async () => (await counted(metrics, {})) === 5)
      assert.equal(await counted(metrics, { outcome: 'applied' }), 2)
      assert.equal(await counted(metrics, { outcome: 'duplicate' }), 1)
      assert.equal(await counted(metrics, { outcome: 'malformed' }), 2)

      const app = await buildTestApp(pg.pool)
      const res = await app.api.get(`/groups/${group}`, newSigner())
      expectStatus(res, 200)
      assert.equal(res.body.group.last_epoch, 3)
      const hints = await app.api.get(`/dm-hints${qs({ recipient: bob.pubkey })}`, bob)
      expectStatus(hints, 200)
      assert.deepEqual(hints.body.items.map((i: { event_id: string }) => i.event_id), [dm.id])

      await consumer.close()
      assert.equal(first.calls.length, 5, 'each message was handed over once')
      // Anything not acked would come back to a new consumer once the 10 s ack deadline passed.
      const late = recording(createHintReceiver({ pool: pg.pool, metrics, logger: silent(), dmHintTtlSeconds: 3600 }))
      second = startHintsConsumer({ subscription, projectId: e.projectId, emulatorHost: e.host, maxMessages: 10, receive: late.receive, logger: silent() })
      await sleep(12_000)
      assert.deepEqual(late.calls, [], 'nothing was redelivered: hints, the duplicate and the poison were all acked')
    } finally {
      await consumer.close()
      await second?.close()
    }
  })

  it('nacks a hint the database could not take; the redelivery is applied once the database is back', async t => {
    const e = running(t)
    if (!e) return
    const { topic, subscription } = await topicWithSubscription(e)
    const db = await pg.freshDatabase() // no tables yet: every consume fails
    const metrics = createMailboxMetrics({ defaultMetrics: false })
    const failing = recording(createHintReceiver({ pool: db.pool, metrics, logger: silent(), dmHintTtlSeconds: 3600 }))
    const consumer = startHintsConsumer({ subscription, projectId: e.projectId, emulatorHost: e.host, maxMessages: 10, receive: failing.receive, logger: silent() })
    try {
      const group = hex32()
      const messageId = await publish(topic, groupHint(group, 8))
      await until('a redelivery after the nack', () => failing.calls.filter(id => id === messageId).length >= 2)
      assert.equal(await counted(metrics, {}), 0, 'a failed hint is not counted as consumed')
      await migrate(db.pool)
      await until('the hint applied', async () => (await counted(metrics, { outcome: 'applied' })) === 1)
      const { rows } = await db.pool.query('SELECT last_epoch FROM groups WHERE group_id = $1', [group])
      assert.deepEqual(rows, [{ last_epoch: 8 }])
    } finally {
      await consumer.close()
    }
  })

  it('close() waits for the hint being handled, then stops receiving', async t => {
    const e = running(t)
    if (!e) return
    const { topic, subscription } = await topicWithSubscription(e)
    const metrics = createMailboxMetrics({ defaultMetrics: false })
    const slow = recording(createHintReceiver({ pool: pg.pool, metrics, logger: silent(), dmHintTtlSeconds: 3600 }), { delayMs: 500 })
    const consumer = startHintsConsumer({ subscription, projectId: e.projectId, emulatorHost: e.host, maxMessages: 10, receive: slow.receive, logger: silent() })
    const hint = groupHint(hex32(), 1)
    const messageId = await publish(topic, hint)
    await until('the hint handed over', () => slow.calls.includes(messageId))
    await consumer.close()
    assert.deepEqual(slow.finished, [messageId], 'the handler finished before close() resolved')
    assert.equal((await pg.pool.query('SELECT count(*)::int AS n FROM hints_seen WHERE event_id = $1', [hint.id])).rows[0].n, 1)
    await publish(topic, groupHint(hex32(), 2))
    await sleep(500)
    assert.equal(slow.calls.length, 1, 'a closed consumer receives nothing')
  })

  it('startMailbox pulls HINTS_SUBSCRIPTION, logs which hint inputs are on without secrets, and close() stops it', async t => {
    const e = running(t)
    if (!e) return
    const { topic, subscription } = await topicWithSubscription(e)
    const lines: string[] = []
    const logger = createLogger({ service: 'mailbox-test', level: 'info', destination: { write: (line: string) => void lines.push(line) } })
    const token = 'push-token-that-must-not-be-logged'
    const config = testConfig({ PORT: '0', HINTS_SUBSCRIPTION: subscription, GOOGLE_CLOUD_PROJECT: e.projectId, PUBSUB_EMULATOR_HOST: e.host, HINTS_PUSH_TOKEN: token })
    const pool = pg.connect()
    const mailbox = await startMailbox(config, { logger, defaultMetrics: false, database: { pool, gatePool: pool, describe: 'test database', close: async () => undefined } })
    try {
      const group = hex32()
      await publish(topic, groupHint(group, 11))
      await until('the hint applied', async () => (await counted(mailbox.metrics, { outcome: 'applied' })) === 1)
      const inputs = lines.map(l => JSON.parse(l) as Record<string, unknown>).find(l => l.message === 'hint inputs')
      assert.deepEqual([inputs?.push, inputs?.pull], [['token'], [subscription]])
      for (const line of lines) assert.doesNotMatch(line, new RegExp(token))
    } finally {
      await mailbox.close()
    }
  })
})
