// [replication] end to end: three in-process relay replicas on one topic of the Pub/Sub emulator (the Google
// Cloud SDK's, on a loopback port; the suite is skipped, saying why, when the machine has none). Measured
// figures (visibility and OK latency) are printed as diagnostics, not asserted.
import assert from 'node:assert/strict'
import { rm } from 'node:fs/promises'
import { after, before, describe, it } from 'node:test'
import { PubSub } from '@google-cloud/pubsub'
import { findEmulator, startEmulator, type RunningEmulator } from '@msr/hints/emulator'
import type { VerifiedEvent } from '@msr/nostr'
import { samples } from './client-helpers.js'
import { join } from 'node:path'
import { AUTH_ON, freePort, newSigner, serveCli, stopCli, now, sign, signTied, startTestRelay, tempDir, TestClient, waitUntil, type NostrEvent, type TestRelay } from './harness.js'
import { PushEndpoint } from './push-endpoint.js'
import { snapshotTime } from '@msr/storage'
import { EventStore } from '../src/store/event-store.js'
import { fingerprint } from '../src/store/fingerprint.js'

const TOPIC = 'relay-events'
const METRICS_KEY = 'replication-metrics-key-0123'
const found = findEmulator()

/** Milliseconds since an arbitrary origin, for latencies. */
const clock = (): number => Number(process.hrtime.bigint()) / 1e6

const percentile = (values: number[], p: number): number => {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN
}

const summary = (name: string, values: number[]): string =>
  `${name}: n=${values.length} p50=${percentile(values, 50).toFixed(1)} ms p99=${percentile(values, 99).toFixed(1)} ms max=${Math.max(...values).toFixed(1)} ms`

/** A metric's value from a relay's /metrics. */
const metric = async (relay: TestRelay, name: string): Promise<number> => {
  const response = await fetch(`http://127.0.0.1:${relay.port}/metrics`, { headers: { Authorization: `Bearer ${METRICS_KEY}` } })
  return samples(await response.text()).get(name) ?? 0
}

/** Whether the relay serves the event to a REQ by id. */
const serves = async (relay: TestRelay, id: string): Promise<boolean> => {
  const client = await TestClient.connect(relay.url)
  try {
    return (await client.query({ ids: [id] })).length === 1
  } finally {
    await client.close()
  }
}

