// The hint outbox and its drainer (DESIGN.md §5): accepted 445/446 events produce routing hints that
// reach the bus (here the local transport, POSTing push envelopes to an in-test HTTP server), survive a
// bus outage and a killed relay, and never carry content.
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { samples } from './client-helpers.js'
import { PushEndpoint } from './push-endpoint.js'
import {
  freePort,
  newSigner,
  serveCli,
  sign,
  startTestRelay,
  tempDir,
  TestClient,
  waitUntil,
  withTimeout,
  type TestRelay,
} from './harness.js'

const TOKEN = 'push-token-for-tests-0123456789'
const GROUP = 'a1b2c3d4e5f60718'

const hintConfig = (push: PushEndpoint, extra: Record<string, unknown> = {}) => ({
  'hints.transport': 'local',
  'hints.push_url': push.url,
  'hints.push_token': TOKEN,
  'hints.max_backoff': 400,
  'auth.auth_required_kinds': [],
  'metrics.enabled': true,
  'metrics.auth': 'metrics-key-for-tests-0123',
  ...extra,
})

const groupMessage = (tags: string[][], content = 'mls ciphertext that must never travel in a hint') =>
  sign(newSigner(), { kind: 445, tags, content })

describe('hints over the local transport', () => {
  let push: PushEndpoint
  let relay: TestRelay
  let client: TestClient

  before(async () => {
    push = await new PushEndpoint().start()
    relay = await startTestRelay(hintConfig(push))
    client = await TestClient.connect(relay.url)
  })

  after(async () => {
    await client?.close()
    await relay?.close()
    await push?.close()
  })

  it('publishes a 445 hint with group, epoch from k, routing attributes, ordering key and the Bearer token', async () => {
    const event = groupMessage([['h', GROUP], ['k', '7']])
    await client.publishOk(event)
    const got = await push.waitFor(event.id)
    assert.deepEqual(got.hint, { v: 1, id: event.id, kind: 445, pubkey: event.pubkey, created_at: event.created_at, group: GROUP, epoch: 7 })
    assert.equal(got.authorization, `Bearer ${TOKEN}`)
    assert.equal(got.attributes.kind, '445')
    assert.equal(got.attributes.group, GROUP)
    assert.equal(got.orderingKey, GROUP)
    assert.equal(got.attributes.event_id, event.id)
    assert.equal(got.attributes.traceparent, undefined, 'no trace context without tracing (the event id is no stand-in)')
    assert.ok(!got.raw.includes(event.content) && !got.raw.includes(Buffer.from(event.content).toString('base64')), 'no content in the hint')
    assert.ok(!got.raw.includes(event.sig), 'no signature in the hint')
  })

  it('reads the epoch from a decimal e tag when there is no k tag (the original spec), never from an event id', async () => {
    const legacy = groupMessage([['h', GROUP], ['e', '12']])
    const reply = groupMessage([['h', GROUP], ['e', legacy.id]])
    await client.publishOk(legacy)
    await client.publishOk(reply)
    assert.equal((await push.waitFor(legacy.id)).hint.epoch, 12)
    assert.equal((await push.waitFor(reply.id)).hint.epoch, undefined)
  })

  it('publishes a 446 hint naming its p recipients', async () => {
    const [bob, carol] = [newSigner(), newSigner()]
    const dm = sign(newSigner(), { kind: 446, tags: [['p', bob.pubkey], ['p', carol.pubkey], ['p', bob.pubkey]], content: 'noise ciphertext' })
    await client.publishOk(dm)
    const got = await push.waitFor(dm.id)
    assert.deepEqual(got.hint.recipients, [bob.pubkey, carol.pubkey])
    assert.equal(got.attributes.kind, '446')
    assert.equal(got.attributes.recipient, `${bob.pubkey},${carol.pubkey}`)
    assert.equal(got.orderingKey, undefined)
  })

  it('publishes nothing for other kinds, a 445 without h, a 446 without p, or a duplicate', async () => {
    const silent = [sign(newSigner(), { kind: 1, tags: [['h', GROUP]] }), groupMessage([['k', '3']]), sign(newSigner(), { kind: 446, tags: [['p', 'not-a-key']] })]
    for (const event of silent) await client.publishOk(event)
    const again = groupMessage([['h', GROUP], ['k', '9']])
    await client.publishOk(again)
    assert.deepEqual(await client.publish(again), ['OK', again.id, true, 'duplicate: already have this event'])
    const marker = groupMessage([['h', GROUP]])
    await client.publishOk(marker)
    await push.waitFor(marker.id)
    for (const event of silent) assert.equal(push.hintFor(event.id), undefined, `no hint for kind ${event.kind}`)
    assert.equal(push.accepted.filter(r => r.hint.id === again.id).length, 1, 'one hint for an event published twice')
  })

  it('keeps hints through a bus outage and delivers them, counting the failures, once the bus is back', async () => {
    let failing = true
    push.status = () => (failing ? 503 : 204)
    const before = push.requests
    const events = [groupMessage([['h', GROUP], ['k', '20']]), groupMessage([['h', 'other-group'], ['k', '1']])]
    for (const event of events) await client.publishOk(event)
    await waitUntil(() => push.requests >= before + 4, 'several refused publishes')
    const during = samples(await metricsText(relay))
    assert.ok((during.get('msr_relay_hint_publish_failures_total{kind="445"}') ?? 0) >= 2)
    assert.equal(during.get('msr_relay_hint_outbox_depth'), 2)
    failing = false
    for (const event of events) await push.waitFor(event.id)
    // The endpoint has them; the relay removes them once it reads the answers.
    await waitUntil(() => outboxSize(relay) === 0, 'the outbox to empty')
    const afterwards = samples(await metricsText(relay))
    assert.equal(afterwards.get('msr_relay_hint_outbox_depth'), 0)
    assert.ok((afterwards.get('msr_relay_hints_published_total{kind="445"}') ?? 0) >= 2)
  })
})

