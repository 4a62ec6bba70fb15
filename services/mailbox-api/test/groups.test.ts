// The group registry: GET one for any authenticated caller; list and upsert for admins (token + IP allowlist); epoch hints.
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { after, before, describe, it } from 'node:test'
import request from 'supertest'
import { applyGroupHint, getGroup } from '../src/domain/groups.js'
import { buildTestApp, expectError, expectStatus, newSigner, qs, startPostgres, type TestApp, type TestPostgres } from './harness.js'

const ADMIN_TOKEN = 'admin-token-for-tests-0123456789'

let pg: TestPostgres
let app: TestApp
let allowlisted: TestApp

before(async () => {
  pg = await startPostgres()
  app = await buildTestApp(pg.pool, { ADMIN_TOKEN })
  allowlisted = await buildTestApp(pg.pool, { ADMIN_TOKEN, TRUSTED_PROXIES: '1', ADMIN_IP_ALLOWLIST: '10.0.0.0/8, 192.0.2.7, 2001:db8::/32' })
})

after(async () => {
  await pg?.close()
})

type Group = {
  group_id: string
  display_name: string | null
  avatar_url: string | null
  owner_pubkey: string | null
  last_epoch: number | null
  last_event_ts: number | null
  message_count: number
  relays: string[]
  created_at: number
  updated_at: number
}

const uniqueId = (prefix = 'g') => `${prefix}-${randomBytes(6).toString('hex')}`

/** Admin requests with `Bearer token` (null: no Authorization header). */
const adminGet = (target: TestApp, query = '', token: string | null = ADMIN_TOKEN) => {
  const req = request(target.app).get(`/api/v1/groups${query}`)
  return token === null ? req : req.set('Authorization', `Bearer ${token}`)
}
const adminPost = (target: TestApp, body: unknown, token: string | null = ADMIN_TOKEN) => {
  const req = request(target.app).post('/api/v1/groups').set('Content-Type', 'application/json')
  return (token === null ? req : req.set('Authorization', `Bearer ${token}`)).send(JSON.stringify(body))
}
const upsert = async (body: Record<string, unknown>): Promise<Group> => {
  const res = await adminPost(app, body)
  expectStatus(res, 200)
  assert.equal(res.body.ok, true)
  return res.body.group as Group
}
const readGroup = async (id: string): Promise<Group> => {
  const res = await app.api.get(`/groups/${encodeURIComponent(id)}`, newSigner())
  expectStatus(res, 200)
  return res.body.group as Group
}

describe('GET /groups/{id}', () => {
  it('answers any NIP-98-authenticated caller with the group', async () => {
    const id = uniqueId()
    const owner = newSigner()
    await upsert({ group_id: id, display_name: 'Book club', avatar_url: 'https://img.example/a.png', owner_pubkey: owner.npub, relays: ['wss://relay.example'] })
    const group = await readGroup(id)
    assert.equal(group.group_id, id)
    assert.equal(group.display_name, 'Book club')
    assert.equal(group.avatar_url, 'https://img.example/a.png')
    assert.equal(group.owner_pubkey, owner.pubkey, 'npub stored and answered as hex')
    assert.deepEqual(group.relays, ['wss://relay.example'])
    assert.equal(group.last_epoch, null)
    assert.equal(group.last_event_ts, null)
    assert.equal(group.message_count, 0, 'an admin upsert counts no message')
    assert.equal(typeof group.created_at, 'number')
  })

  it('answers 404 GROUP_NOT_FOUND for an unknown id', async () => {
    expectError(await app.api.get(`/groups/${uniqueId('absent')}`, newSigner()), 404, 'GROUP_NOT_FOUND')
  })

  it('requires NIP-98, and the admin token is no substitute', async () => {
    const id = uniqueId()
    await upsert({ group_id: id })
    expectError(await request(app.app).get(`/api/v1/groups/${id}`), 401, 'AUTH_REQUIRED')
    expectError(await request(app.app).get(`/api/v1/groups/${id}`).set('Authorization', `Bearer ${ADMIN_TOKEN}`), 401, 'AUTH_INVALID')
  })

  it('refuses an id longer than 256 characters with 400', async () => {
    expectError(await app.api.get(`/groups/${'g'.repeat(257)}`, newSigner()), 400, 'VALIDATION_FAILED')
  })
})

