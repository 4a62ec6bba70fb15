// Export and import of the mailbox on a real PostgreSQL: round trips compared through the API and row by
// row, idempotence, gzip, every kind of invalid line, the header, back-pressure, the CLI, and gs://.
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { randomBytes, randomUUID } from 'node:crypto'
import { access, readFile, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { PassThrough, Readable, Writable } from 'node:stream'
import { fileURLToPath } from 'node:url'
import { after, before, describe, it } from 'node:test'
import type pg from 'pg'
import request from 'supertest'
import { openReader, openWriter } from '@msr/storage'
import { startFakeGcs } from '@msr/storage/fake-gcs'
import { migrate } from '../src/db/migrate.js'
import { recordDmHint } from '../src/domain/dm-hints.js'
import { applyGroupHint, upsertGroupMetadata } from '../src/domain/groups.js'
import { deposit, KEYPACKAGES, pickup, WELCOMES } from '../src/domain/mailbox.js'
import { exportMailbox, type ExportOptions } from '../src/transfer/export.js'
import { importMailbox, type ImportOptions, type ImportResult } from '../src/transfer/import.js'
import type { ImportSummary } from '../src/transfer/summary.js'
import { b64, buildTestApp, expectStatus, freePort, newSigner, qs, tempDir, startPostgres, type Signer, type TestApp, type TestPostgres } from './harness.js'

const ADMIN_TOKEN = 'admin-token-for-tests-0123456789'
const MAX_ARTIFACT = 262144

let pgs: TestPostgres
let dir: string
const [alice, bob, carol] = [newSigner(), newSigner(), newSigner()]
/** Ids of the items picked up before the export (their picked_up_at must survive exactly). */
const pickedBefore = new Set<string>()

const eventId = () => randomBytes(32).toString('hex')

const expire = (pool: pg.Pool, table: string, where: string, value: string) =>
  pool.query(`UPDATE ${table} SET expires_at = now() - interval '1 minute' WHERE ${where} = $1`, [value])

/** Groups with metadata and epochs, KeyPackages with and without tags, Welcomes with and without a tree, dm hints; some expired, some picked up. */
const fill = async (pool: pg.Pool): Promise<void> => {
  await upsertGroupMetadata(pool, { group_id: 'g-book-club', display_name: 'Book club', avatar_url: 'https://example.com/a.png', owner_pubkey: alice.pubkey, relays: ['wss://relay.example.com'] })
  await applyGroupHint(pool, { groupId: 'g-book-club', epoch: 7, eventTs: 1_700_000_100 })
  await applyGroupHint(pool, { groupId: 'g-hinted', epoch: 3, eventTs: 1_700_000_200 })
  await applyGroupHint(pool, { groupId: 'g-no-epoch', eventTs: 1_700_000_300 })
  await applyGroupHint(pool, { groupId: 'g-no-epoch', eventTs: 1_700_000_250 })
  await applyGroupHint(pool, { groupId: 'g-no-epoch', eventTs: 1_700_000_290 })
  const keyPackage = (recipient: Signer, tags?: string[][]) =>
    deposit(pool, KEYPACKAGES, { recipient: recipient.pubkey, sender: alice.pubkey, ttlSeconds: 3600, fields: { content_b64: b64(300), ...(tags && { tags }) } })
  for (let i = 0; i < 3; i++) await keyPackage(bob, [['mls_protocol_version', '1.0'], ['ciphersuite', String(i)]])
  await keyPackage(carol)
  await expire(pool, 'mail_keypackages', 'id', await keyPackage(bob))
  const welcome = (recipient: Signer, tree: boolean) =>
    deposit(pool, WELCOMES, { recipient: recipient.pubkey, sender: alice.pubkey, ttlSeconds: 3600, fields: { group_id: 'g-book-club', welcome_b64: b64(800), ...(tree && { ratchet_tree_b64: b64(400) }) } })
  await welcome(bob, true)
  await welcome(carol, false)
  await welcome(carol, true)
  await expire(pool, 'mail_welcomes', 'id', await welcome(bob, true))
  await recordDmHint(pool, { eventId: eventId(), sender: alice.pubkey, createdAt: 1_700_000_000, recipients: [bob.pubkey, carol.pubkey], ttlSeconds: 3600 })
  await recordDmHint(pool, { eventId: eventId(), sender: carol.pubkey, createdAt: 1_700_000_050, recipients: [bob.pubkey], ttlSeconds: 3600 })
  const stale = eventId()
  await recordDmHint(pool, { eventId: stale, sender: carol.pubkey, createdAt: 1_700_000_060, recipients: [alice.pubkey], ttlSeconds: 3600 })
  await expire(pool, 'dm_hints', 'event_id', stale)
  for (const item of (await pickup(pool, KEYPACKAGES, bob.pubkey, 1, 0)).items) pickedBefore.add(item.id)
  for (const item of (await pickup(pool, WELCOMES, carol.pubkey, 1, 0)).items) pickedBefore.add(item.id)
}

/** What the fill leaves unexpired, per type, and what expired. */
const LIVE = { group: 3, keypackage: 4, welcome: 3, dm_hint: 3 }
const EXPIRED = { group: 0, keypackage: 1, welcome: 1, dm_hint: 1 }
const NONE = { group: 0, keypackage: 0, welcome: 0, dm_hint: 0 }

before(async () => {
  pgs = await startPostgres()
  dir = await tempDir('msr-mailbox-transfer-')
  await fill(pgs.pool)
})

after(async () => {
  await pgs?.close()
  if (dir) await rm(dir, { recursive: true, force: true })
})

/** A migrated empty database on the test server. */
const freshDatabase = async (): Promise<pg.Pool> => {
  const fresh = await pgs.freshDatabase()
  await migrate(fresh.pool)
  return fresh.pool
}

/** The export of `pool` as text. */
const exportText = async (pool: pg.Pool, opts: ExportOptions = {}): Promise<{ text: string; summary: Awaited<ReturnType<typeof exportMailbox>> }> => {
  const sink = new PassThrough()
  const chunks: Buffer[] = []
  sink.on('data', (chunk: Buffer) => chunks.push(chunk))
  const summary = await exportMailbox(pool, sink, opts)
  sink.end()
  return { text: Buffer.concat(chunks).toString('utf8'), summary }
}

const importText = (pool: pg.Pool, text: string, opts: Partial<ImportOptions> = {}): Promise<ImportResult> =>
  importMailbox(pool, Readable.from([Buffer.from(text, 'utf8')]), { maxArtifactBytes: MAX_ARTIFACT, ...opts })

const imported = (result: ImportResult): ImportSummary => {
  assert.ok(result.ok, result.ok ? '' : result.reason)
  return result.summary
}

/** Every unexpired row of the four tables, every column but `seq` as text, in pickup order: what "restored exactly" means. */
const snapshot = async (pool: pg.Pool): Promise<Record<string, unknown[]>> => {
  const rows = async (sql: string) => (await pool.query(sql)).rows
  return {
    groups: await rows(`SELECT group_id, display_name, avatar_url, owner_pubkey, last_epoch, last_event_ts, message_count, relays::text, created_at::text, updated_at::text FROM groups ORDER BY group_id`),
    keypackages: await rows(`SELECT id, recipient_pubkey, sender_pubkey, content_b64, tags::text, created_at::text, expires_at::text, picked_up_at::text
      FROM mail_keypackages WHERE expires_at > now() ORDER BY seq`),
    welcomes: await rows(`SELECT id, recipient_pubkey, sender_pubkey, group_id, welcome_b64, ratchet_tree_b64, created_at::text, expires_at::text, picked_up_at::text
      FROM mail_welcomes WHERE expires_at > now() ORDER BY seq`),
    dm_hints: await rows(`SELECT event_id, recipient_pubkey, sender_pubkey, event_created_at, received_at::text, expires_at::text FROM dm_hints WHERE expires_at > now() ORDER BY seq`),
  }
}

/** Everything the API answers about the filled data; a first pickup's own time is replaced by a marker. */
const throughApi = async (target: TestApp): Promise<Record<string, unknown>> => {
  const answer: Record<string, unknown> = {}
  const groups = await request(target.app).get('/api/v1/groups?limit=500').set('Authorization', `Bearer ${ADMIN_TOKEN}`)
  expectStatus(groups, 200)
  answer.groups = groups.body.items
  for (const who of [alice, bob, carol])
    for (const path of ['/keypackages', '/welcome', '/dm-hints']) {
      const res = await target.api.get(`${path}${qs({ recipient: who.pubkey, limit: 100 })}`, who)
      expectStatus(res, 200)
      answer[`${path} ${who.npub}`] = (res.body.items as Record<string, unknown>[]).map(item =>
        path === '/dm-hints' || pickedBefore.has(item.id as string) ? item : { ...item, picked_up_at: typeof item.picked_up_at === 'number' ? 'now' : item.picked_up_at },
      )
    }
  return answer
}

describe('export and import', () => {
  it('round-trips every unexpired row exactly, as the API shows it and column by column; expired rows are left out and counted', async () => {
    const { text, summary } = await exportText(pgs.pool)
    assert.deepEqual(summary, { tables: ['groups', 'keypackages', 'welcomes', 'dm_hints'], records: LIVE, expired: EXPIRED })
    const lines = text.trimEnd().split('\n').map(line => JSON.parse(line) as Record<string, unknown>)
    assert.deepEqual({ ...lines[0], exported_at: 'x' }, { type: 'header', format: 'msr-mailbox-export', version: 1, exported_at: 'x', tables: summary.tables })
    assert.deepEqual(lines.slice(1).map(l => l.type), [...Array(3).fill('group'), ...Array(4).fill('keypackage'), ...Array(3).fill('welcome'), ...Array(3).fill('dm_hint')])
    assert.deepEqual(lines.slice(1, 4).map(l => [l.group_id, l.message_count]), [['g-book-club', 1], ['g-hinted', 1], ['g-no-epoch', 3]])
    const target = await freshDatabase()
    const result = imported(await importText(target, text))
    assert.deepEqual(result, { lines: 14, imported: LIVE, updated: 0, duplicate: NONE, expired: NONE, invalid: 0, reasons: [] })
    assert.deepEqual(await snapshot(target), await snapshot(pgs.pool))
    const [there, here] = [await buildTestApp(target, { ADMIN_TOKEN }), await buildTestApp(pgs.pool, { ADMIN_TOKEN })]
    const imports = await throughApi(there)
    assert.deepEqual(imports, await throughApi(here))
    assert.equal((imports[`/keypackages ${bob.npub}`] as unknown[]).length, 3)
    assert.equal((imports[`/welcome ${carol.npub}`] as unknown[]).length, 2)
  })

  it('changes nothing when the same export is imported again: every record is a duplicate', async () => {
    const { text } = await exportText(pgs.pool)
    const target = await freshDatabase()
    imported(await importText(target, text))
    const before = await snapshot(target)
    const again = imported(await importText(target, text))
    assert.deepEqual(again, { lines: 14, imported: NONE, updated: 0, duplicate: LIVE, expired: NONE, invalid: 0, reasons: [] })
    assert.deepEqual(await snapshot(target), before)
  })

  it('exports only the tables asked for', async () => {
    const { text, summary } = await exportText(pgs.pool, { tables: ['dm_hints', 'groups'] })
    assert.deepEqual(summary.tables, ['groups', 'dm_hints'])
    assert.deepEqual(summary.records, { ...NONE, group: 3, dm_hint: 3 })
    assert.deepEqual(text.trimEnd().split('\n').slice(1).map(line => JSON.parse(line).type), ['group', 'group', 'group', 'dm_hint', 'dm_hint', 'dm_hint'])
  })

  it('merges groups as hints do: the epoch and last event time only move forward, metadata set here wins, the larger count wins', async () => {
    const target = await freshDatabase()
    await upsertGroupMetadata(target, { group_id: 'g-book-club', display_name: 'Renamed here' })
    await applyGroupHint(target, { groupId: 'g-book-club', epoch: 9, eventTs: 1_700_000_000 })
    await applyGroupHint(target, { groupId: 'g-hinted', epoch: 1, eventTs: 1_600_000_000 })
    await applyGroupHint(target, { groupId: 'g-hinted', epoch: 1, eventTs: 1_600_000_001 })
    const { text } = await exportText(pgs.pool, { tables: ['groups'] })
    const result = imported(await importText(target, text))
    assert.deepEqual([result.imported.group, result.updated, result.duplicate.group], [1, 2, 0])
    const { rows } = await target.query('SELECT group_id, display_name, avatar_url, owner_pubkey, last_epoch, last_event_ts, message_count, relays FROM groups ORDER BY group_id')
    assert.deepEqual(rows, [
      { group_id: 'g-book-club', display_name: 'Renamed here', avatar_url: 'https://example.com/a.png', owner_pubkey: alice.pubkey, last_epoch: 9, last_event_ts: 1_700_000_100, message_count: 1, relays: ['wss://relay.example.com'] },
      { group_id: 'g-hinted', display_name: null, avatar_url: null, owner_pubkey: null, last_epoch: 3, last_event_ts: 1_700_000_200, message_count: 2, relays: [] },
      { group_id: 'g-no-epoch', display_name: null, avatar_url: null, owner_pubkey: null, last_epoch: null, last_event_ts: 1_700_000_300, message_count: 3, relays: [] },
    ])
    const again = imported(await importText(target, text))
    assert.deepEqual([again.imported.group, again.updated, again.duplicate.group], [0, 0, 3])
  })

  it('round-trips through a gzip file (a name ending in .gz)', async () => {
    const path = join(dir, 'mailbox.jsonl.gz')
    const output = await openWriter(path)
    await exportMailbox(pgs.pool, output.stream)
    await output.done()
    const bytes = await readFile(path)
    assert.deepEqual([...bytes.subarray(0, 2)], [0x1f, 0x8b], 'gzip magic')
    const target = await freshDatabase()
    const input = await openReader(path)
    const result = imported(await importMailbox(target, input.stream, { maxArtifactBytes: MAX_ARTIFACT }))
    assert.deepEqual(result.imported, LIVE)
    assert.deepEqual(await snapshot(target), await snapshot(pgs.pool))
  })

  it('waits for a slow destination (back-pressure) and pages through thousands of rows in batches', async () => {
    const source = await freshDatabase()
    await source.query(
      `INSERT INTO mail_welcomes (id, recipient_pubkey, sender_pubkey, group_id, welcome_b64, expires_at)
       SELECT gen_random_uuid(), $1, $2, 'g-' || i, $3, now() + interval '1 hour' FROM generate_series(1, 3000) AS i`,
      [bob.pubkey, alice.pubkey, b64(1200)],
    )
    let [bytes, mostBuffered] = [0, 0]
    const slow = new Writable({
      highWaterMark: 16 * 1024,
      write(chunk: Buffer, _encoding, callback) {
        bytes += chunk.length
        setTimeout(callback, 1)
      },
    })
    const write = slow.write.bind(slow)
    slow.write = ((chunk: Buffer | string, ...rest: never[]) => {
      mostBuffered = Math.max(mostBuffered, slow.writableLength)
      return write(chunk, ...rest)
    }) as typeof slow.write
    const summary = await exportMailbox(source, slow)
    assert.equal(summary.records.welcome, 3000)
    assert.ok(bytes > 4_000_000, `wrote ${bytes} bytes`)
    assert.ok(mostBuffered <= 16 * 1024, `a write was issued with ${mostBuffered} bytes still buffered`)
    const { text } = await exportText(source)
    const target = await freshDatabase()
    assert.equal(imported(await importText(target, text, { batchRows: 500 })).imported.welcome, 3000)
    const order = async (pool: pg.Pool) => (await pool.query('SELECT group_id FROM mail_welcomes ORDER BY seq')).rows.map(r => r.group_id)
    assert.deepEqual(await order(target), await order(source), 'pickup order kept')
  })
})

describe('import: invalid lines', () => {
  const header = JSON.stringify({ type: 'header', format: 'msr-mailbox-export', version: 1, exported_at: new Date().toISOString() })
  const inHour = () => new Date(Date.now() + 3600_000).toISOString()
  const keyPackage = (extra: Record<string, unknown> = {}) =>
    JSON.stringify({ type: 'keypackage', id: randomUUID(), recipient: bob.pubkey, sender: alice.pubkey, content_b64: b64(100), tags: null, created_at: new Date().toISOString(), expires_at: inHour(), picked_up_at: null, ...extra })

  it('counts each invalid line with its line number and reason, skips it, and imports the rest', async () => {
    const welcome = { type: 'welcome', id: randomUUID(), recipient: bob.pubkey, sender: alice.pubkey, group_id: 'g', welcome_b64: b64(2000), ratchet_tree_b64: null, created_at: 1_700_000_000, expires_at: inHour(), picked_up_at: null }
    const hint = { type: 'dm_hint', event_id: eventId(), recipient: bob.pubkey, sender: alice.pubkey, event_created_at: 1_700_000_000, received_at: 1_700_000_001, expires_at: inHour() }
    const group = { type: 'group', group_id: 'g-imported', display_name: null, avatar_url: null, owner_pubkey: null, last_epoch: 2, last_event_ts: 1_700_000_000, relays: [], created_at: 1_700_000_000, updated_at: 1_700_000_000 }
    const lines = [
      header, //                                                          1
      keyPackage(), //                                                    2 ok
      '{not json', //                                                     3
      JSON.stringify({ type: 'bogus' }), //                               4
      keyPackage({ colour: 'red' }), //                                   5
      keyPackage({ content_b64: 'not base64!' }), //                      6
      keyPackage({ recipient: 'zz'.repeat(32) }), //                      7
      JSON.stringify(welcome), //                                         8: 2000 bytes > 1024
      JSON.stringify({ ...hint, event_id: 'XYZ' }), //                    9
      JSON.stringify({ ...group, group_id: 'g-nul', display_name: 'a\u0000b' }), // 10
      JSON.stringify(hint), //                                            11 ok
      JSON.stringify(group), //                                           12 ok
      keyPackage({ expires_at: new Date(Date.now() - 1000).toISOString() }), // 13 expired
      '', //                                                              14 blank: passed over
      '[1,2]', //                                                         15
      header, //                                                          16 a concatenated export's header: passed over
      keyPackage({ content_b64: 'A'.repeat(9 * 1024 * 1024) }), //        17: past the longest line, never held whole
      keyPackage(), //                                                    18 ok
    ]
    const target = await freshDatabase()
    const result = imported(await importText(target, lines.join('\n') + '\n', { maxArtifactBytes: 1024 }))
    assert.deepEqual(result.imported, { group: 1, keypackage: 2, welcome: 0, dm_hint: 1 })
    assert.deepEqual(result.expired, { ...NONE, keypackage: 1 })
    assert.equal(result.lines, 18)
    assert.equal(result.invalid, 10, result.reasons.join('\n'))
    const expected = [
      /^line 3: not JSON$/,
      /^line 4: unknown type "bogus"$/,
      /^line 5: keypackage: unknown field colour$/,
      /^line 6: keypackage: content_b64: expected standard padded base64$/,
      /^line 7: keypackage: recipient: expected a pubkey/,
      /^line 8: welcome: welcome_b64: decodes to more than 1024 bytes$/,
      /^line 9: dm_hint: event_id: expected 64 lowercase hex/,
      /^line 10: group: .*NUL/,
      /^line 15: not a JSON object$/,
      /^line 17: longer than \d+ bytes$/,
    ]
    expected.forEach((pattern, i) => assert.match(result.reasons[i] ?? '', pattern))
    assert.doesNotMatch(result.reasons.join('\n'), /not base64!|zzzz/, 'reasons never echo values')
  })

  it('imports a group record without message_count (an export made before the count) with 0; a bad count is invalid', async () => {
    const old = { type: 'group', group_id: 'g-old-export', display_name: 'Book club', avatar_url: null, owner_pubkey: null, last_epoch: 7, last_event_ts: 1_764_108_000, relays: [], created_at: '2025-11-25T22:49:24.087191Z', updated_at: '2025-11-25T22:49:24.088737Z' }
    const lines = [
      header,
      JSON.stringify(old),
      ...[-1, 1.5, '3', null].map(bad => JSON.stringify({ ...old, group_id: `g-bad-${String(bad)}`, message_count: bad })),
      JSON.stringify({ ...old, group_id: 'g-counted', message_count: 12 }),
    ]
    const target = await freshDatabase()
    const result = imported(await importText(target, lines.join('\n') + '\n'))
    assert.deepEqual([result.imported.group, result.invalid], [2, 4], result.reasons.join('\n'))
    for (const reason of result.reasons) assert.match(reason, /^line \d: group: message_count: /)
    const { rows } = await target.query('SELECT group_id, last_epoch, last_event_ts, message_count FROM groups ORDER BY group_id')
    assert.deepEqual(rows, [
      { group_id: 'g-counted', last_epoch: 7, last_event_ts: 1_764_108_000, message_count: 12 },
      { group_id: 'g-old-export', last_epoch: 7, last_event_ts: 1_764_108_000, message_count: 0 },
    ])
  })

  it('counts a NUL or a lone surrogate in any string field as invalid, naming the field, rather than storing it changed', async () => {
    const group = { type: 'group', group_id: 'g-text', display_name: 'Book club', avatar_url: 'https://img.example/a.png', relays: ['wss://relay.example'], created_at: 1_700_000_000, updated_at: 1_700_000_000 }
    const welcome = { type: 'welcome', id: randomUUID(), recipient: bob.pubkey, sender: alice.pubkey, group_id: 'g-text', welcome_b64: b64(30), created_at: 1_700_000_000, expires_at: inHour() }
    const spoil = (record: Record<string, unknown>, field: string, bad: string): Record<string, unknown> => {
      const value = record[field]
      return { ...record, [field]: Array.isArray(value) ? [...value, `wss://x${bad}`] : `${String(value)}${bad}` }
    }
    const fields: [Record<string, unknown>, string][] = [
      ...['group_id', 'display_name', 'avatar_url', 'relays'].map((f): [Record<string, unknown>, string] => [group, f]),
      [welcome, 'group_id'],
      [JSON.parse(keyPackage({ tags: [['ciphersuite', '0x0001']] })) as Record<string, unknown>, 'tags'],
    ]
    const lines = [header]
    for (const [record, field] of fields)
      for (const bad of ['\u0000', '\ud800', '\udc00'])
        lines.push(JSON.stringify(field === 'tags' ? { ...record, id: randomUUID(), tags: [['ciphersuite', `0x${bad}`]] } : spoil(record, field, bad)))
    const target = await freshDatabase()
    const result = imported(await importText(target, lines.join('\n') + '\n'))
    assert.deepEqual(result.imported, NONE)
    assert.equal(result.invalid, fields.length * 3, result.reasons.join('\n'))
    result.reasons.forEach((reason, i) => assert.match(reason, new RegExp(`^line ${i + 2}: \\w+: ${fields[Math.floor(i / 3)]?.[1]}(\\.\\d+)*: must not contain NUL`)))
  })

  it('falls back to one row at a time when the database refuses a batch, counting only the refused row', async () => {
    const target = await freshDatabase()
    await target.query(`ALTER TABLE mail_keypackages ADD CONSTRAINT refuse_aaaa CHECK (content_b64 <> 'AAAA')`)
    const lines = [header, keyPackage(), keyPackage({ content_b64: 'AAAA' }), keyPackage()]
    const result = imported(await importText(target, lines.join('\n')))
    assert.equal(result.imported.keypackage, 2)
    assert.equal(result.invalid, 1)
    assert.match(result.reasons[0] ?? '', /^line 3: keypackage: refused by the database \(.*refuse_aaaa/)
  })

  for (const [name, text, reason] of [
    ['an empty stream', '', /^missing header: the stream is empty/],
    ['a stream without a header', keyPackage() + '\n', /^missing header: line 1 is not an msr-mailbox-export header/],
    ['another format', JSON.stringify({ type: 'header', format: 'other', version: 1 }) + '\n' + keyPackage(), /^missing header/],
    ['a later version', JSON.stringify({ type: 'header', format: 'msr-mailbox-export', version: 2, exported_at: new Date().toISOString() }) + '\n', /^unsupported format version 2 \(this build reads version 1\)$/],
  ] as const)
    it(`refuses ${name}, storing nothing`, async () => {
      const target = await freshDatabase()
      const result = await importText(target, text)
      assert.equal(result.ok, false)
      assert.match(result.ok ? '' : result.reason, reason)
      assert.equal((await target.query('SELECT count(*)::int AS n FROM mail_keypackages')).rows[0].n, 0)
    })
})

describe('gs:// (fake Cloud Storage)', () => {
  it('exports to an object and imports it back, through the injected client', async () => {
    const gcs = await startFakeGcs()
    try {
      gcs.createBucket('mailbox-backups')
      const location = 'gs://mailbox-backups/2025/mailbox.jsonl.gz'
      const output = await openWriter(location, { storage: gcs.storage() })
      const summary = await exportMailbox(pgs.pool, output.stream)
      await output.done()
      assert.deepEqual(gcs.objects('mailbox-backups').map(o => o.name), ['2025/mailbox.jsonl.gz'])
      const target = await freshDatabase()
      const input = await openReader(location, { storage: gcs.storage() })
      const result = imported(await importMailbox(target, input.stream, { maxArtifactBytes: MAX_ARTIFACT }))
      assert.deepEqual(result.imported, summary.records)
      assert.deepEqual(await snapshot(target), await snapshot(pgs.pool))
    } finally {
      await gcs.stop()
    }
  })
})

// ---------------------------------------------------------------------------------------------
// The CLI as a process, each run on an embedded PostgreSQL of its own data directory.

const CLI = fileURLToPath(new URL('../src/cli.js', import.meta.url))

/** Runs the CLI to its end with only `env` (no DATABASE_URL from the test's environment). */
const cli = (args: string[], env: Record<string, string>, stdin?: string): Promise<{ code: number | null; stdout: string; stderr: string }> =>
  new Promise((resolve, reject) => {
    const keep = Object.fromEntries(['PATH', 'HOME', 'LANG', 'TMPDIR'].flatMap(k => (process.env[k] === undefined ? [] : [[k, process.env[k] as string]])))
    const child = spawn(process.execPath, [CLI, ...args], { env: { ...keep, ...env }, stdio: [stdin === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'] })
    child.stdin?.end(stdin)
    let [stdout, stderr] = ['', '']
    child.stdout?.on('data', chunk => (stdout += String(chunk)))
    child.stderr?.on('data', chunk => (stderr += String(chunk)))
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000)
    child.once('error', reject)
    child.once('close', code => (clearTimeout(timer), resolve({ code, stdout, stderr })))
  })

const embedded = async (name: string) => ({ MAILBOX_DATA_DIR: join(dir, `${name}-pg`), MAILBOX_EMBEDDED_PG_PORT: String(await freePort()) })

describe('msr-mailbox export / import', () => {
  it('imports a file, exports it to .jsonl.gz, imports that elsewhere, then again from stdin as duplicates; summaries on stderr, exit 0', async () => {
    const seed = join(dir, 'seed.jsonl')
    await writeFile(seed, (await exportText(pgs.pool)).text)
    const [a, b] = [await embedded('cli-a'), await embedded('cli-b')]
    const first = await cli(['import', '--in', seed], a)
    assert.equal(first.code, 0, first.stderr)
    assert.match(first.stderr, /^import: read 14 lines from .*seed\.jsonl$/m)
    assert.match(first.stderr, /^imported: 13 \(group 3, keypackage 4, welcome 3, dm_hint 3\); groups updated: 0$/m)
    assert.match(first.stderr, /^invalid \(skipped\): 0$/m)
    const archive = join(dir, 'cli.jsonl.gz')
    const exported = await cli(['export', '--out', archive], a)
    assert.equal(exported.code, 0, exported.stderr)
    assert.equal(exported.stdout, '')
    assert.match(exported.stderr, /^export: 13 \(group 3, keypackage 4, welcome 3, dm_hint 3\) records written to .*cli\.jsonl\.gz$/m)
    assert.match(exported.stderr, /^expired \(skipped\): 0 \(keypackage 0, welcome 0, dm_hint 0\)$/m)
    assert.deepEqual([...(await readFile(archive)).subarray(0, 2)], [0x1f, 0x8b])
    const second = await cli(['import', '--in', archive], b)
    assert.equal(second.code, 0, second.stderr)
    assert.match(second.stderr, /^imported: 13 \(group 3, keypackage 4, welcome 3, dm_hint 3\)/m)
    const third = await cli(['import'], b, await readFile(seed, 'utf8'))
    assert.equal(third.code, 0, third.stderr)
    assert.match(third.stderr, /^import: read 14 lines from stdin$/m)
    assert.match(third.stderr, /^imported: 0 /m)
    assert.match(third.stderr, /^duplicate \(already there\): 13 \(group 3, keypackage 4, welcome 3, dm_hint 3\)$/m)
    const stdout = await cli(['export', '--tables', 'groups'], a)
    assert.equal(stdout.code, 0, stdout.stderr)
    assert.deepEqual(stdout.stdout.trimEnd().split('\n').map(line => JSON.parse(line).type), ['header', 'group', 'group', 'group'])
    const refused = join(dir, 'no-header.jsonl')
    await writeFile(refused, '{"type":"group"}\n')
    const noHeader = await cli(['import', '--in', refused], a)
    assert.equal(noHeader.code, 1)
    assert.match(noHeader.stderr, /missing header: line 1 is not an msr-mailbox-export header/)
  })

  it('exits 2 on usage errors and 1 when the input or output cannot be opened, before starting a database', async () => {
    const env = { MAILBOX_DATA_DIR: join(dir, 'never-pg') }
    for (const args of [['export', '--bogus'], ['export', '--tables', 'groups,nope'], ['export', '--tables', ''], ['import', 'stray'], ['import', '--in']]) {
      const run = await cli(args, env)
      assert.equal(run.code, 2, `${args.join(' ')}: ${run.stderr}`)
    }
    assert.match((await cli(['export', '--bogus'], env)).stderr, /--bogus[^]*usage: msr-mailbox/)
    assert.match((await cli(['export', '--tables', 'groups,nope'], env)).stderr, /unknown table "nope"/)
    const missing = await cli(['import', '--in', join(dir, 'missing.jsonl')], env)
    assert.equal(missing.code, 1)
    assert.match(missing.stderr, /missing\.jsonl/)
    const nowhere = await cli(['export', '--out', join(dir, 'no-such-dir', 'x.jsonl')], env)
    assert.equal(nowhere.code, 1)
    assert.match(nowhere.stderr, /no-such-dir/)
    assert.equal(await access(env.MAILBOX_DATA_DIR).then(() => true, () => false), false, 'no database was started')
  })
})
