// Durability on ephemeral instances (DESIGN.md §4): export and import, snapshots to a directory or
// Cloud Storage (a fake server speaking the JSON API to the real client), restore on boot, and no
// acknowledged event lost to a SIGKILL.
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { readdir, readFile, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { gunzipSync } from 'node:zlib'
import { after, before, describe, it } from 'node:test'
import { startFakeGcs, type FakeGcs } from '@msr/storage/fake-gcs'
import { openSnapshotStore, type SnapshotStore } from '@msr/storage'
import { createLogger } from '@msr/telemetry'
import { Backups } from '../src/backup/backups.js'
import { runExport, runImport } from '../src/backup/transfer-cli.js'
import { acceptUnverified, isInvalid, precheckStored } from '../src/pipeline/validate.js'
import { Writer } from '../src/pipeline/writer.js'
import { EventStore } from '../src/store/event-store.js'
import { PushEndpoint } from './push-endpoint.js'
import {
  freePort,
  ids,
  newSigner,
  now,
  runCli,
  serveCli,
  sign,
  startTestRelay,
  tempDir,
  testConfig,
  TestClient,
  waitUntil,
  withTimeout,
  type NostrEvent,
  type TestRelay,
} from './harness.js'

/** A store's worth of events exercising every storage rule. */
const sampleEvents = (): NostrEvent[] => {
  const [alice, bob] = [newSigner(), newSigner()]
  const t = now()
  const notes = Array.from({ length: 30 }, (_, i) => sign(i % 2 ? alice : bob, { kind: 1, created_at: t - 100 + i, content: `note ${i}`, tags: [['t', 'x']] }))
  const doomed = sign(alice, { kind: 1, created_at: t - 50, content: 'to be deleted' })
  return [
    ...notes,
    sign(alice, { kind: 0, created_at: t - 10, content: '{"name":"old"}' }),
    sign(alice, { kind: 0, created_at: t - 5, content: '{"name":"new"}' }),
    sign(bob, { kind: 30000, created_at: t - 5, tags: [['d', 'list']], content: 'v1' }),
    sign(bob, { kind: 30000, created_at: t - 1, tags: [['d', 'list']], content: 'v2' }),
    doomed,
    sign(alice, { kind: 5, created_at: t - 40, tags: [['e', doomed.id]] }),
    sign(bob, { kind: 445, created_at: t - 3, tags: [['h', 'group-1'], ['k', '2']], content: 'mls' }),
    sign(alice, { kind: 1, created_at: t - 2, tags: [['expiration', String(t + 3600)]], content: 'expires later' }),
  ]
}

const FILTERS = [{}, { kinds: [1] }, { kinds: [0] }, { kinds: [30000] }, { kinds: [5] }, { '#t': ['x'], limit: 7 }, { kinds: [445] }]

/** What every filter returns, as ids in order. */
const answers = async (url: string): Promise<string[][]> => {
  const client = await TestClient.connect(url)
  try {
    const out: string[][] = []
    for (const filter of FILTERS) out.push(ids(await client.query({ limit: 500, ...filter })))
    return out
  } finally {
    await client.close()
  }
}

const publishAll = async (url: string, events: NostrEvent[]): Promise<void> => {
  const client = await TestClient.connect(url)
  for (const e of events) await client.publishOk(e)
  await client.close()
}

const OPEN = { 'auth.auth_required_kinds': [] }

/** A kind-1 event with a correct id and a meaningless signature (for tests that bypass verification). */
const unsigned = (pubkey: string, content: string): NostrEvent => {
  const created_at = now()
  const id = createHash('sha256').update(JSON.stringify([0, pubkey, created_at, 1, [], content])).digest('hex')
  return { id, pubkey, created_at, kind: 1, tags: [], content, sig: '0'.repeat(128) }
}

describe('export and import', () => {
  let source: TestRelay
  let expected: string[][]
  let dir: string

  before(async () => {
    dir = await tempDir()
    source = await startTestRelay(OPEN)
    await publishAll(source.url, sampleEvents())
    expected = await answers(source.url)
    await source.stop()
  })

  after(async () => {
    await source?.close()
  })

  for (const name of ['events.jsonl', 'events.jsonl.gz']) {
    it(`round-trips through ${name} into a fresh store with the same query results`, async () => {
      const file = join(dir, name)
      const exported = await runExport(testConfig(source.dataDir), file, undefined)
      assert.equal(exported, sampleEvents().length - 3, 'every stored event (older versions and the deleted one are not stored)')
      const raw = await readFile(file)
      const text = (name.endsWith('.gz') ? gunzipSync(raw) : raw).toString('utf8')
      assert.equal(text.trim().split('\n').length, exported)
      const target = await tempDir()
      const summary = await runImport(testConfig(target), file, true)
      assert.equal(summary.imported, exported)
      assert.equal(summary.invalid.size + summary.rejected.size, 0)
      const restored = await startTestRelay(OPEN, { dataDir: target })
      try {
        assert.deepEqual(await answers(restored.url), expected)
        await restored.stop()
        const again = await runImport(testConfig(target), file, true)
        assert.equal(again.imported, 0, 'a second import adds nothing')
        assert.equal(again.duplicate, exported)
      } finally {
        await restored.close()
      }
    })
  }

  it('applies replacement and deletion rules whatever the order of the lines, and counts every bad line with its reason', async () => {
    const alice = newSigner()
    const t = now()
    const older = sign(alice, { kind: 0, created_at: t - 9, content: 'old' })
    const newer = sign(alice, { kind: 0, created_at: t - 1, content: 'new' })
    const target = sign(alice, { kind: 1, created_at: t - 5 })
    const deletion = sign(alice, { kind: 5, created_at: t - 4, tags: [['e', target.id]] })
    const good = sign(alice, { kind: 1, content: 'fine' })
    const badSig = { ...sign(alice, { kind: 1, content: 'sig' }), sig: sign(alice, { kind: 1 }).sig }
    const lines = [
      JSON.stringify(newer),
      JSON.stringify(deletion),
      JSON.stringify(older),
      JSON.stringify(target),
      'not json',
      JSON.stringify({ ...good, extra: 1 }),
      JSON.stringify({ ...good, content: 'tampered' }),
      JSON.stringify(badSig),
      JSON.stringify(sign(alice, { kind: 20001 })),
      JSON.stringify(sign(alice, { kind: 1, tags: [['expiration', String(t - 1)]] })),
      '',
      JSON.stringify(good),
    ]
    const file = join(dir, 'mixed.jsonl')
    await writeFile(file, lines.join('\r\n'))
    const summary = await runImport(testConfig(await tempDir()), file, true)
    assert.equal(summary.read, 11)
    assert.equal(summary.imported, 3, 'newer, deletion, good')
    assert.deepEqual(
      [...summary.rejected.keys()].map(r => r.split(':')[0]).sort(),
      ['blocked', 'invalid'],
      'the older version (invalid: newer stored) and the deleted event (blocked:)',
    )
    const invalid = [...summary.invalid.keys()].join('\n')
    for (const reason of ['not JSON', 'unknown event field', 'event id does not match', 'bad signature', 'ephemeral', 'expired'])
      assert.match(invalid, new RegExp(reason), reason)
    const unverified = await runImport(testConfig(await tempDir()), file, false)
    assert.ok(!unverified.invalid.has('invalid: bad signature'), '--no-verify skips the signature, not the id')
  })

  it('exports only what a --filter matches, never expired events', async () => {
    const relay = await startTestRelay(OPEN)
    try {
      const soon = sign(newSigner(), { kind: 1, tags: [['expiration', String(now() + 4)]] })
      await publishAll(relay.url, [sign(newSigner(), { kind: 1 }), sign(newSigner(), { kind: 7 }), soon])
      await waitUntil(() => now() > Number(soon.tags[0]?.[1]), 'the event to expire', 10_000)
      const cli = runCli(['export', '--filter', '{"kinds":[1]}', '--out', join(dir, 'filtered.jsonl')], { RELAY_DATA__PATH: relay.dataDir }, dir)
      assert.deepEqual(await cli.exited, { code: 0, signal: null }, cli.stderr.join('\n'))
      const lines = (await readFile(join(dir, 'filtered.jsonl'), 'utf8')).trim().split('\n')
      assert.equal(lines.length, 1)
      assert.equal((JSON.parse(lines[0] as string) as NostrEvent).kind, 1)
      assert.match(cli.stderr.join('\n'), /exported 1 events/)
    } finally {
      await relay.close()
    }
  })

  it('the CLI refuses a bad --filter or an unknown option (exit 2) and says why an input cannot be read (exit 1)', async () => {
    const bad = runCli(['export', '--filter', '{"kinds":"x"}'], { RELAY_DATA__PATH: join(dir, 'none') }, dir)
    assert.equal((await bad.exited).code, 2)
    assert.match(bad.stderr.join('\n'), /--filter/)
    const unknown = runCli(['import', '--bogus'], { RELAY_DATA__PATH: join(dir, 'none') }, dir)
    assert.equal((await unknown.exited).code, 2)
    const missing = runCli(['import', '--in', join(dir, 'absent.jsonl')], { RELAY_DATA__PATH: join(dir, 'none') }, dir)
    assert.equal((await missing.exited).code, 1)
    assert.match(missing.stderr.join('\n'), /absent\.jsonl/)
  })

  it('the CLI imports from a file and prints the summary', async () => {
    const file = join(dir, 'cli.jsonl')
    const event = sign(newSigner(), { kind: 1 })
    await writeFile(file, `${JSON.stringify(event)}\nnot json\n`)
    const cli = runCli(['import', '--in', file], { RELAY_DATA__PATH: join(dir, 'cli-store') }, dir)
    assert.deepEqual(await cli.exited, { code: 0, signal: null }, cli.stderr.join('\n'))
    assert.match(cli.stderr.join('\n'), /read 2, imported 1, duplicate 0, rejected 0, invalid 1/)
  })
})

const snapshotFiles = async (dir: string) => (await readdir(dir)).filter(f => /^snapshot-.*\.jsonl\.gz$/.test(f))

describe('[backup] configuration', () => {
  it('config check refuses a gs:// target without a bucket', async () => {
    const dir = await tempDir()
    const bad = runCli(['config', 'check'], { RELAY_BACKUP__TARGET: 'gs://', RELAY_DATA__PATH: join(dir, 'none') }, dir)
    assert.equal((await bad.exited).code, 2)
    assert.match(bad.stderr.join('\n'), /backup\.target.*bucket/)
    const good = runCli(['config', 'check'], { RELAY_BACKUP__TARGET: 'gs://msr-backups/relay', RELAY_DATA__PATH: join(dir, 'none') }, dir)
    assert.equal((await good.exited).code, 0)
  })
})

describe('files the relay writes', () => {
  it('the store, a snapshot and an export are readable by the relay\'s user only (directories 0700, files 0600)', async () => {
    const base = await tempDir()
    const target = join(base, 'snapshots')
    const relay = await startTestRelay({ ...OPEN, 'backup.target': target, 'backup.interval': 3_600_000 }, { dataDir: join(base, 'store') })
    await publishAll(relay.url, sampleEvents())
    await relay.stop()
    const cli = runCli(['export', '--out', join(base, 'export.jsonl')], { RELAY_DATA__PATH: relay.dataDir }, base)
    assert.deepEqual(await cli.exited, { code: 0, signal: null }, cli.stderr.join('\n'))
    const paths = [
      relay.dataDir,
      ...(await readdir(relay.dataDir)).map(name => join(relay.dataDir, name)),
      target,
      ...(await snapshotFiles(target)).map(name => join(target, name)),
      join(base, 'export.jsonl'),
    ]
    assert.ok(paths.length >= 6, paths.join(', '))
    for (const path of paths) assert.equal((await stat(path)).mode & 0o077, 0, `${path} is open to others: ${((await stat(path)).mode & 0o777).toString(8)}`)
    await relay.close()
  })
})

describe('snapshots to a directory', () => {
  it('writes one on shutdown and restores the newest into an empty store before listening', async () => {
    const target = await tempDir()
    const first = await startTestRelay({ ...OPEN, 'backup.target': target, 'backup.interval': 3_600_000 })
    await publishAll(first.url, sampleEvents())
    const expected = await answers(first.url)
    await first.close()
    const files = await snapshotFiles(target)
    assert.equal(files.length, 1, 'the shutdown snapshot')
    assert.match(files[0] as string, /\.delta\.jsonl\.gz$/, 'a delta: the store started empty, so it covers everything')
    const second = await startTestRelay({ ...OPEN, 'backup.target': target }, { logLevel: 'info' })
    try {
      // No waiting: startRelay resolved, so the restore happened before the relay listened.
      assert.deepEqual(await answers(second.url), expected)
      await second.waitForLog(r => r.message === 'restored the newest snapshot')
    } finally {
      await second.close()
    }
  })

  it('takes a snapshot every interval when something changed and keeps the newest `keep`', async () => {
    const target = await tempDir()
    const relay = await startTestRelay({ ...OPEN, 'backup.target': target, 'backup.interval': 150, 'backup.keep': 2, 'backup.on_shutdown': false }, { logLevel: 'info' })
    try {
      for (let i = 0; i < 4; i++) {
        await publishAll(relay.url, [sign(newSigner(), { kind: 1, content: `round ${i}` })])
        const written = relay.logs.filter(r => r.message === 'snapshot written').length
        await waitUntil(() => relay.logs.filter(r => r.message === 'snapshot written').length > written, 'the next snapshot', 10_000, 20)
      }
      const files = await snapshotFiles(target)
      assert.equal(files.length, 2)
      const newest = files.sort().at(-1) as string
      const lines = gunzipSync(await readFile(join(target, newest))).toString('utf8').trim().split('\n')
      assert.equal(lines.length, 4, 'the newest snapshot holds every event')
      const quiet = relay.logs.filter(r => r.message === 'snapshot written').length
      await new Promise(resolve => setTimeout(resolve, 500))
      assert.equal(relay.logs.filter(r => r.message === 'snapshot written').length, quiet, 'no snapshot when nothing changed')
    } finally {
      await relay.close()
    }
  })

  it('at shutdown writes a delta of what came after the last full snapshot, and a restore applies both', async () => {
    const target = await tempDir()
    const relay = await startTestRelay({ ...OPEN, 'backup.target': target, 'backup.interval': 3_600_000 })
    const early = [sign(newSigner(), { kind: 1, content: 'before the full snapshot' }), sign(newSigner(), { kind: 0, content: 'v1' })]
    await publishAll(relay.url, early)
    await relay.running.backups?.run('interval')
    const late = [sign(newSigner(), { kind: 1, content: 'after it' }), sign(newSigner(), { kind: 1, content: 'also after it' })]
    await publishAll(relay.url, late)
    const expected = await answers(relay.url)
    await relay.close()
    const files = (await snapshotFiles(target)).sort()
    assert.equal(files.length, 2)
    const [full, delta] = files as [string, string]
    assert.doesNotMatch(full, /\.delta\./)
    assert.match(delta, /\.delta\.jsonl\.gz$/)
    const idsIn = async (file: string) => gunzipSync(await readFile(join(target, file))).toString('utf8').trim().split('\n').map(l => (JSON.parse(l) as NostrEvent).id).sort()
    assert.deepEqual(await idsIn(full), ids(early).sort())
    assert.deepEqual(await idsIn(delta), ids(late).sort())
    const restored = await startTestRelay({ ...OPEN, 'backup.target': target })
    try {
      assert.deepEqual(await answers(restored.url), expected)
    } finally {
      await restored.close()
    }
  })

  it('at shutdown writes a full snapshot when the store had events the snapshots may not hold', async () => {
    const own = await startTestRelay(OPEN)
    await publishAll(own.url, [sign(newSigner(), { kind: 1, content: 'stored before snapshots were on' })])
    await own.stop()
    const target = await tempDir()
    const relay = await startTestRelay({ ...OPEN, 'backup.target': target }, { dataDir: own.dataDir })
    await publishAll(relay.url, [sign(newSigner(), { kind: 1, content: 'and one more' })])
    await relay.close()
    const files = await snapshotFiles(target)
    assert.equal(files.length, 1)
    assert.doesNotMatch(files[0] as string, /\.delta\./)
    assert.equal(gunzipSync(await readFile(join(target, files[0] as string))).toString('utf8').trim().split('\n').length, 2)
  })

  it('abandons a full snapshot still running at shutdown and writes the delta instead', async () => {
    const dir = await tempDir()
    const store = EventStore.open(join(dir, 'lmdb'))
    const writer = new Writer(store, () => undefined)
    const target = join(dir, 'snapshots')
    const real = openSnapshotStore(target)
    // The real directory store, whose full snapshots take as long as the test wants.
    let release!: () => void
    const held = new Promise<void>(resolve => (release = resolve))
    const slow: SnapshotStore = {
      ...real,
      put: async (source, opts) => {
        // A full snapshot's upload starts only when released, or fails once its source is destroyed.
        if (opts?.kind !== 'delta') await Promise.race([held, new Promise(resolve => (source as NodeJS.ReadableStream).once('close', resolve))])
        return real.put(source, opts)
      },
    }
    const backups = new Backups(
      { store, snapshots: slow, logger: createLogger({ service: 'test', level: 'silent' }), observer: { snapshot: () => undefined } },
      { intervalMs: 3_600_000, keep: 3, shutdownBudgetMs: 5000, startedEmpty: true },
    )
    // Stored straight through the writer, so only their ids need to be right (signing 3,000 takes seconds).
    const pubkey = newSigner().pubkey
    const events = Array.from({ length: 3000 }, (_, i) => unsigned(pubkey, `e${i}`))
    const outcomes = await Promise.all(
      events.map(e => {
        const checked = precheckStored(e, now())
        assert.ok(!isInvalid(checked), 'a well-formed event')
        const { event, json } = acceptUnverified(checked, 'operator vouched')
        return writer.submit(event, json)
      }),
    )
    assert.ok(outcomes.every(o => o.status === 'stored'))
    backups.changed(ids(events))
    const full = backups.run('interval')
    await backups.stop(Date.now() + 5000)
    await full
    release()
    const files = await snapshotFiles(target)
    assert.equal(files.length, 1)
    assert.match(files[0] as string, /\.delta\./)
    const lines = gunzipSync(await readFile(join(target, files[0] as string))).toString('utf8').trim().split('\n')
    assert.equal(lines.length, 3000, 'the abandoned full snapshot handed its events back to the delta')
    await writer.drain()
    await store.close()
  })

  it('a deleted event and an older version stay refused after a restore, though the kind 5 expired and the newest version was deleted', async () => {
    const target = await tempDir()
    const first = await startTestRelay({ ...OPEN, 'backup.target': target, 'backup.interval': 3_600_000 })
    const author = newSigner()
    const t = now()
    const v1 = sign(author, { kind: 10070, created_at: t - 100, content: 'V1' })
    const v2 = sign(author, { kind: 10070, created_at: t - 50, content: 'V2' })
    const x = sign(author, { kind: 1, created_at: t - 30, content: 'X' })
    const kept = sign(author, { kind: 1, created_at: t - 25, content: 'kept' })
    const deletions = [
      sign(author, { kind: 5, created_at: t - 40, tags: [['e', v2.id]] }),
      sign(author, { kind: 5, created_at: t - 20, tags: [['e', x.id], ['expiration', String(t + 2)]] }),
    ]
    await publishAll(first.url, [v1, v2, x, kept, ...deletions])
    const refusals = async (url: string) => {
      const client = await TestClient.connect(url)
      try {
        return [(await client.publish(v1)).slice(2), (await client.publish(x)).slice(2)]
      } finally {
        await client.close()
      }
    }
    const refused = [[false, 'invalid: a newer version of this replaceable event is already stored'], [false, 'blocked: this event was deleted by its author']]
    await waitUntil(() => now() > t + 2, 'the kind 5 of X to expire', 5_000)
    assert.deepEqual(await refusals(first.url), refused, 'before the restart')
    const expected = await answers(first.url)
    await first.close()
    const second = await startTestRelay({ ...OPEN, 'backup.target': target })
    try {
      assert.deepEqual(await refusals(second.url), refused, 'after the restore')
      assert.deepEqual(await answers(second.url), expected)
    } finally {
      await second.close()
    }
    // msr-relay import counts the records and skips them (unsigned), unless the operator vouches for the file.
    const [snapshot] = await snapshotFiles(target)
    const verified = await runImport(testConfig(await tempDir()), join(target, snapshot as string), true)
    assert.equal(verified.bookkeeping, 3)
    const vouched = await tempDir()
    assert.equal((await runImport(testConfig(vouched), join(target, snapshot as string), false)).bookkeeping, 3)
    const imported = await startTestRelay(OPEN, { dataDir: vouched })
    try {
      assert.deepEqual(await refusals(imported.url), refused, 'after msr-relay import --no-verify')
    } finally {
      await imported.close()
    }
  })

  it('never restores over a store that has events', async () => {
    const target = await tempDir()
    const first = await startTestRelay({ ...OPEN, 'backup.target': target })
    await publishAll(first.url, [sign(newSigner(), { kind: 1, content: 'in the snapshot' })])
    await first.close()
    const own = await startTestRelay(OPEN)
    const mine = sign(newSigner(), { kind: 1, content: 'already here' })
    await publishAll(own.url, [mine])
    await own.stop()
    const restarted = await startTestRelay({ ...OPEN, 'backup.target': target }, { dataDir: own.dataDir })
    try {
      assert.deepEqual((await answers(restarted.url))[1], [mine.id])
    } finally {
      await restarted.close()
    }
  })
})

describe('hints waiting in the outbox, across snapshots', () => {
  const TOKEN = 'push-token-for-backup-tests-0123'
  const endpoints: PushEndpoint[] = []
  /** A push endpoint closed after the suite, whatever a test did. */
  const endpoint = async (status = 204) => {
    const push = await new PushEndpoint().start()
    push.status = () => status
    endpoints.push(push)
    return push
  }
  after(async () => {
    await Promise.all(endpoints.map(e => e.close()))
  })
  const hintsTo = (push: PushEndpoint) => ({ 'hints.transport': 'local', 'hints.push_url': push.url, 'hints.push_token': TOKEN, 'hints.max_backoff': 400 })
  const groupMessage = (group: string, epoch: number) => sign(newSigner(), { kind: 445, tags: [['h', group], ['k', String(epoch)]], content: 'mls ciphertext' })
  const directMessage = (to: string) => sign(newSigner(), { kind: 446, tags: [['p', to]], content: 'noise ciphertext' })
  const recordsIn = async (target: string): Promise<string[]> => {
    const lines: string[] = []
    for (const file of await snapshotFiles(target)) lines.push(...gunzipSync(await readFile(join(target, file))).toString('utf8').trim().split('\n'))
    return lines.filter(l => l.startsWith('{"outbox":')).map(l => (JSON.parse(l) as { outbox: { id: string } }).outbox.id).sort()
  }

  it('a hint the bus never confirmed before the relay stopped is published by the relay restored from its snapshot', async () => {
    const target = await tempDir()
    const [down, up] = [await endpoint(503), await endpoint()]
    const first = await startTestRelay({ ...OPEN, ...hintsTo(down), 'backup.target': target, 'backup.interval': 3_600_000 })
    const group = groupMessage('group-outage', 3)
    const dm = directMessage(newSigner().pubkey)
    try {
      await publishAll(first.url, [group, dm, sign(newSigner(), { kind: 1, content: 'no hint' })])
      await waitUntil(() => down.requests >= 2, 'publishes refused by the bus')
    } finally {
      await first.close()
    }
    assert.deepEqual(await recordsIn(target), [group.id, dm.id].sort(), 'the shutdown snapshot holds both hints after its events')
    const second = await startTestRelay({ ...OPEN, ...hintsTo(up), 'backup.target': target }, { logLevel: 'info' })
    try {
      assert.equal((await up.waitFor(group.id)).hint.epoch, 3)
      assert.deepEqual((await up.waitFor(dm.id)).hint.recipients, dm.tags.map(t => t[1]))
      assert.equal((await second.waitForLog(r => r.message === 'restored the newest snapshot')).hintsQueued, 2)
      await waitUntil(() => second.running.store.outbox.size() === 0, 'the outbox to empty')
    } finally {
      await second.close()
    }
  })

  it('a hint the bus confirmed is not in the snapshot and is not published again after a restore', async () => {
    const target = await tempDir()
    const up = await endpoint()
    const first = await startTestRelay({ ...OPEN, ...hintsTo(up), 'backup.target': target, 'backup.interval': 3_600_000 })
    const published = groupMessage('group-fine', 1)
    try {
      await publishAll(first.url, [published])
      await up.waitFor(published.id)
      await waitUntil(() => first.running.store.outbox.size() === 0, 'the outbox to empty')
    } finally {
      await first.close()
    }
    assert.deepEqual(await recordsIn(target), [])
    const second = await startTestRelay({ ...OPEN, ...hintsTo(up), 'backup.target': target })
    try {
      // Hints go out in outbox order: had the restore queued the old one, it would arrive first.
      const later = groupMessage('group-fine', 2)
      await publishAll(second.url, [later])
      await up.waitFor(later.id)
      assert.deepEqual(up.accepted.map(r => r.hint.id), [published.id, later.id])
    } finally {
      await second.close()
    }
  })

  it('a restore queues only the records of events it restored, and none when hints are off; a bad record is counted', async () => {
    const target = await tempDir()
    const stored = groupMessage('group-kept', 5)
    const lost = groupMessage('group-lost', 6) // committed after the snapshot's view: its event is not in it
    const record = (event: NostrEvent, epoch: number) => `{"outbox":${JSON.stringify({ v: 1, id: event.id, kind: 445, pubkey: event.pubkey, created_at: event.created_at, group: event.tags[0]?.[1], epoch })}}\n`
    const lines = [`${JSON.stringify(stored)}\n`, record(stored, 5), record(lost, 6), '{"outbox":{"v":1,"id":"not hex"}}\n']
    await openSnapshotStore(target).put(Readable.from(lines), { kind: 'full' })
    const off = await startTestRelay({ ...OPEN, 'backup.target': target, 'backup.on_shutdown': false }, { logLevel: 'info' })
    try {
      const restored = await off.waitForLog(r => r.message === 'restored the newest snapshot')
      assert.equal(restored.hintsQueued, 0)
      assert.match(String(restored.summary), /imported 1, .*invalid 1, hint records 2$/)
      assert.equal(off.running.store.outbox.size(), 0, 'no transport: nothing would ever publish them')
    } finally {
      await off.close()
    }
    const up = await endpoint()
    const on = await startTestRelay({ ...OPEN, ...hintsTo(up), 'backup.target': target, 'backup.on_shutdown': false }, { logLevel: 'info' })
    try {
      assert.equal((await on.waitForLog(r => r.message === 'restored the newest snapshot')).hintsQueued, 1)
      const control = groupMessage('group-kept', 7)
      await publishAll(on.url, [control])
      await up.waitFor(control.id)
      assert.deepEqual(up.accepted.map(r => r.hint.id), [stored.id, control.id])
    } finally {
      await on.close()
    }
  })

  it('a full snapshot carries the outbox too, and msr-relay import counts the records and skips them', async () => {
    const target = await tempDir()
    const down = await endpoint(503)
    const relay = await startTestRelay({ ...OPEN, ...hintsTo(down), 'backup.target': target, 'backup.interval': 150, 'backup.on_shutdown': false }, { logLevel: 'info' })
    const group = groupMessage('group-full', 9)
    try {
      await publishAll(relay.url, [group])
      await relay.waitForLog(r => r.message === 'snapshot written' && r.events === 1)
    } finally {
      await relay.close()
    }
    assert.deepEqual(await recordsIn(target), [group.id])
    const newest = (await snapshotFiles(target)).sort().at(-1) as string // an earlier one may be of the empty store
    const summary = await runImport(testConfig(await tempDir()), join(target, newest), false)
    assert.equal(summary.imported, 1)
    assert.equal(summary.hints, 1)
    assert.equal(summary.invalid.size, 0)
  })
})

describe('snapshots to Cloud Storage (fake JSON API server, real client)', () => {
  let gcs: FakeGcs

  before(async () => {
    gcs = await startFakeGcs()
    gcs.createBucket('msr-backups')
  })

  after(async () => {
    await gcs?.stop()
  })

  it('restores on boot from gs://bucket/prefix, and two overlapping revisions never overwrite each other', async () => {
    const target = 'gs://msr-backups/relay/prod'
    const [a, b] = await Promise.all([
      startTestRelay({ ...OPEN, 'backup.target': target }, { storage: gcs.storage() }),
      startTestRelay({ ...OPEN, 'backup.target': target }, { storage: gcs.storage() }),
    ])
    const events = sampleEvents()
    await publishAll(a.url, events)
    await publishAll(b.url, events.slice(0, 5))
    const expected = await answers(a.url)
    await b.close()
    await a.close()
    const objects = gcs.objects('msr-backups')
    assert.equal(objects.length, 2)
    assert.ok(objects.every(o => o.name.startsWith('relay/prod/snapshot-')))
    const restored = await startTestRelay({ ...OPEN, 'backup.target': target }, { storage: gcs.storage() })
    try {
      assert.deepEqual(await answers(restored.url), expected, 'the newest snapshot: the relay that stopped last')
    } finally {
      await restored.close()
    }
  })

  it('exports to and imports from gs://bucket/object', async () => {
    const relay = await startTestRelay(OPEN)
    await publishAll(relay.url, sampleEvents())
    const expected = await answers(relay.url)
    await relay.stop()
    try {
      const exported = await runExport(testConfig(relay.dataDir), 'gs://msr-backups/exports/all.jsonl.gz', undefined, { storage: gcs.storage() })
      assert.ok(gcs.objects('msr-backups').some(o => o.name === 'exports/all.jsonl.gz'))
      const target = await tempDir()
      const summary = await runImport(testConfig(target), 'gs://msr-backups/exports/all.jsonl.gz', true, { storage: gcs.storage() })
      assert.equal(summary.imported, exported)
      const restored = await startTestRelay(OPEN, { dataDir: target })
      try {
        assert.deepEqual(await answers(restored.url), expected)
      } finally {
        await restored.close()
      }
    } finally {
      await relay.close()
    }
  })
})

describe('a SIGKILL mid-ingest', () => {
  it('loses no event that got OK true', async () => {
    const dir = await tempDir()
    const port = await freePort()
    const env = { RELAY_DATA__PATH: join(dir, 'data'), RELAY_AUTH__AUTH_REQUIRED_KINDS: '[]' }
    const cli = await serveCli(port, env, dir)
    const acknowledged: string[] = []
    try {
      const client = await TestClient.connect(`ws://127.0.0.1:${port}`)
      const signer = newSigner()
      const events = Array.from({ length: 3000 }, (_, i) => sign(signer, { kind: 1, content: `event ${i}` }))
      for (const e of events) client.send(['EVENT', e])
      // Kill while OKs are still arriving: some events acknowledged, the rest in flight.
      while (acknowledged.length < 500) {
        const ok = await client.next(m => m[0] === 'OK')
        if (ok[2] === true) acknowledged.push(ok[1] as string)
      }
      cli.child.kill('SIGKILL')
      await withTimeout(cli.exited, 'the killed relay to exit')
      for (const m of client.takeAll(m => m[0] === 'OK')) if (m[2] === true) acknowledged.push(m[1] as string)
      assert.ok(acknowledged.length < events.length, 'killed mid-ingest')
    } finally {
      if (cli.child.exitCode === null && cli.child.signalCode === null) cli.child.kill('SIGKILL')
    }
    const again = await serveCli(port, env, dir)
    try {
      const client = await TestClient.connect(`ws://127.0.0.1:${port}`)
      const stored = new Set<string>()
      for (let i = 0; i < acknowledged.length; i += 200) {
        const chunk = acknowledged.slice(i, i + 200)
        for (const id of ids(await client.query({ ids: chunk, limit: chunk.length }))) stored.add(id)
      }
      const lost = acknowledged.filter(id => !stored.has(id))
      assert.deepEqual(lost, [], `${lost.length} of ${acknowledged.length} acknowledged events lost`)
      await client.close()
    } finally {
      again.child.kill('SIGTERM')
      await withTimeout(again.exited, 'the relay to exit')
    }
  })
})
