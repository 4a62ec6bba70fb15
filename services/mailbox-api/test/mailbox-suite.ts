// The behaviour both mailboxes share (KeyPackages and Welcomes), run by keypackages.test.ts and welcome.test.ts.
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import request from 'supertest'
import { purgeExpired } from '../src/domain/janitor.js'
import {
  authHeader,
  b64,
  buildTestApp,
  expectError,
  expectStatus,
  newSigner,
  now,
  qs,
  sleep,
  startPostgres,
  type Signer,
  type TestApp,
  type TestPostgres,
} from './harness.js'

/** What differs between the two mailboxes. */
export interface MailboxSpec {
  path: '/keypackages' | '/welcome'
  table: 'mail_keypackages' | 'mail_welcomes'
  kind: 'keypackage' | 'welcome'
  /** The artifact every deposit carries (base64). */
  artifact: 'content_b64' | 'welcome_b64'
  /** A valid deposit for `recipient` with fresh artifacts, then `extra` fields. */
  body(recipient: string, extra?: Record<string, unknown>): Record<string, unknown>
}

/** The database and apps of one mailbox test file. */
export interface MailboxContext {
  pg: TestPostgres
  /** Default limits (7 d default TTL, 30 d max, 256 KiB artifacts). */
  main: TestApp
  /** MAILBOX_MAX_ARTIFACT_BYTES=1024, MAILBOX_DEFAULT_TTL=10m, MAILBOX_MAX_TTL=1h. */
  small: TestApp
}

/** Starts the file's PostgreSQL and apps before its tests and stops them after. */
export const useMailboxContext = (): MailboxContext => {
  const ctx = {} as MailboxContext
  before(async () => {
    ctx.pg = await startPostgres()
    ctx.main = await buildTestApp(ctx.pg.pool)
    ctx.small = await buildTestApp(ctx.pg.pool, { MAILBOX_MAX_ARTIFACT_BYTES: '1024', MAILBOX_DEFAULT_TTL: '10m', MAILBOX_MAX_TTL: '1h' })
  })
  after(async () => {
    await ctx.pg?.close()
  })
  return ctx
}

type Item = Record<string, unknown> & { id: string; recipient: string; sender: string; created_at: number; expires_at: number; picked_up_at: number | null }
type PageBody = { ok: true; items: Item[]; next_cursor?: string }