const metricsText = async (relay: TestRelay): Promise<string> => {
  const res = await fetch(`http://127.0.0.1:${relay.port}/metrics`, { headers: { authorization: 'Bearer metrics-key-for-tests-0123' } })
  assert.equal(res.status, 200)
  return res.text()
}

describe('hints across a killed relay', () => {
  it('publishes after a restart the hint of an event that got OK true while the bus was down, then SIGKILL', async () => {
    const dir = await tempDir()
    const pushPort = await freePort()
    const pushUrl = `http://127.0.0.1:${pushPort}/internal/pubsub/push`
    const env = {
      RELAY_DATA__PATH: join(dir, 'data'),
      RELAY_HINTS__TRANSPORT: 'local',
      RELAY_HINTS__PUSH_URL: pushUrl,
      RELAY_HINTS__PUSH_TOKEN: TOKEN,
      RELAY_AUTH__AUTH_REQUIRED_KINDS: '[]',
    }
    const port = await freePort()
    const first = await serveCli(port, env, dir)
    const event = groupMessage([['h', GROUP], ['k', '4']])
    try {
      const client = await TestClient.connect(`ws://127.0.0.1:${port}`)
      await client.publishOk(event) // nothing listens on the push port: the hint stays in the outbox
      await first.waitForLog(r => r.message === 'hint publish failed; will retry')
      first.child.kill('SIGKILL')
      await withTimeout(first.exited, 'the killed relay to exit')
    } finally {
      if (first.child.exitCode === null && first.child.signalCode === null) first.child.kill('SIGKILL')
    }
    const push = await new PushEndpoint().start(pushPort)
    const second = await serveCli(port, env, dir)
    try {
      const got = await push.waitFor(event.id, 'the hint after the restart')
      assert.equal(got.hint.epoch, 4)
    } finally {
      second.child.kill('SIGTERM')
      await withTimeout(second.exited, 'the relay to exit')
      await push.close()
    }
  })
})

describe('[hints] configuration', () => {
  it('refuses transport "local" without a push_url', async () => {
    await assert.rejects(startTestRelay({ 'hints.transport': 'local' }), /hints\.push_url/)
  })

  it('writes no outbox entries when hints are off', async () => {
    const relay = await startTestRelay({ 'auth.auth_required_kinds': [] })
    try {
      const client = await TestClient.connect(relay.url)
      await client.publishOk(groupMessage([['h', GROUP]]))
      await client.close()
      assert.equal(relay.running.writer.depth, 0)
      assert.equal(outboxSize(relay), 0)
    } finally {
      await relay.close()
    }
  })
})

const outboxSize = (relay: TestRelay): number => relay.running.store.outbox.size()
