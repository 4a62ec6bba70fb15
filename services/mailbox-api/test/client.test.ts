// @msr/mailbox-client against the real API: a listening HTTP server whose address is PUBLIC_URL, on a real
// PostgreSQL. Each client request is signed by the library and checked by the server's own NIP-98 path.
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { createServer, type RequestListener, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { after, before, describe, it } from 'node:test'
import { createMailboxAdminClient, createMailboxClient, MailboxApiError, type MailboxClient, type MailboxClientOptions, type MailboxErrorCode } from '@msr/mailbox-client'
import { recordDmHint } from '../src/domain/dm-hints.js'
import { applyGroupHint } from '../src/domain/groups.js'
import type { ErrorCode } from '../src/errors.js'
import { buildTestApp, newSigner, now, startPostgres, type Signer, type TestApp, type TestPostgres } from './harness.js'

const ADMIN_TOKEN = 'admin-token-for-client-tests-0123'

// Checked by the compiler (the build fails otherwise): every code an /api/v1 route answers is one the
// client's MailboxErrorCode names (the push route's are not the client's), and none the client names is gone.
type ApiCode = Exclude<ErrorCode, 'PUSH_AUTH_REQUIRED' | 'PUSH_AUTH_INVALID'>
export const everyApiCodeKnown: MailboxErrorCode[] = [] as ApiCode[]
export const noClientCodeGone: Array<ApiCode | 'UNEXPECTED_RESPONSE'> = [] as MailboxErrorCode[]

/** An app listening on a loopback port, configured with PUBLIC_URL = its own address. */
interface Served {
  baseUrl: string
  test: TestApp
}

const servers: Server[] = []

/** Listens first (the port decides PUBLIC_URL), then builds the app with that PUBLIC_URL and attaches it; closed after the file. */
const serve = async (pg: TestPostgres, env: Record<string, string> = {}): Promise<Served> => {
  let handler: RequestListener = (_req, res) => void res.writeHead(503).end()
  const server = createServer((req, res) => handler(req, res))
  servers.push(server)
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  const test = await buildTestApp(pg.pool, { PUBLIC_URL: baseUrl, ADMIN_TOKEN, ...env })
  handler = test.app
  return { baseUrl, test }
}

let pg: TestPostgres
let api: Served

before(async () => {
  pg = await startPostgres()
  api = await serve(pg)
})

after(async () => {
  for (const server of servers) server.closeAllConnections()
  await Promise.all(servers.map(s => new Promise(resolve => s.close(resolve))))
  await pg?.close()
})

/** One attempt as the client made it, and the status it got. */
interface Exchange {
  method: string
  url: string
  authorization: string
  status: number
}

/** A fetch that records every attempt (and can act before forwarding it). */
const recordingFetch = (before?: (url: string) => Promise<void>) => {
  const exchanges: Exchange[] = []
  const wrapped: typeof fetch = async (input, init) => {
    const url = String(input)
    await before?.(url)
    const response = await fetch(input, init)
    const authorization = String((init?.headers as Record<string, string> | undefined)?.authorization ?? '')
    exchanges.push({ method: init?.method ?? 'GET', url, authorization, status: response.status })
    return response
  }
  return { fetch: wrapped, exchanges }
}

const clientFor = (signer: Signer, served: Served = api, options: Partial<MailboxClientOptions> = {}): MailboxClient =>
  createMailboxClient({ baseUrl: served.baseUrl, signer: signer.secretKey, retryDelayMs: 10, ...options })

const bytes = (n: number) => new Uint8Array(randomBytes(n))

/** Asserts the promise rejects with a MailboxApiError of `status` / `code`; answers it. */
const apiFailure = async (promise: Promise<unknown>, status: number, code: string): Promise<MailboxApiError> => {
  const error = await promise.then(
    () => assert.fail(`expected ${status} ${code}, got a result`),
    (e: unknown) => e,
  )
  assert.ok(error instanceof MailboxApiError, `expected a MailboxApiError, got ${String(error)}`)
  assert.equal(error.code, code, error.message)
  assert.equal(error.status, status)
  return error
}

const counter = async (test: TestApp, name: string, kind: string): Promise<number> => {
  const match = new RegExp(`^msr_mailbox_${name}\\{kind="${kind}"\\} (\\d+)$`, 'm').exec(await test.metrics.metrics.render())
  return match ? Number(match[1]) : 0
}

const rowsFor = async (table: 'mail_keypackages' | 'mail_welcomes', recipient: string): Promise<number> =>
  (await pg.pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${table} WHERE recipient_pubkey = $1`, [recipient])).rows[0]?.n ?? -1

describe('client: KeyPackages', () => {
  it('deposits, lists and acknowledges: bytes, tags and times as deposited; a second ack is false', async () => {
    const [alice, bob] = [newSigner(), newSigner()]
    const content = bytes(300)
    const tags = [['mls_protocol_version', '1.0'], ['ciphersuite', '0x0001']]
    const { id } = await clientFor(alice).keyPackages.deposit({ recipient: bob.pubkey, content, tags, ttlSeconds: 3600 })
    const bobs = clientFor(bob)
    const page = await bobs.keyPackages.list()
    assert.equal(page.nextCursor, undefined)
    assert.equal(page.items.length, 1)
    const item = page.items[0] ?? assert.fail()
    assert.equal(item.id, id)
    assert.deepEqual(item.content, content)
    assert.equal(item.contentB64, Buffer.from(content).toString('base64'))
    assert.deepEqual(item.tags, tags)
    assert.equal(item.sender, alice.pubkey)
    assert.equal(item.recipient, bob.pubkey)
    assert.ok(Math.abs(item.expiresAt - item.createdAt - 3600) <= 1)
    assert.ok(item.pickedUpAt !== null && Math.abs(item.pickedUpAt - now()) < 30)
    assert.equal(await clientFor(alice).keyPackages.ack(id), false, 'not the sender’s to acknowledge')
    assert.equal(await bobs.keyPackages.ack(id), true)
    assert.equal(await bobs.keyPackages.ack(id), false)
    assert.deepEqual(await bobs.keyPackages.list(), { items: [] })
    assert.equal(await rowsFor('mail_keypackages', bob.pubkey), 0)
  })

  it('takes the recipient as npub and the content as base64 text; the mailbox is the signer’s own', async () => {
    const [alice, bob, carol] = [newSigner(), newSigner(), newSigner()]
    await clientFor(alice).keyPackages.deposit({ recipient: bob.npub, content: 'AAECAwQ=' })
    assert.deepEqual((await clientFor(carol).keyPackages.list()).items, [])
    const [item] = (await clientFor(bob).keyPackages.list()).items
    assert.deepEqual(item?.content, new Uint8Array([0, 1, 2, 3, 4]))
    assert.deepEqual(item?.tags, [])
  })
})

describe('client: Welcomes', () => {
  it('deposits, lists and acknowledges a Welcome with its ratchet tree, or without', async () => {
    const [alice, bob] = [newSigner(), newSigner()]
    const [welcome, tree] = [bytes(200), bytes(50)]
    const groupId = `grp-${randomBytes(4).toString('hex')}`
    const first = await clientFor(alice).welcomes.deposit({ recipient: bob.npub, groupId, welcome, ratchetTree: Buffer.from(tree).toString('base64') })
    const second = await clientFor(alice).welcomes.deposit({ recipient: bob.pubkey, groupId, welcome: 'AQID' })
    const bobs = clientFor(bob)
    const { items } = await bobs.welcomes.list()
    assert.deepEqual(items.map(i => i.id), [first.id, second.id])
    assert.equal(items[0]?.groupId, groupId)
    assert.deepEqual(items[0]?.welcome, welcome)
    assert.deepEqual(items[0]?.ratchetTree, tree)
    assert.equal(items[1]?.ratchetTree, undefined)
    assert.deepEqual(items[1]?.welcome, new Uint8Array([1, 2, 3]))
    for (const item of items) assert.equal(await bobs.welcomes.ack(item.id), true)
    assert.equal(await rowsFor('mail_welcomes', bob.pubkey), 0)
  })
})

describe('client: drain', () => {
  /** Deposits `n` KeyPackages for `recipient`; answers their ids in deposit order. */
  const fill = async (recipient: Signer, n: number): Promise<string[]> => {
    const sender = clientFor(newSigner())
    const ids: string[] = []
    for (let i = 0; i < n; i++) ids.push((await sender.keyPackages.deposit({ recipient: recipient.pubkey, content: new Uint8Array([i + 1]) })).id)
    return ids
  }

  it('yields every item across pages in order and acknowledges each exactly once', async () => {
    const bob = newSigner()
    const ids = await fill(bob, 7)
    const recorded = recordingFetch()
    const acksBefore = await counter(api.test, 'acks_total', 'keypackage')
    const seen: string[] = []
    for await (const item of clientFor(bob, api, { fetch: recorded.fetch }).keyPackages.drain({ limit: 3 })) seen.push(item.id)
    assert.deepEqual(seen, ids)
    const acks = recorded.exchanges.filter(e => e.url.endsWith('/ack'))
    assert.deepEqual(acks.map(e => e.url.split('/').at(-2)), ids, 'one ack per item, in order')
    assert.ok(acks.every(e => e.status === 200))
    assert.equal(recorded.exchanges.filter(e => e.method === 'GET').length, 3, 'pages of 3, 3 and 1')
    assert.equal((await counter(api.test, 'acks_total', 'keypackage')) - acksBefore, 7)
    assert.equal(await rowsFor('mail_keypackages', bob.pubkey), 0)
  })

  it('leaves the item in hand, and every later one, when the consumer throws or breaks', async () => {
    const bob = newSigner()
    const ids = await fill(bob, 5)
    const bobs = clientFor(bob)
    const taken: string[] = []
    await assert.rejects(async () => {
      for await (const item of bobs.keyPackages.drain({ limit: 2 })) {
        if (taken.length === 2) throw new Error('consumer failed on its third item')
        taken.push(item.id)
      }
    }, /third item/)
    assert.equal(await rowsFor('mail_keypackages', bob.pubkey), 3, 'only the two items handled were acknowledged')
    const again: string[] = []
    for await (const item of bobs.keyPackages.drain()) {
      again.push(item.id)
      if (again.length === 1) break
    }
    assert.deepEqual(again, [ids[2]])
    assert.equal(await rowsFor('mail_keypackages', bob.pubkey), 3, 'break leaves the item in hand')
    const rest: string[] = []
    for await (const item of bobs.keyPackages.drain({ limit: 100 })) rest.push(item.id)
    assert.deepEqual(rest, ids.slice(2))
    assert.equal(await rowsFor('mail_keypackages', bob.pubkey), 0)
  })

  it('with ack: false, only iterates every page', async () => {
    const bob = newSigner()
    const ids = await fill(bob, 4)
    const seen: string[] = []
    for await (const item of clientFor(bob).keyPackages.drain({ limit: 1, ack: false })) seen.push(item.id)
    assert.deepEqual(seen, ids)
    assert.equal(await rowsFor('mail_keypackages', bob.pubkey), 4)
  })
})

describe('client: groups and DM hints', () => {
  it('gets a group by id (path-encoded, non-ASCII included), or undefined for an unknown one', async () => {
    const groupId = `team/é ${randomBytes(4).toString('hex')}?`
    await applyGroupHint(pg.pool, { groupId, epoch: 4, eventTs: 1_700_000_000 })
    await applyGroupHint(pg.pool, { groupId, eventTs: 1_700_000_060 })
    const client = clientFor(newSigner())
    const group = await client.groups.get(groupId)
    assert.equal(group?.groupId, groupId)
    assert.equal(group?.lastEpoch, 4)
    assert.equal(group?.lastEventTs, 1_700_000_060)
    assert.equal(group?.messageCount, 2)
    assert.deepEqual(group?.relays, [])
    assert.equal(await client.groups.get(`missing-${randomBytes(4).toString('hex')}`), undefined)
  })

  it('lists the caller’s DM hints with since and paging', async () => {
    const [alice, bob] = [newSigner(), newSigner()]
    const eventIds = Array.from({ length: 3 }, () => randomBytes(32).toString('hex'))
    for (const [i, eventId] of eventIds.entries())
      await recordDmHint(pg.pool, { eventId, sender: alice.pubkey, createdAt: 1_700_000_000 + i, recipients: [bob.pubkey], ttlSeconds: 3600 })
    const bobs = clientFor(bob)
    const first = await bobs.dmHints.list({ limit: 2 })
    assert.deepEqual(first.items.map(h => h.eventId), eventIds.slice(0, 2))
    assert.equal(first.items[0]?.sender, alice.pubkey)
    assert.equal(first.items[1]?.createdAt, 1_700_000_001)
    const second = await bobs.dmHints.list({ limit: 2, cursor: first.nextCursor ?? assert.fail('no next cursor') })
    assert.deepEqual(second, { items: [{ eventId: eventIds[2], sender: alice.pubkey, createdAt: 1_700_000_002, receivedAt: second.items[0]?.receivedAt }] })
    assert.deepEqual((await bobs.dmHints.list({ since: now() + 3600 })).items, [])
    assert.deepEqual((await clientFor(alice).dmHints.list()).items, [])
  })
})

describe('admin client', () => {
  it('upserts and lists groups with the token, pages by cursor, and is refused without it', async () => {
    const admin = createMailboxAdminClient({ baseUrl: api.baseUrl, token: ADMIN_TOKEN })
    const prefix = `adm-${randomBytes(4).toString('hex')}`
    const owner = newSigner()
    const created = await admin.groups.upsert({ groupId: `${prefix}-a`, displayName: 'Book club', ownerPubkey: owner.npub, relays: ['wss://relay.example.com'] })
    assert.equal(created.displayName, 'Book club')
    assert.equal(created.ownerPubkey, owner.pubkey)
    assert.equal(created.messageCount, 0, 'an admin upsert counts no message')
    await applyGroupHint(pg.pool, { groupId: `${prefix}-a`, eventTs: 1_700_000_000 })
    const updated = await admin.groups.upsert({ groupId: `${prefix}-a`, avatarUrl: 'https://example.com/a.png' })
    assert.equal(updated.displayName, 'Book club', 'a field left out keeps its value')
    assert.equal(updated.avatarUrl, 'https://example.com/a.png')
    assert.equal(updated.messageCount, 1, 'an upsert keeps the count')
    assert.equal((await admin.groups.upsert({ groupId: `${prefix}-a`, displayName: null })).displayName, null)
    await admin.groups.upsert({ groupId: `${prefix}-b` })
    const seen: string[] = []
    let cursor: string | undefined
    do {
      const page = await admin.groups.list({ limit: 1, ...(cursor !== undefined && { cursor }) })
      assert.ok(page.items.length <= 1)
      seen.push(...page.items.map(g => g.groupId))
      for (const g of page.items) if (g.groupId === `${prefix}-a`) assert.equal(g.messageCount, 1)
      cursor = page.nextCursor
    } while (cursor !== undefined)
    assert.deepEqual(seen.filter(id => id.startsWith(prefix)), [`${prefix}-a`, `${prefix}-b`])
    const intruder = createMailboxAdminClient({ baseUrl: api.baseUrl, token: 'not-the-admin-token-0123456789' })
    await apiFailure(intruder.groups.list(), 401, 'ADMIN_AUTH_REQUIRED')
    await apiFailure(intruder.groups.upsert({ groupId: `${prefix}-c` }), 401, 'ADMIN_AUTH_REQUIRED')
    assert.equal(await clientFor(newSigner()).groups.get(`${prefix}-c`), undefined)
  })
})

describe('client: errors and retries', () => {
  it('surfaces the server’s validation codes as MailboxApiError', async () => {
    const [alice, bob] = [newSigner(), newSigner()]
    const client = clientFor(alice)
    await apiFailure(client.keyPackages.deposit({ recipient: bob.pubkey, content: 'AAAA', ttlSeconds: 10 ** 9 }), 400, 'TTL_TOO_LONG')
    const error = await apiFailure(client.keyPackages.deposit({ recipient: bob.pubkey, content: 'AAAA', tags: Array.from({ length: 65 }, () => ['t']) }), 400, 'VALIDATION_FAILED')
    assert.match(error.message, /tags/)
    await apiFailure(client.welcomes.list({ cursor: 'not-a-cursor' }), 400, 'VALIDATION_FAILED')
    const small = await serve(pg, { MAILBOX_MAX_ARTIFACT_BYTES: '1024' })
    await apiFailure(clientFor(alice, small).keyPackages.deposit({ recipient: bob.pubkey, content: bytes(1025) }), 413, 'PAYLOAD_TOO_LARGE')
    assert.equal(await rowsFor('mail_keypackages', bob.pubkey), 0)
  })

  it('is refused AUTH_URL_MISMATCH, once, when its baseUrl is not the server’s PUBLIC_URL', async () => {
    const recorded = recordingFetch()
    const elsewhere = createMailboxClient({ baseUrl: api.baseUrl.replace('127.0.0.1', 'localhost'), signer: newSigner().secretKey, fetch: recorded.fetch })
    await apiFailure(elsewhere.keyPackages.list(), 401, 'AUTH_URL_MISMATCH')
    assert.equal(recorded.exchanges.length, 1)
  })

  it('retries a 429 after Retry-After with a newly signed event, and the deposit is stored once', async () => {
    const limited = await serve(pg, { MAILBOX_RATE_LIMIT_PER_PUBKEY: '1' })
    const [alice, bob] = [newSigner(), newSigner()]
    const recorded = recordingFetch()
    const client = clientFor(alice, limited, { fetch: recorded.fetch, maxRetryWaitMs: 5_000 })
    await client.keyPackages.list()
    // The budget (1 a minute) is spent; its window is made to end in about a second instead of a minute.
    const moved = await pg.pool.query(`UPDATE rate_limits SET expire = $1 WHERE key = $2`, [Date.now() + 1_200, `pk:${alice.pubkey}`])
    assert.equal(moved.rowCount, 1)
    const { id } = await client.keyPackages.deposit({ recipient: bob.pubkey, content: 'AAAA' })
    assert.deepEqual(recorded.exchanges.map(e => e.status), [200, 429, 201])
    const [, refused, accepted] = recorded.exchanges
    assert.notEqual(refused?.authorization, accepted?.authorization)
    const rows = await pg.pool.query(`SELECT id FROM mail_keypackages WHERE recipient_pubkey = $1`, [bob.pubkey])
    assert.deepEqual(rows.rows.map(r => r.id), [id])
  })

  it('gives up with RATE_LIMITED and retryAfterSeconds: at once past maxRetryWaitMs, else after re-signed retries', async () => {
    const limited = await serve(pg, { MAILBOX_RATE_LIMIT_PER_PUBKEY: '1' })
    const carol = newSigner()
    const recorded = recordingFetch()
    const impatient = clientFor(carol, limited, { fetch: recorded.fetch, maxRetryWaitMs: 1_000 })
    await impatient.welcomes.list()
    const error = await apiFailure(impatient.welcomes.list(), 429, 'RATE_LIMITED')
    assert.ok(error.retryAfterSeconds !== undefined && error.retryAfterSeconds > 1 && error.retryAfterSeconds <= 60, String(error.retryAfterSeconds))
    assert.equal(recorded.exchanges.length, 2, 'a wait beyond maxRetryWaitMs is not attempted')
    // Another client of the same pubkey keeps the budget spent: each attempt meets a window ending in ~1 s.
    const dave = newSigner()
    const spent = recordingFetch(async () => {
      await pg.pool.query(
        `INSERT INTO rate_limits (key, points, expire) VALUES ($1, 5, $2) ON CONFLICT (key) DO UPDATE SET points = 5, expire = EXCLUDED.expire`,
        [`pk:${dave.pubkey}`, Date.now() + 900],
      )
    })
    const persistent = clientFor(dave, limited, { fetch: spent.fetch, retries: 2, maxRetryWaitMs: 2_000 })
    const exhausted = await apiFailure(persistent.dmHints.list(), 429, 'RATE_LIMITED')
    assert.equal(exhausted.retryAfterSeconds, 1)
    assert.deepEqual(spent.exchanges.map(e => e.status), [429, 429, 429])
    assert.equal(new Set(spent.exchanges.map(e => e.authorization)).size, 3, 'each attempt signed anew')
  })
})