describe('replication over the Pub/Sub emulator', { skip: 'missing' in found ? found.missing : false }, () => {
  let emulator: RunningEmulator
  const replicas: TestRelay[] = []
  const dirs: string[] = []
  /** Every event some replica accepted from a client, over all tests: what every replica must end up with. */
  const accepted: NostrEvent[] = []

  /** A replica on the topic; `on_bus_outage` and the rest by overrides. */
  const replica = (id: string, overrides: Record<string, unknown> = {}, dataDir?: string, logLevel?: 'info'): Promise<TestRelay> =>
    startTestRelay(
      {
      'replication.topic': TOPIC,
      'replication.replica_id': id,
      'replication.project_id': emulator.projectId,
      // Long enough for a loaded machine (a publish to the emulator took over 1 s in a CI run); r0, the
      // replica the frozen-bus test times out on, has 1 s.
      'replication.ack_timeout': '10s',
      'replication.catch_up_quiet': '1s',
      'metrics.enabled': true,
      'metrics.auth': METRICS_KEY,
      'data.query_workers': 1,
      'data.db_query_timeout': '5s', // a loaded 2-core machine runs four relays and a JVM here
      ...overrides,
      },
      { ...(dataDir !== undefined && { dataDir }), ...(logLevel && { logLevel }) },
    )

  /** A Pub/Sub client of the emulator, as an operator's gcloud would be. */
  let adminClient: PubSub | undefined
  const admin = (): PubSub => (adminClient ??= new PubSub({ projectId: emulator.projectId }))
  /** An existing subscription's labels and expiration period (seconds; undefined: none set), as the emulator returns them. */
  const subscriptionSettings = async (name: string) => {
    const [metadata] = await admin().subscription(name).getMetadata()
    const ttl = metadata.expirationPolicy?.ttl?.seconds
    return { labels: metadata.labels, expiresAfter: ttl === undefined || ttl === null ? undefined : String(ttl) }
  }

  before(async () => {
    emulator = await startEmulator()
    process.env.PUBSUB_EMULATOR_HOST = emulator.host // read by the client library, as in production
    await emulator.createTopic(TOPIC, { retentionSeconds: 86_400 }) // retained: an empty replica seeks back into it
    replicas.push(
      await replica('r0', { 'replication.ack_timeout': '1s' }),
      await replica('r1', { 'replication.on_bus_outage': 'local', 'replication.ack_timeout': '1s' }),
      await replica('r2'),
    )
  })

  after(async () => {
    emulator?.resume()
    await Promise.all(replicas.map(r => r.close()))
    await adminClient?.close()
    await emulator?.stop()
    delete process.env.PUBSUB_EMULATOR_HOST
    await Promise.all(dirs.map(d => rm(d, { recursive: true, force: true })))
  })

  it('an event accepted on one replica is served by REQ and delivered live on the others', async t => {
    const author = newSigner()
    const clients = await Promise.all(replicas.map(r => TestClient.connect(r.url)))
    const seen: Array<Map<string, number>> = replicas.map(() => new Map())
    try {
      clients.forEach((client, i) => {
        client.ws.on('message', (data: Buffer) => {
          const message = JSON.parse(data.toString('utf8')) as [string, string, NostrEvent?]
          if (message[0] === 'EVENT' && message[1] === 'live' && message[2]) seen[i]?.set(message[2].id, clock())
        })
        client.send(['REQ', 'live', { authors: [author.pubkey] }])
      })
      await Promise.all(clients.map(c => c.collectUntilEose('live')))
      const events = Array.from({ length: 150 }, (_, i) => sign(author, { content: `across ${i}` }))
      accepted.push(...events)
      const okAt = new Map<string, number>()
      const okLatency: number[] = []
      for (const [i, event] of events.entries()) {
        const origin = clients[i % 3] as TestClient
        const sent = clock()
        await origin.publishOk(event)
        okAt.set(event.id, clock())
        okLatency.push(clock() - sent)
      }
      await waitUntil(() => seen.every(s => s.size === events.length), 'every replica to deliver every event live', 60_000)
      const visibility: number[] = []
      events.forEach((event, i) => {
        for (const [r, s] of seen.entries()) if (r !== i % 3) visibility.push((s.get(event.id) as number) - (okAt.get(event.id) as number))
      })
      for (const [r, client] of clients.entries()) {
        const served = await client.query({ authors: [author.pubkey] })
        assert.equal(served.length, events.length, `replica r${r} serves ${served.length} of ${events.length} by REQ`)
      }
      t.diagnostic(summary('OK latency with replication (publish → OK true)', okLatency))
      t.diagnostic(summary('visibility (OK on the origin → live EVENT on another replica)', visibility))
      // The same sequence on a relay without replication, for comparison.
      const single = await startTestRelay({ 'data.query_workers': 1 })
      dirs.push(single.dataDir)
      const direct = await TestClient.connect(single.url)
      const plain: number[] = []
      for (const event of events) {
        const sent = clock()
        await direct.publishOk(event)
        plain.push(clock() - sent)
      }
      await direct.close()
      await single.close()
      t.diagnostic(summary('OK latency without replication', plain))
    } finally {
      await Promise.all(clients.map(c => c.close()))
    }
  })

  it('conflicting writes sent to different replicas end in identical fingerprints, equal to one store that applied what was accepted', async () => {
    const [alice, bob, mallory] = [newSigner(), newSigner(), newSigner()]
    const clients = await Promise.all(replicas.map(r => TestClient.connect(r.url)))
    /** Sends each event to its replica at once; keeps those their origin accepted. */
    const race = async (sends: Array<[number, NostrEvent]>): Promise<void> => {
      const answers = await Promise.all(sends.map(([r, event]) => (clients[r] as TestClient).publish(event)))
      answers.forEach((ok, i) => ok[2] && accepted.push((sends[i] as [number, NostrEvent])[1]))
    }
    try {
      const at = now()
      // Replaceable and addressable ties: same created_at, different ids, one per replica.
      const profiles = signTied(alice, 3, { kind: 0, created_at: at })
      const articles = signTied(alice, 3, { kind: 30023, created_at: at, tags: [['d', 'post']] })
      await race(profiles.map((e, r) => [r, e]))
      await race(articles.map((e, r) => [(r + 1) % 3, e]))
      // A deletion racing its target, by id and by address.
      const note = sign(bob, { content: 'to be deleted' })
      const page = sign(bob, { kind: 30023, created_at: at - 5, tags: [['d', 'page']] })
      await race([
        [0, note],
        [1, sign(bob, { kind: 5, tags: [['e', note.id]] })],
        [2, page],
        [0, sign(bob, { kind: 5, created_at: at, tags: [['a', `30023:${bob.pubkey}:page`]] })],
      ])
      // A third party's kind 5 aimed at bob's event: refused where the target is known, stored elsewhere.
      const target = sign(bob, { content: 'not mallory’s' })
      await race([[2, target]])
      await race([
        [2, sign(mallory, { kind: 5, tags: [['e', target.id]] })],
        [1, sign(mallory, { kind: 5, content: 'second try', tags: [['e', target.id]] })],
      ])
      // An expiring event, judged after its expiration.
      await race([[1, sign(alice, { content: 'short-lived', tags: [['expiration', String(at + 2)]] })]])
      const later = at + 60
      const oracle = await oracleFingerprint(accepted, later)
      assert.ok(oracle.events >= 5, `only ${oracle.events} events served`)
      let last: string[] = []
      await waitUntil(async () => {
        last = []
        for (const r of replicas) {
          r.running.store.refresh()
          last.push(JSON.stringify(await fingerprint(r.running.store, later)))
        }
        return last.every(f => f === JSON.stringify(oracle))
      }, 'every replica to reach the fingerprint of one store that applied the accepted events', 60_000).catch((error: Error) => {
        throw new Error(`${error.message}\n  oracle ${JSON.stringify(oracle)}\n  ${last.join('\n  ')}`)
      })
    } finally {
      await Promise.all(clients.map(c => c.close()))
    }
  })

  /** One store applying the accepted events as a replica would (store rules only): the reference. */
  const oracleFingerprint = async (events: NostrEvent[], at: number) => {
    const dir = await tempDir('msr-replication-oracle-')
    dirs.push(dir)
    const store = EventStore.open(dir)
    try {
      await store.write(tx => [...events].reverse().forEach(e => tx.apply(e as VerifiedEvent, Buffer.from(JSON.stringify(e)), undefined, 'replica')))
      store.refresh()
      return await fingerprint(store, at)
    } finally {
      await store.close()
    }
  }

  it("private kinds, NIP-42 and hints hold on a replica for events accepted by another; ephemeral events reach the other replicas' subscribers", async () => {
    const push = await new PushEndpoint().start()
    const guarded = await replica('r3', { ...AUTH_ON, 'hints.transport': 'local', 'hints.push_url': push.url })
    const [bob, eve, sender] = [newSigner(), newSigner(), newSigner()]
    const origin = await TestClient.connect((replicas[0] as TestRelay).url)
    const recipient = await TestClient.connect(guarded.url)
    const snoop = await TestClient.connect(guarded.url)
    const anonymous = await TestClient.connect(guarded.url)
    try {
      await recipient.authOk(bob)
      await snoop.authOk(eve)
      recipient.send(['REQ', 'wraps', { kinds: [1059], '#p': [bob.pubkey] }])
      snoop.send(['REQ', 'wraps', { kinds: [1059], '#p': [bob.pubkey] }])
      recipient.send(['REQ', 'pings', { kinds: [20001], authors: [sender.pubkey] }])
      await Promise.all([recipient.collectUntilEose('wraps'), snoop.collectUntilEose('wraps'), recipient.collectUntilEose('pings')])
      const wrap = sign(sender, { kind: 1059, tags: [['p', bob.pubkey]], content: 'sealed' })
      const message = sign(sender, { kind: 446, tags: [['p', bob.pubkey]], content: 'noise ciphertext' })
      const ping = sign(sender, { kind: 20001, content: 'typing' })
      await origin.publishOk(wrap)
      await origin.publishOk(message)
      await origin.publishOk(ping)
      accepted.push(wrap, message)
      assert.equal((await recipient.nextEvent('wraps')).id, wrap.id, 'the recipient gets the gift wrap live')
      assert.equal((await recipient.nextEvent('pings')).id, ping.id, 'the ephemeral event reaches a subscriber of another replica')
      assert.equal((await push.waitFor(message.id)).hint.id, message.id, 'the replica that stored the 446 queued its hint')
      assert.deepEqual(ids(await recipient.query({ ids: [wrap.id] })), [wrap.id])
      await snoop.sync()
      assert.deepEqual(snoop.takeAll(m => m[0] === 'EVENT'), [], 'another authenticated key got the gift wrap live')
      assert.deepEqual(await snoop.query({ ids: [wrap.id] }), [], 'another authenticated key got the gift wrap by REQ')
      anonymous.send(['REQ', 'peek', { kinds: [1059], '#p': [bob.pubkey] }])
      const answer = await anonymous.next(m => (m[0] === 'CLOSED' || m[0] === 'EOSE') && m[1] === 'peek')
      assert.equal(answer[0], 'CLOSED')
      assert.match(String(answer[2]), /^auth-required: /)
    } finally {
      await Promise.all([origin.close(), recipient.close(), snoop.close(), anonymous.close()])
      await guarded.close()
      await push.close()
    }
  })

  it('uses a subscription infra made as it is, and does not start when the topic or the named subscription is missing, saying which', async () => {
    await emulator.createSubscription(TOPIC, 'infra-made')
    const named = await replica('r4', { 'replication.subscription': 'infra-made' })
    const origin = await TestClient.connect((replicas[0] as TestRelay).url)
    try {
      const note = sign(newSigner(), { content: 'through a named subscription' })
      await origin.publishOk(note)
      accepted.push(note)
      await waitUntil(() => serves(named, note.id), 'the named subscription to deliver', 30_000, 100)
    } finally {
      await origin.close()
      await named.close()
    }
    const dir = await tempDir()
    dirs.push(dir)
    await assert.rejects(replica('r5', { 'replication.topic': 'no-such-topic' }, dir), /^Error: \[replication\] could not create subscription no-such-topic-r5 on topic no-such-topic: /)
    await assert.rejects(replica('r6', { 'replication.subscription': 'nobody-made-this' }, dir), /^Error: \[replication\] subscription nobody-made-this does not exist/)
  })

  it('msr-relay serve as a replica: configured by environment, it exchanges events with the others and stops cleanly on SIGTERM', async () => {
    const dir = await tempDir()
    dirs.push(dir)
    const port = await freePort()
    const cli = await serveCli(
      port,
      {
        PUBSUB_EMULATOR_HOST: emulator.host,
        RELAY_DATA__PATH: join(dir, 'data'),
        RELAY_REPLICATION__TOPIC: TOPIC,
        RELAY_REPLICATION__PROJECT_ID: emulator.projectId,
      },
      dir,
    )
    let stopped: Awaited<ReturnType<typeof stopCli>> | undefined
    let subscription = ''
    const onCli = await TestClient.connect(`ws://127.0.0.1:${port}`)
    const other = await TestClient.connect((replicas[1] as TestRelay).url)
    try {
      const started = await cli.waitForLog(r => r.message === 'relay listening')
      assert.match(String(started.replication), new RegExp(`^topic ${TOPIC} as [0-9a-f]{12}, on bus outage: refuse$`))
      subscription = `${TOPIC}-${String(started.replica)}`
      // A per-start id: its subscription, made by the relay, is labelled and expires a day after its last pull.
      assert.deepEqual(await subscriptionSettings(subscription), { labels: { 'msr-relay': 'replica', replica_id: String(started.replica) }, expiresAfter: '86400' })
      const fromProcess = sign(newSigner(), { content: 'from the CLI replica' })
      const toProcess = sign(newSigner(), { content: 'to the CLI replica' })
      await onCli.publishOk(fromProcess)
      await other.publishOk(toProcess)
      accepted.push(fromProcess, toProcess)
      await waitUntil(async () => (await serves(replicas[1] as TestRelay, fromProcess.id)) && (await onCli.query({ ids: [toProcess.id] })).length === 1, 'the events to cross', 30_000, 100)
    } finally {
      await Promise.all([onCli.close(), other.close()])
      stopped = await stopCli(cli)
    }
    assert.deepEqual(stopped, { code: 0, signal: null }, cli.stderr.join('\n'))
    assert.equal((await admin().subscription(subscription).exists())[0], false, 'a per-start subscription is deleted at a clean stop')
  })

  it("labels every auto subscription with its replica id; one of a stable id keeps Pub/Sub's default expiration", async () => {
    // r0's id is set: it comes back to its subscription's backlog after a restart, so no one-day expiration.
    assert.deepEqual(await subscriptionSettings(`${TOPIC}-r0`), { labels: { 'msr-relay': 'replica', replica_id: 'r0' }, expiresAfter: undefined })
  })

  it('with the bus frozen, "refuse" answers OK false "error:" after ack_timeout and "local" OK true, REQs go on, and everything is published once it answers', async t => {
    const [refusing, local, other] = replicas as [TestRelay, TestRelay, TestRelay]
    const author = newSigner()
    const a = await TestClient.connect(refusing.url)
    const b = await TestClient.connect(local.url)
    const watcher = await TestClient.connect(refusing.url)
    const late = await TestClient.connect(refusing.url)
    watcher.send(['REQ', 'live', { authors: [author.pubkey] }])
    await watcher.collectUntilEose('live')
    const held = sign(author, { content: 'while the bus is down (refuse)' })
    const kept = sign(author, { content: 'while the bus is down (local)' })
    try {
      const before = await metric(refusing, 'msr_relay_replication_ok_timeouts_total{on_bus_outage="refuse"}')
      emulator.pause()
      try {
        const started = clock()
        const [refused, accepted] = await Promise.all([a.publish(held), b.publish(kept)])
        t.diagnostic(`OK with the bus frozen: ${(clock() - started).toFixed(0)} ms (ack_timeout 1 s)`)
        assert.equal(refused[2], false)
        assert.match(refused[3], /^error: not yet replicated: /)
        assert.deepEqual(accepted.slice(2), [true, ''])
        assert.deepEqual(ids(await a.query({ ids: [held.id] })), [held.id], 'the refused event is committed locally and served')
        await watcher.sync()
        assert.deepEqual(watcher.takeAll(m => m[0] === 'EVENT'), [], 'fanned out live before the bus confirmed it')
        late.send(['REQ', 'live', { authors: [author.pubkey] }])
        assert.deepEqual(ids(await late.collectUntilEose('live')), [held.id], 'a REQ opened meanwhile reads it from the store')
        assert.equal(await metric(refusing, 'msr_relay_replication_ok_timeouts_total{on_bus_outage="refuse"}'), before + 1)
        assert.equal(await metric(refusing, 'msr_relay_replication_bus_outage'), 1)
        assert.equal(refusing.running.store.replication.size(), 1)
      } finally {
        emulator.resume()
      }
      assert.equal((await watcher.nextEvent('live', 60_000)).id, held.id, 'fanned out once the bus confirmed it')
      await late.sync()
      assert.deepEqual(late.takeAll(m => m[0] === 'EVENT'), [], 'a subscription whose backfill had the event got it again live')
      await waitUntil(async () => (await serves(other, held.id)) && (await serves(other, kept.id)) && (await serves(local, held.id)), 'the held events to reach every replica', 60_000, 250)
      await waitUntil(() => refusing.running.store.replication.size() === 0 && local.running.store.replication.size() === 0, 'the outboxes to drain', 30_000)
      assert.deepEqual(await a.publish(held), ['OK', held.id, true, 'duplicate: already have this event'])
      assert.equal(await metric(refusing, 'msr_relay_replication_bus_outage'), 0)
    } finally {
      await Promise.all([a.close(), b.close(), watcher.close(), late.close()])
    }
  })

  /** The replica's /readyz status. */
  const readyz = async (relay: TestRelay): Promise<number> => (await fetch(`http://127.0.0.1:${relay.port}/readyz`)).status

  /** Its store's fingerprint now, once stable. */
  const printOf = async (relay: TestRelay, at: number): Promise<string> => {
    relay.running.store.refresh()
    return JSON.stringify(await fingerprint(relay.running.store, at))
  }

  it('a replica started empty restores the newest snapshot, seeks its subscription back before it, applies the backlog, and only then reports ready; with no snapshot it rebuilds from the topic', async () => {
    const snapshots = await tempDir('msr-replication-snapshots-')
    dirs.push(snapshots)
    const backup = { 'backup.target': snapshots, 'backup.interval': '1h', 'backup.on_shutdown': false }
    const writer = await replica('snapshots', backup)
    const [r0, r1, r2] = replicas as [TestRelay, TestRelay, TestRelay]
    const author = newSigner()
    const a = await TestClient.connect(r1.url)
    const b = await TestClient.connect(r2.url)
    try {
      const before = Array.from({ length: 20 }, (_, i) => sign(author, { content: `before the snapshot ${i}` }))
      for (const e of before) await a.publishOk(e)
      await waitUntil(async () => (await printOf(writer, now())) === (await printOf(r0, now())), 'the snapshot writer to catch up', 30_000)
      await waitUntil(async () => (await readyz(writer)) === 200, 'the snapshot writer to be ready (no snapshot before)', 30_000)
      await (writer.running.backups as NonNullable<typeof writer.running.backups>).run('interval')
      const after = Array.from({ length: 20 }, (_, i) => sign(author, { content: `after the snapshot ${i}` }))
      for (const e of after) await b.publishOk(e)
      accepted.push(...before, ...after)
      await waitUntil(async () => (await printOf(r1, now())) === (await printOf(r2, now())) && (await printOf(r0, now())) === (await printOf(r2, now())), 'the replicas to agree', 30_000)

      for (const withSnapshot of [true, false]) {
        // A subscription as Pub/Sub makes it: from its creation on (the emulator would replay the topic's retention).
        const subscription = `fresh-${withSnapshot ? 'restored' : 'topic'}`
        await emulator.createSubscription(TOPIC, subscription)
        await emulator.seek(subscription, new Date())
        const fresh = await replica(subscription, { ...(withSnapshot && backup), 'replication.subscription': subscription, 'replication.catch_up_quiet': '3s' }, undefined, 'info')
        try {
          assert.equal(await readyz(fresh), 503, 'ready before catching up')
          assert.equal(await metric(fresh, 'msr_relay_replication_ready'), 0, 'the readiness gauge says not ready')
          await waitUntil(async () => (await readyz(fresh)) === 200, 'the fresh replica to report ready', 60_000, 50)
          assert.equal(await metric(fresh, 'msr_relay_replication_ready'), 1)
          assert.ok((await metric(fresh, 'msr_relay_replication_catch_up_backlog')) >= (withSnapshot ? 20 : 40), 'the replayed backlog is counted')
          assert.ok((await metric(fresh, 'msr_relay_replication_catch_up_seconds')) >= 3, 'at least catch_up_quiet')
          const at = now()
          assert.equal(await printOf(fresh, at), await printOf(r0, at), 'ready, but its store differs from the others')
          const client = await TestClient.connect(fresh.url)
          assert.equal((await client.query({ authors: [author.pubkey] })).length, 40)
          await client.close()
          const seek = await fresh.waitForLog(l => String(l.message).startsWith('replication bootstrap'), 1000)
          if (withSnapshot) {
            const restored = await fresh.waitForLog(l => l.message === 'restored the newest snapshot', 1000)
            const started = snapshotTime(String(restored.snapshot)) as Date
            assert.equal(seek.snapshotStartedAt, started.toISOString())
            assert.equal(seek.seekTo, new Date(started.getTime() - 10 * 60_000).toISOString(), 'sought back by seek_margin (10 min)')
          } else assert.equal(seek.seekTo, new Date(0).toISOString())
        } finally {
          await fresh.close()
        }
      }
    } finally {
      await Promise.all([a.close(), b.close()])
      await writer.close()
    }
  })
})

const ids = (events: NostrEvent[]): string[] => events.map(e => e.id)