describe('admin routes: GET /groups and POST /groups', () => {
  it('refuse a missing, wrong or NIP-98 credential with 401 ADMIN_AUTH_REQUIRED', async () => {
    const signer = newSigner()
    for (const token of [null, 'wrong-token-of-good-length', `${ADMIN_TOKEN}x`, ADMIN_TOKEN.slice(0, -1), '']) {
      expectError(await adminGet(app, '', token), 401, 'ADMIN_AUTH_REQUIRED')
      expectError(await adminPost(app, { group_id: uniqueId() }, token), 401, 'ADMIN_AUTH_REQUIRED')
    }
    expectError(await app.api.get('/groups', signer), 401, 'ADMIN_AUTH_REQUIRED')
    expectError(await app.api.post('/groups', signer, { group_id: uniqueId() }), 401, 'ADMIN_AUTH_REQUIRED')
    expectError(await request(app.app).get('/api/v1/groups').set('Authorization', ADMIN_TOKEN), 401, 'ADMIN_AUTH_REQUIRED')
  })

  it('refuse everyone when no ADMIN_TOKEN is configured', async () => {
    const open = await buildTestApp(pg.pool)
    expectError(await adminGet(open), 401, 'ADMIN_AUTH_REQUIRED')
    expectError(await adminGet(open, '', 'undefined'), 401, 'ADMIN_AUTH_REQUIRED')
    expectError(await adminPost(open, { group_id: uniqueId() }), 401, 'ADMIN_AUTH_REQUIRED')
  })

  it('enforce ADMIN_IP_ALLOWLIST on the client address (TRUSTED_PROXIES=1: the last X-Forwarded-For hop)', async () => {
    const from = (xff: string | undefined) => {
      const req = adminGet(allowlisted, qs({ limit: 1 }))
      return xff === undefined ? req : req.set('X-Forwarded-For', xff)
    }
    for (const ip of ['10.1.2.3', '10.255.255.255', '192.0.2.7', '2001:db8::1', '2001:db8:ffff::42', '198.51.100.1, 10.0.0.1'])
      expectStatus(await from(ip), 200)
    for (const ip of [undefined, '192.0.2.8', '11.0.0.1', '2001:db9::1', '10.0.0.1, 198.51.100.1', 'not-an-ip'])
      expectError(await from(ip), 401, 'ADMIN_AUTH_REQUIRED')
    expectError(await adminPost(allowlisted, { group_id: uniqueId() }).set('X-Forwarded-For', '203.0.113.9'), 401, 'ADMIN_AUTH_REQUIRED')
    expectStatus(await adminPost(allowlisted, { group_id: uniqueId() }).set('X-Forwarded-For', '10.9.9.9'), 200)
    expectError(await adminGet(allowlisted, '', 'wrong-token-of-good-length').set('X-Forwarded-For', '10.1.2.3'), 401, 'ADMIN_AUTH_REQUIRED')
  })

  it('ignore X-Forwarded-For when no proxy is trusted', async () => {
    const direct = await buildTestApp(pg.pool, { ADMIN_TOKEN, ADMIN_IP_ALLOWLIST: '10.0.0.0/8' })
    expectError(await adminGet(direct).set('X-Forwarded-For', '10.1.2.3'), 401, 'ADMIN_AUTH_REQUIRED')
    const loopback = await buildTestApp(pg.pool, { ADMIN_TOKEN, ADMIN_IP_ALLOWLIST: '127.0.0.1, ::1' })
    expectStatus(await adminGet(loopback), 200)
  })

  it('list groups by id in pages, each exactly once', async () => {
    const prefix = uniqueId('page')
    const ids = Array.from({ length: 7 }, (_, i) => `${prefix}-${i}`)
    for (const id of [...ids].reverse()) await upsert({ group_id: id })
    const seen: string[] = []
    let cursor: string | undefined
    let pages = 0
    do {
      const res = await adminGet(app, qs({ limit: 3, cursor }))
      expectStatus(res, 200)
      assert.ok(res.body.items.length <= 3)
      seen.push(...(res.body.items as Group[]).map(g => g.group_id))
      cursor = res.body.next_cursor
      pages++
    } while (cursor !== undefined && pages < 100)
    assert.equal(cursor, undefined)
    assert.deepEqual(seen, [...seen].sort(), 'ordered by id')
    assert.equal(new Set(seen).size, seen.length, 'no group twice')
    assert.deepEqual(seen.filter(id => id.startsWith(prefix)), ids)
    const all = await adminGet(app, qs({ limit: 500 }))
    assert.deepEqual((all.body.items as Group[]).map(g => g.group_id), seen)
    assert.equal(all.body.next_cursor, undefined)
  })

  it('bound the list query', async () => {
    for (const query of [{ limit: 0 }, { limit: 501 }, { limit: 'x' }, { colour: 'blue' }, { cursor: 'c'.repeat(257) }])
      expectError(await adminGet(app, qs(query)), 400, 'VALIDATION_FAILED')
  })

  it('upsert keeps the fields a request leaves out, and clears those sent as null', async () => {
    const id = uniqueId()
    const owner = newSigner()
    const created = await upsert({ group_id: id, display_name: 'First', avatar_url: 'https://img.example/1.png', owner_pubkey: owner.pubkey, relays: ['wss://a.example'] })
    assert.equal(created.display_name, 'First')
    const renamed = await upsert({ group_id: id, display_name: 'Second' })
    assert.equal(renamed.display_name, 'Second')
    assert.equal(renamed.avatar_url, 'https://img.example/1.png')
    assert.equal(renamed.owner_pubkey, owner.pubkey)
    assert.deepEqual(renamed.relays, ['wss://a.example'])
    const cleared = await upsert({ group_id: id, avatar_url: null, relays: [] })
    assert.equal(cleared.display_name, 'Second')
    assert.equal(cleared.avatar_url, null)
    assert.deepEqual(cleared.relays, [])
    assert.equal(cleared.owner_pubkey, owner.pubkey)
    assert.deepEqual(await readGroup(id), cleared)
  })

  it('upsert never touches the epoch, last event time or message count, which only hints set', async () => {
    const id = uniqueId()
    await applyGroupHint(pg.pool, { groupId: id, epoch: 4, eventTs: 1_700_000_000 })
    await applyGroupHint(pg.pool, { groupId: id, eventTs: 1_700_000_010 })
    const group = await upsert({ group_id: id, display_name: 'Named later' })
    assert.equal(group.last_epoch, 4)
    assert.equal(group.last_event_ts, 1_700_000_010)
    assert.equal(group.message_count, 2)
    assert.equal((await upsert({ group_id: id, display_name: null, relays: ['wss://a.example'] })).message_count, 2)
    expectError(await adminPost(app, { group_id: id, last_epoch: 1 }), 400, 'VALIDATION_FAILED')
    expectError(await adminPost(app, { group_id: id, last_event_ts: 1 }), 400, 'VALIDATION_FAILED')
    expectError(await adminPost(app, { group_id: id, message_count: 0 }), 400, 'VALIDATION_FAILED')
    const stored = await readGroup(id)
    assert.deepEqual([stored.last_epoch, stored.message_count], [4, 2])
    const listed = await adminGet(app, qs({ limit: 500 }))
    assert.equal((listed.body.items as Group[]).find(g => g.group_id === id)?.message_count, 2, 'the listing carries the count')
  })

  it('upsert validates its body', async () => {
    const id = uniqueId()
    for (const body of [
      {},
      { group_id: '' },
      { group_id: 'g'.repeat(257) },
      { group_id: 42 },
      { group_id: id, colour: 'blue' },
      { group_id: id, display_name: 'd'.repeat(257) },
      { group_id: id, avatar_url: 'not a url' },
      // Served to every caller: never a URL a client would run or inline.
      { group_id: id, avatar_url: 'javascript:alert(1)' },
      { group_id: id, avatar_url: 'data:image/svg+xml;base64,PHN2Zy8+' },
      { group_id: id, avatar_url: 'ftp://img.example/a.png' },
      { group_id: id, owner_pubkey: 'npub1bad' },
      { group_id: id, relays: ['https://not-a-relay.example'] },
      { group_id: id, relays: 'wss://a.example' },
      { group_id: id, relays: Array.from({ length: 17 }, (_, i) => `wss://r${i}.example`) },
    ])
      expectError(await adminPost(app, body), 400, 'VALIDATION_FAILED')
    expectError(await request(app.app).post('/api/v1/groups').set('Authorization', `Bearer ${ADMIN_TOKEN}`).set('Content-Type', 'application/json').send('{"group_id":'), 400, 'VALIDATION_FAILED')
    expectError(await app.api.get(`/groups/${id}`, newSigner()), 404, 'GROUP_NOT_FOUND')
  })
})