/** Registers the shared mailbox tests for `spec` on the context's database. */
export const describeMailbox = (spec: MailboxSpec, ctx: MailboxContext): void => {
  const deposit = async (sender: Signer, recipient: string, extra: Record<string, unknown> = {}, app: TestApp = ctx.main) => {
    const body = spec.body(recipient, extra)
    const res = await app.api.post(spec.path, sender, body)
    expectStatus(res, 201)
    return { id: (res.body as { id: string }).id, body }
  }
  const pickup = async (recipient: Signer, params: Record<string, string | number | undefined> = {}) => {
    const res = await ctx.main.api.get(`${spec.path}${qs({ recipient: recipient.pubkey, ...params })}`, recipient)
    expectStatus(res, 200)
    return res.body as PageBody
  }
  const row = async (id: string) =>
    (await ctx.pg.pool.query(`SELECT recipient_pubkey, sender_pubkey, picked_up_at::text AS picked FROM ${spec.table} WHERE id = $1`, [id])).rows[0] as
      | { recipient_pubkey: string; sender_pubkey: string; picked: string | null }
      | undefined

  describe(`${spec.path}: deposit, pickup, ack`, () => {
    it('answers a deposit 201 { ok: true, id } once the row is committed', async () => {
      const [alice, bob] = [newSigner(), newSigner()]
      const res = await ctx.main.api.post(spec.path, alice, spec.body(bob.pubkey))
      expectStatus(res, 201)
      assert.equal(res.body.ok, true)
      assert.match(res.body.id, /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/)
      assert.deepEqual(Object.keys(res.body).sort(), ['id', 'ok'])
      const stored = await row(res.body.id)
      assert.ok(stored, 'the row is readable as soon as the 201 arrived')
      assert.equal(stored.recipient_pubkey, bob.pubkey)
      assert.equal(stored.sender_pubkey, alice.pubkey)
      assert.equal(stored.picked, null)
    })

    it('picks up the recipient’s items oldest first, page by page with a cursor, and nobody else’s', async () => {
      const [alice, bob, carol] = [newSigner(), newSigner(), newSigner()]
      const sent: { id: string; body: Record<string, unknown> }[] = []
      for (let i = 0; i < 5; i++) {
        sent.push(await deposit(i % 2 === 0 ? alice : carol, bob.pubkey))
        await deposit(alice, carol.pubkey)
      }
      const pages: PageBody[] = []
      let cursor: string | undefined
      do {
        const page = await pickup(bob, { limit: 2, cursor })
        pages.push(page)
        cursor = page.next_cursor
      } while (cursor !== undefined && pages.length < 10)
      assert.deepEqual(pages.map(p => p.items.length), [2, 2, 1])
      assert.equal(pages[2]?.next_cursor, undefined, 'the last page has no cursor')
      const items = pages.flatMap(p => p.items)
      assert.deepEqual(items.map(i => i.id), sent.map(s => s.id), 'oldest first, each once')
      for (const [i, item] of items.entries()) {
        const body = sent[i]?.body ?? {}
        assert.equal(item.recipient, bob.pubkey)
        assert.equal(item.sender, i % 2 === 0 ? alice.pubkey : carol.pubkey)
        for (const [field, value] of Object.entries(body)) if (field !== 'recipient') assert.deepEqual(item[field], value, field)
        assert.ok(Math.abs(item.created_at - now()) < 30, 'created_at is unix seconds')
        assert.equal(typeof item.picked_up_at, 'number')
      }
      const again = await pickup(bob)
      assert.deepEqual(again.items.map(i => i.id), sent.map(s => s.id), 'picked-up items stay until acknowledged')
      assert.equal(again.next_cursor, undefined)
    })

    it('sets picked_up_at on the first pickup and leaves it unchanged on later ones', async () => {
      const [alice, bob] = [newSigner(), newSigner()]
      const { id } = await deposit(alice, bob.pubkey)
      assert.equal((await row(id))?.picked, null)
      const first = (await pickup(bob)).items.find(i => i.id === id)
      assert.ok(first && typeof first.picked_up_at === 'number' && Math.abs(first.picked_up_at - now()) < 30)
      const stamped = (await row(id))?.picked
      assert.ok(stamped)
      await sleep(1100)
      const second = (await pickup(bob)).items.find(i => i.id === id)
      assert.equal(second?.picked_up_at, first.picked_up_at)
      assert.equal((await row(id))?.picked, stamped, 'the stored timestamp is exactly the first one')
    })

    it('ack deletes the item; a second ack is 404 MAILBOX_NOT_FOUND, never a 500', async () => {
      const [alice, bob] = [newSigner(), newSigner()]
      const { id } = await deposit(alice, bob.pubkey)
      const { id: kept } = await deposit(alice, bob.pubkey)
      const res = await ctx.main.api.post(`${spec.path}/${id}/ack`, bob)
      expectStatus(res, 200)
      assert.deepEqual(res.body, { ok: true })
      assert.equal(await row(id), undefined)
      assert.deepEqual((await pickup(bob)).items.map(i => i.id), [kept])
      expectError(await ctx.main.api.post(`${spec.path}/${id}/ack`, bob), 404, 'MAILBOX_NOT_FOUND')
      expectError(await ctx.main.api.post(`${spec.path}/${id}/ack`, bob), 404, 'MAILBOX_NOT_FOUND')
    })

    it('an ack names the item in any case (UUIDs are case-insensitive)', async () => {
      const [alice, bob] = [newSigner(), newSigner()]
      const { id } = await deposit(alice, bob.pubkey)
      expectStatus(await ctx.main.api.post(`${spec.path}/${id.toUpperCase()}/ack`, bob), 200)
      assert.equal(await row(id), undefined)
      expectError(await ctx.main.api.post(`${spec.path}/${id}/ack`, bob), 404, 'MAILBOX_NOT_FOUND')
    })

    it('concurrent deposits (sharing statements) are each answered 201 with an id of their own, once their row is committed', async () => {
      const [alice, bob] = [newSigner(), newSigner()]
      const bodies = Array.from({ length: 12 }, () => spec.body(bob.pubkey))
      const answers = await Promise.all(bodies.map(body => ctx.main.api.post(spec.path, alice, body)))
      for (const res of answers) expectStatus(res, 201)
      const ids = answers.map(res => (res.body as { id: string }).id)
      assert.equal(new Set(ids).size, ids.length)
      const stored = await ctx.pg.pool.query(`SELECT id, ${spec.artifact} AS artifact FROM ${spec.table} WHERE id = ANY($1)`, [ids])
      const artifacts = new Map(stored.rows.map(r => [r.id as string, r.artifact as string]))
      ids.forEach((id, i) => assert.equal(artifacts.get(id), bodies[i]?.[spec.artifact], 'each id names the row of its own body'))
    })

    it('the same item acked by concurrent requests is deleted once: one 200, the others 404, beside other acks', async () => {
      const [alice, bob] = [newSigner(), newSigner()]
      const { id } = await deposit(alice, bob.pubkey)
      const others = await Promise.all([1, 2, 3].map(() => deposit(alice, bob.pubkey)))
      const ack = (item: string) => ctx.main.api.post(`${spec.path}/${item}/ack`, bob)
      const answers = await Promise.all([ack(id), ...others.map(o => ack(o.id)), ack(id), ack(id)])
      const twice = [answers[0], answers[4], answers[5]].map(res => res?.status)
      assert.deepEqual([...twice].sort(), [200, 404, 404])
      for (const res of answers.slice(1, 4)) expectStatus(res as request.Response, 200)
      assert.equal((await pickup(bob)).items.length, 0)
    })

    it('ack of someone else’s item is 404 MAILBOX_NOT_FOUND and leaves the item', async () => {
      const [alice, bob, mallory] = [newSigner(), newSigner(), newSigner()]
      const { id } = await deposit(alice, bob.pubkey)
      expectError(await ctx.main.api.post(`${spec.path}/${id}/ack`, mallory), 404, 'MAILBOX_NOT_FOUND')
      expectError(await ctx.main.api.post(`${spec.path}/${id}/ack`, alice), 404, 'MAILBOX_NOT_FOUND')
      assert.ok(await row(id))
      assert.deepEqual((await pickup(bob)).items.map(i => i.id), [id])
    })

    it('ack of an id that never existed is 404 MAILBOX_NOT_FOUND', async () => {
      expectError(await ctx.main.api.post(`${spec.path}/00000000-0000-4000-8000-000000000000/ack`, newSigner()), 404, 'MAILBOX_NOT_FOUND')
    })

    it('lets only the recipient pick up (403 FORBIDDEN), with hex or npub in the query', async () => {
      const [alice, bob] = [newSigner(), newSigner()]
      await deposit(alice, bob.pubkey)
      for (const recipient of [bob.pubkey, bob.npub]) {
        const res = await ctx.main.api.get(`${spec.path}${qs({ recipient })}`, alice)
        expectError(res, 403, 'FORBIDDEN')
      }
      const res = await ctx.main.api.get(`${spec.path}${qs({ recipient: bob.npub })}`, bob)
      expectStatus(res, 200)
      assert.equal(res.body.items.length, 1)
    })

    it('accepts a sender field only when it is the NIP-98 pubkey (hex or npub), else 403 FORBIDDEN', async () => {
      const [alice, bob, carol] = [newSigner(), newSigner(), newSigner()]
      await deposit(alice, bob.pubkey, { sender: alice.pubkey })
      await deposit(alice, bob.pubkey, { sender: alice.npub })
      const res = await ctx.main.api.post(spec.path, alice, spec.body(bob.pubkey, { sender: carol.pubkey }))
      expectError(res, 403, 'FORBIDDEN')
      const items = (await pickup(bob)).items
      assert.equal(items.length, 2, 'the refused deposit stored nothing')
      assert.ok(items.every(i => i.sender === alice.pubkey))
    })

    it('accepts npub and upper-case hex recipients, stores and answers lowercase hex', async () => {
      const [alice, bob] = [newSigner(), newSigner()]
      const a = await deposit(alice, bob.npub)
      const b = await deposit(alice, bob.pubkey.toUpperCase())
      assert.equal((await row(a.id))?.recipient_pubkey, bob.pubkey)
      assert.equal((await row(b.id))?.recipient_pubkey, bob.pubkey)
      const items = (await pickup(bob)).items
      assert.deepEqual(items.map(i => i.recipient), [bob.pubkey, bob.pubkey])
      assert.deepEqual(items.map(i => i.sender), [alice.pubkey, alice.pubkey])
    })

    it('gives an item the default TTL, accepts up to the maximum and refuses more with 400 TTL_TOO_LONG', async () => {
      const [alice, bob] = [newSigner(), newSigner()]
      const cases: [TestApp, number | undefined, number][] = [
        [ctx.main, undefined, 7 * 86400],
        [ctx.main, 30 * 86400, 30 * 86400],
        [ctx.small, undefined, 600],
        [ctx.small, 3600, 3600],
        [ctx.small, 90, 90],
      ]
      for (const [app, ttl, expected] of cases) {
        const { id } = await deposit(alice, bob.pubkey, ttl === undefined ? {} : { ttl_seconds: ttl }, app)
        const item = (await pickup(bob)).items.find(i => i.id === id)
        assert.ok(item)
        assert.ok(Math.abs(item.expires_at - item.created_at - expected) <= 1, `ttl ${ttl}: expires ${item.expires_at - item.created_at} s after creation`)
      }
      expectError(await ctx.main.api.post(spec.path, alice, spec.body(bob.pubkey, { ttl_seconds: 30 * 86400 + 1 })), 400, 'TTL_TOO_LONG')
      expectError(await ctx.small.api.post(spec.path, alice, spec.body(bob.pubkey, { ttl_seconds: 3601 })), 400, 'TTL_TOO_LONG')
      assert.equal((await pickup(bob)).items.length, cases.length, 'refused deposits stored nothing')
    })

    it('hides an expired item at once (pickup and ack) and the janitor purges it', async () => {
      const [alice, bob] = [newSigner(), newSigner()]
      const { id: expiring } = await deposit(alice, bob.pubkey, { ttl_seconds: 1 })
      const { id: lasting } = await deposit(alice, bob.pubkey)
      assert.deepEqual((await pickup(bob)).items.map(i => i.id), [expiring, lasting])
      await sleep(1500)
      assert.deepEqual((await pickup(bob)).items.map(i => i.id), [lasting], 'invisible before any purge')
      expectError(await ctx.main.api.post(`${spec.path}/${expiring}/ack`, bob), 404, 'MAILBOX_NOT_FOUND')
      assert.ok(await row(expiring), 'still stored until the janitor runs')
      const purged = await purgeExpired(ctx.pg.pool)
      assert.ok(purged[spec.kind] >= 1, `purged ${JSON.stringify(purged)}`)
      assert.equal(await row(expiring), undefined)
      assert.ok(await row(lasting), 'the janitor leaves unexpired items')
    })
  })

  describe(`${spec.path}: validation`, () => {
    const [alice, bob] = [newSigner(), newSigner()]
    const refuse = async (body: unknown, status = 400, code = 'VALIDATION_FAILED', app: TestApp = ctx.main) => {
      const res = await app.api.post(spec.path, alice, body)
      return expectError(res, status, code)
    }
    const refuseQuery = async (params: Record<string, string | number | undefined>, code = 'VALIDATION_FAILED') =>
      expectError(await ctx.main.api.get(`${spec.path}${qs(params)}`, bob), 400, code)

    it('refuses unknown fields, naming them (the first few of many, each name cut short)', async () => {
      const { message } = await refuse(spec.body(bob.pubkey, { colour: 'blue' }))
      assert.match(message, /colour/)
      const many = Object.fromEntries(Array.from({ length: 1000 }, (_, i) => [`field_${i}_${'x'.repeat(70)}`, i]))
      const { message: short } = await refuse(spec.body(bob.pubkey, many))
      assert.match(short, /^invalid body: unknown fields field_0_x+, .*, and 990 more$/)
      assert.ok(short.length < 1000, `${short.length} characters`)
      await refuse(spec.body(bob.pubkey, { id: '00000000-0000-4000-8000-000000000000' }))
      await refuse(spec.body(bob.pubkey, { expires_at: now() + 10 }))
    })

    it('refuses artifacts that are not standard padded base64', async () => {
      for (const bad of ['not base64!', 'abc', 'YWI', 'ab-_', 'YW Jj', '', '====', 'YWJj\n'])
        await refuse(spec.body(bob.pubkey, { [spec.artifact]: bad }))
    })

    it('refuses wrong types', async () => {
      await refuse(spec.body(bob.pubkey, { recipient: 42 }))
      await refuse(spec.body(bob.pubkey, { [spec.artifact]: 42 }))
      await refuse(spec.body(bob.pubkey, { [spec.artifact]: [b64(8)] }))
      await refuse(spec.body(bob.pubkey, { ttl_seconds: '60' }))
      await refuse(spec.body(bob.pubkey, { ttl_seconds: 1.5 }))
      await refuse(spec.body(bob.pubkey, { ttl_seconds: 0 }))
      await refuse(spec.body(bob.pubkey, { ttl_seconds: -5 }))
      await refuse(spec.body(bob.pubkey, { sender: 7 }))
      await refuse([spec.body(bob.pubkey)])
    })

    it('refuses missing fields and recipients that are not pubkeys', async () => {
      await refuse({})
      const { recipient: _r, ...withoutRecipient } = spec.body(bob.pubkey)
      await refuse(withoutRecipient)
      const { [spec.artifact]: _a, ...withoutArtifact } = spec.body(bob.pubkey)
      const { message } = await refuse(withoutArtifact)
      assert.match(message, new RegExp(spec.artifact))
      for (const recipient of ['npub1bad', bob.pubkey.slice(1), `${bob.pubkey}00`, bob.npub.slice(0, -1), 'g'.repeat(64), ''])
        await refuse(spec.body(bob.pubkey, { recipient }))
    })

    it('refuses a body that is not JSON, or JSON that is not an object', async () => {
      await refuse(`{"recipient":"${bob.pubkey}",`)
      await refuse('null')
      await refuse('"a string"')
      await refuse('[]')
    })

    it('refuses a body that is not sent as JSON with 415 UNSUPPORTED_MEDIA_TYPE, signed with or without its payload', async () => {
      const text = JSON.stringify(spec.body(bob.pubkey))
      const url = ctx.main.api.url(spec.path)
      for (const type of ['text/plain', 'application/x-www-form-urlencoded', 'application/octet-stream'])
        for (const header of [authHeader(alice.secretKey, 'POST', url, text), authHeader(alice.secretKey, 'POST', url, undefined)]) {
          const res = await request(ctx.main.app).post(`/api/v1${spec.path}`).set('Authorization', header).set('Content-Type', type).send(text)
          expectError(res, 415, 'UNSUPPORTED_MEDIA_TYPE')
        }
      const latin1 = await request(ctx.main.app).post(`/api/v1${spec.path}`).set('Authorization', authHeader(alice.secretKey, 'POST', url, text)).set('Content-Type', 'application/json; charset=latin1').send(text)
      expectError(latin1, 415, 'UNSUPPORTED_MEDIA_TYPE')
      const utf8 = await request(ctx.main.app).post(`/api/v1${spec.path}`).set('Authorization', authHeader(alice.secretKey, 'POST', url, text)).set('Content-Type', 'application/json; charset=utf-8').send(text)
      expectStatus(utf8, 201)
    })

    it('refuses a body over the request limit with 413 PAYLOAD_TOO_LARGE', async () => {
      await refuse(spec.body(bob.pubkey, { [spec.artifact]: b64(120 * 1024) }), 413, 'PAYLOAD_TOO_LARGE', ctx.small)
    })

    it('refuses an artifact over MAILBOX_MAX_ARTIFACT_BYTES with 413 PAYLOAD_TOO_LARGE, accepting exactly the cap', async () => {
      const { message } = await refuse(spec.body(bob.pubkey, { [spec.artifact]: b64(1025) }), 413, 'PAYLOAD_TOO_LARGE', ctx.small)
      assert.match(message, new RegExp(spec.artifact))
      await refuse(spec.body(bob.pubkey, { [spec.artifact]: b64(1026) }), 413, 'PAYLOAD_TOO_LARGE', ctx.small)
      await deposit(alice, bob.pubkey, { [spec.artifact]: b64(1024) }, ctx.small)
      await deposit(alice, bob.pubkey, { [spec.artifact]: b64(1023) }, ctx.small)
    })

    it('bounds limit to 1..100', async () => {
      for (const limit of [0, 101, -1, 'ten', 1.5, '']) await refuseQuery({ recipient: bob.pubkey, limit })
      for (const limit of [1, 100]) expectStatus(await ctx.main.api.get(`${spec.path}${qs({ recipient: bob.pubkey, limit })}`, bob), 200)
    })

    it('refuses cursors it did not issue', async () => {
      const forged = (text: string) => Buffer.from(text).toString('base64url')
      for (const cursor of ['garbage', forged('s:-1'), forged('x:5'), forged('s:1e3'), forged(`s:${'9'.repeat(19)}`), 'A'.repeat(65), ''])
        await refuseQuery({ recipient: bob.pubkey, cursor })
    })

    it('refuses a missing or malformed recipient, unknown and repeated query parameters', async () => {
      await refuseQuery({})
      await refuseQuery({ recipient: 'npub1bad' })
      await refuseQuery({ recipient: bob.pubkey, colour: 'blue' })
      expectError(await ctx.main.api.get(`${spec.path}?recipient=${bob.pubkey}&recipient=${bob.pubkey}`, bob), 400, 'VALIDATION_FAILED')
    })

    it('refuses an ack of an id that is not a UUID, or with a body', async () => {
      expectError(await ctx.main.api.post(`${spec.path}/not-a-uuid/ack`, bob), 400, 'VALIDATION_FAILED')
      const { id } = await deposit(alice, bob.pubkey)
      expectError(await ctx.main.api.post(`${spec.path}/${id}/ack`, bob, { please: true }), 400, 'VALIDATION_FAILED')
      expectStatus(await ctx.main.api.post(`${spec.path}/${id}/ack`, bob, {}), 200)
    })

    it('requires NIP-98 on every route (401 AUTH_REQUIRED)', async () => {
      expectError(await ctx.main.api.post(spec.path, undefined, spec.body(bob.pubkey)), 401, 'AUTH_REQUIRED')
      expectError(await ctx.main.api.get(`${spec.path}${qs({ recipient: bob.pubkey })}`, undefined), 401, 'AUTH_REQUIRED')
      expectError(await ctx.main.api.post(`${spec.path}/00000000-0000-4000-8000-000000000000/ack`, undefined), 401, 'AUTH_REQUIRED')
    })
  })
}