describe('applyGroupHint', () => {
  it('creates the group, never lowers last_epoch and keeps last_event_ts monotonic', async () => {
    const id = uniqueId()
    const state = async () => {
      const g = await getGroup(pg.pool, id)
      return [g?.last_epoch, g?.last_event_ts]
    }
    await applyGroupHint(pg.pool, { groupId: id, eventTs: 100 })
    assert.deepEqual(await state(), [null, 100], 'a hint without epoch')
    assert.equal((await getGroup(pg.pool, id))?.message_count, 1)
    await applyGroupHint(pg.pool, { groupId: id, epoch: 5, eventTs: 200 })
    assert.deepEqual(await state(), [5, 200])
    await applyGroupHint(pg.pool, { groupId: id, epoch: 3, eventTs: 300 })
    assert.deepEqual(await state(), [5, 300], 'a lower epoch never lowers it; a later event moves the time')
    await applyGroupHint(pg.pool, { groupId: id, epoch: 7, eventTs: 250 })
    assert.deepEqual(await state(), [7, 300], 'a higher epoch in a late hint raises it; the time stays')
    await applyGroupHint(pg.pool, { groupId: id, eventTs: 400 })
    assert.deepEqual(await state(), [7, 400], 'a hint without epoch keeps it')
    await applyGroupHint(pg.pool, { groupId: id, epoch: 7, eventTs: 400 })
    await applyGroupHint(pg.pool, { groupId: id, epoch: 0, eventTs: 0 })
    assert.deepEqual(await state(), [7, 400], 'equal and stale hints change neither')
    assert.equal((await getGroup(pg.pool, id))?.message_count, 7, 'each applied hint counts once (consumeHint drops redeliveries)')
  })

  it('counts hints without an epoch (Marmot) on a group an admin created', async () => {
    const id = uniqueId()
    await upsert({ group_id: id, display_name: 'Admin first' })
    await applyGroupHint(pg.pool, { groupId: id, eventTs: 500 })
    await applyGroupHint(pg.pool, { groupId: id, eventTs: 400 })
    const group = await readGroup(id)
    assert.deepEqual([group.last_epoch, group.last_event_ts, group.message_count, group.display_name], [null, 500, 2, 'Admin first'])
  })

  it('keeps admin metadata and stays monotonic under concurrent hints', async () => {
    const id = uniqueId()
    await upsert({ group_id: id, display_name: 'Concurrent', relays: ['wss://a.example'] })
    const hints = Array.from({ length: 40 }, (_, i) => ({ groupId: id, epoch: (i * 7) % 40, eventTs: 1000 + ((i * 13) % 40) }))
    await Promise.all(hints.map(h => applyGroupHint(pg.pool, h)))
    const group = await readGroup(id)
    assert.equal(group.last_epoch, 39)
    assert.equal(group.last_event_ts, 1039)
    assert.equal(group.message_count, 40, 'no concurrent increment lost')
    assert.equal(group.display_name, 'Concurrent')
    assert.deepEqual(group.relays, ['wss://a.example'])
  })
})
