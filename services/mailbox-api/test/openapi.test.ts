// The OpenAPI document at /api/v1/openapi.json: valid OpenAPI 3.0 (checked structurally by
// openapi-check.ts), and true: every status it lists for every operation is provoked from the real API on
// a real PostgreSQL, and each answer's body is checked against the schema the document gives for that
// operation and status. An answer with an undocumented status, media type or shape fails.
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { after, before, describe, it } from 'node:test'
import postgres from 'pg'
import request from 'supertest'
import { encodeHint, encodePushEnvelope, hintAttributes, type Hint } from '@msr/hints'
import { migrate } from '../src/db/migrate.js'
import { b64, buildTestApp, freePort, newSigner, now, qs, startPostgres, type Signer, type TestApp, type TestPostgres } from './harness.js'
import { documentProblems, METHODS, valueProblems } from './openapi-check.js'

const ADMIN_TOKEN = 'admin-token-for-openapi-tests-0'
const METRICS_AUTH = 'metrics-key-for-openapi-tests-0'
const PUSH_TOKEN = 'push-token-for-openapi-tests-00'
const MAX_ARTIFACT_BYTES = 1024
const ENV = { ADMIN_TOKEN, METRICS_AUTH, HINTS_PUSH_TOKEN: PUSH_TOKEN, MAILBOX_MAX_ARTIFACT_BYTES: String(MAX_ARTIFACT_BYTES) }
const PUSH = '/internal/pubsub/push'

type Media = { schema: unknown }
type Answer = { content?: Record<string, Media>; headers?: Record<string, Media> }
type Doc = Record<string, unknown> & { paths: Record<string, Record<string, { responses: Record<string, Answer> }>> }
type Method = 'get' | 'post'

let pg: TestPostgres
/** Everything configured; its document is the one every answer is checked against. */
let app: TestApp
let doc: Doc
/** Rate limits of 1 a minute (429), a database it cannot reach (503), a database whose tables are gone (500). */
let limited: TestApp
let unreachable: TestApp
let broken: TestApp
let closedPool: postgres.Pool

before(async () => {
  pg = await startPostgres()
  app = await buildTestApp(pg.pool, ENV)
  doc = (await request(app.app).get('/api/v1/openapi.json')).body as Doc
  limited = await buildTestApp(pg.pool, { ...ENV, MAILBOX_RATE_LIMIT_PER_IP: '1', MAILBOX_RATE_LIMIT_PER_PUBKEY: '1' })
  closedPool = new postgres.Pool({ connectionString: `postgres://postgres:x@127.0.0.1:${await freePort()}/mailbox` })
  closedPool.on('error', () => undefined)
  unreachable = await buildTestApp(closedPool, ENV)
  const gone = await pg.freshDatabase()
  await migrate(gone.pool)
  await gone.pool.query('DROP TABLE mail_keypackages, mail_welcomes, groups, dm_hints, hints_seen')
  broken = await buildTestApp(gone.pool, ENV)
})

after(async () => {
  await closedPool?.end()
  await pg?.close()
})

// ---------------------------------------------------------------------------------------------
// Checking answers against the document

/** `method template status` of every answer checked. */
const exercised = new Set<string>()

/** The documented answer of `method template` with `status`, from `document`. */
const documented = (document: Doc, method: Method, template: string, status: number): Answer | undefined => document.paths[template]?.[method]?.responses[String(status)]

/** The problems of `res` as the answer of `method template` that `document` describes (none: it conforms). */
const answerProblems = (document: Doc, res: request.Response, method: Method, template: string): string[] => {
  const answer = documented(document, method, template, res.status)
  if (!answer) return [`status ${res.status} is not documented`]
  const media = (res.headers['content-type'] ?? '').split(';')[0]?.trim() ?? ''
  if (answer.content === undefined) return res.text ? [`a body, where none is documented: ${res.text.slice(0, 200)}`] : []
  const entry = answer.content[media]
  if (!entry) return [`media type ${media || 'none'}, where the document has ${Object.keys(answer.content).join(', ')}`]
  const body: unknown = media === 'application/json' ? JSON.parse(res.text) : res.text
  const problems = valueProblems(entry.schema, body, document)
  for (const [name, header] of Object.entries(answer.headers ?? {})) {
    const value = res.headers[name.toLowerCase()]
    if (typeof value === 'string') problems.push(...valueProblems(header.schema, /^\d+$/.test(value) ? Number(value) : value, document, `header ${name}`))
  }
  return problems
}

/** Asserts `res` has `status` and is what the document says `method template` answers with it; records it as exercised. */
const conforms = (res: request.Response, method: Method, template: string, status: number): request.Response => {
  const what = `${method.toUpperCase()} ${template} ${res.status}`
  assert.equal(res.status, status, `${what}, expected ${status}: ${res.text?.slice(0, 500)}`)
  const problems = answerProblems(doc, res, method, template)
  assert.deepEqual(problems, [], `${what} does not match the document:\n  ${problems.join('\n  ')}\n${res.text?.slice(0, 1000)}`)
  exercised.add(`${method} ${template} ${status}`)
  return res
}

// ---------------------------------------------------------------------------------------------
// Requests

const hex32 = () => randomBytes(32).toString('hex')

/** An admin request (token: ADMIN_TOKEN unless null: none). */
const admin = (target: TestApp, method: Method, path: string, body?: unknown, token: string | null = ADMIN_TOKEN) => {
  const req = method === 'get' ? request(target.app).get(`/api/v1${path}`) : request(target.app).post(`/api/v1${path}`)
  if (token !== null) void req.set('Authorization', `Bearer ${token}`)
  return body === undefined ? req : req.set('Content-Type', 'application/json').send(JSON.stringify(body))
}

/** POSTs `hint` (or raw message data) as Pub/Sub would, with the push token unless `auth` says otherwise. */
const push = (target: TestApp, hint: Hint | Buffer, auth: string | null = `Bearer ${PUSH_TOKEN}`) => {
  const envelope = encodePushEnvelope({
    data: Buffer.isBuffer(hint) ? hint : encodeHint(hint),
    attributes: Buffer.isBuffer(hint) ? {} : hintAttributes(hint),
    messageId: String(Math.floor(Math.random() * 1e15)),
    subscription: 'projects/msr-test/subscriptions/mailbox-push',
  })
  const req = request(target.app).post(PUSH).set('Content-Type', 'application/json')
  return (auth === null ? req : req.set('Authorization', auth)).send(JSON.stringify(envelope))
}

const groupHint = (group: string, epoch: number): Hint => ({ v: 1, id: hex32(), kind: 445, pubkey: hex32(), created_at: now(), group, epoch })
const dmHint = (sender: Signer, recipient: Signer): Hint => ({ v: 1, id: hex32(), kind: 446, pubkey: sender.pubkey, created_at: now(), recipients: [recipient.pubkey] })

/** The two mailboxes: a deposit with every optional field and one with none. */
const KINDS = [
  {
    path: '/keypackages',
    artifact: 'content_b64',
    deposits: (to: Signer) => [
      { recipient: to.npub, content_b64: b64(32), tags: [['mls_protocol_version', '1.0']], ttl_seconds: 3600 },
      { recipient: to.pubkey, content_b64: b64(32) },
    ],
  },
  {
    path: '/welcome',
    artifact: 'welcome_b64',
    deposits: (to: Signer) => [
      { recipient: to.npub, group_id: 'book-club', welcome_b64: b64(32), ratchet_tree_b64: b64(48), ttl_seconds: 3600 },
      { recipient: to.pubkey, group_id: 'book-club', welcome_b64: b64(32) },
    ],
  },
] as const

/** One request per /api/v1 operation that would reach its handler, made as `signer` (or the admin). */
const OPERATIONS: { method: Method; template: string; send: (target: TestApp, signer: Signer) => request.Test }[] = [
  ...KINDS.flatMap(kind => [
    { method: 'post' as const, template: kind.path, send: (t: TestApp, s: Signer) => t.api.post(kind.path, s, kind.deposits(newSigner())[1]) },
    { method: 'get' as const, template: kind.path, send: (t: TestApp, s: Signer) => t.api.get(`${kind.path}${qs({ recipient: s.pubkey })}`, s) },
    { method: 'post' as const, template: `${kind.path}/{id}/ack`, send: (t: TestApp, s: Signer) => t.api.post(`${kind.path}/00000000-0000-4000-8000-000000000000/ack`, s) },
  ]),
  { method: 'get', template: '/groups', send: t => admin(t, 'get', '/groups') },
  { method: 'post', template: '/groups', send: t => admin(t, 'post', '/groups', { group_id: `g-${hex32()}` }) },
  { method: 'get', template: '/groups/{id}', send: (t, s) => t.api.get('/groups/some-group', s) },
  { method: 'get', template: '/dm-hints', send: (t, s) => t.api.get(`/dm-hints${qs({ recipient: s.pubkey })}`, s) },
]

/** The concrete path of an OPERATIONS entry (for unsigned requests). */
const concrete = (template: string) => `/api/v1${template.replace('{id}', '00000000-0000-4000-8000-000000000000')}`

// ---------------------------------------------------------------------------------------------

describe('the OpenAPI document', () => {
  it('is a valid OpenAPI 3.0 document: every operation answers, every $ref resolves, every schema and example is valid', () => {
    assert.deepEqual(documentProblems(doc), [])
  })

  it('lists every route: /api/v1, the hint push route, health, readiness, metrics and itself', () => {
    assert.deepEqual(Object.keys(doc.paths).sort(), [
      '/dm-hints',
      '/groups',
      '/groups/{id}',
      '/healthz',
      '/internal/pubsub/push',
      '/keypackages',
      '/keypackages/{id}/ack',
      '/metrics',
      '/openapi.json',
      '/readyz',
      '/welcome',
      '/welcome/{id}/ack',
    ])
  })

  it('types every answer with a body, and types errors by their codes', () => {
    for (const [template, item] of Object.entries(doc.paths))
      for (const method of METHODS.filter(m => item[m] !== undefined))
        for (const [status, answer] of Object.entries(item[method]?.responses ?? {})) {
          if (status === '204') continue
          const content = Object.values(answer.content ?? {})
          assert.ok(content.length > 0, `${method} ${template} ${status} has no content`)
          for (const { schema } of content) assert.ok(schema && JSON.stringify(schema) !== '{}' && !/"additionalProperties":true/.test(JSON.stringify(schema)), `${method} ${template} ${status}: an untyped schema`)
          if (/^[45]/.test(status) && answer.content?.['application/json'])
            assert.match(JSON.stringify(answer.content['application/json'].schema), /"enum":\[|Error"/, `${method} ${template} ${status}: error codes not listed`)
        }
  })
})

describe('every answer is the one the document describes', () => {
  for (const kind of KINDS) {
    const ack = `${kind.path}/{id}/ack`
    it(`${kind.path}: deposits, pages, acks and their refusals`, async () => {
      const [alice, bob] = [newSigner(), newSigner()]
      const [full, bare] = kind.deposits(bob)
      const ids: string[] = []
      for (const body of [full, bare]) ids.push(conforms(await app.api.post(kind.path, alice, body), 'post', kind.path, 201).body.id)
      const first = conforms(await app.api.get(`${kind.path}${qs({ recipient: bob.pubkey, limit: 1 })}`, bob), 'get', kind.path, 200)
      assert.ok(first.body.next_cursor, 'a next page')
      const last = conforms(await app.api.get(`${kind.path}${qs({ recipient: bob.npub, cursor: first.body.next_cursor })}`, bob), 'get', kind.path, 200)
      assert.deepEqual([...first.body.items, ...last.body.items].map((i: { id: string }) => i.id), ids)
      assert.equal(last.body.next_cursor, undefined)
      conforms(await app.api.post(`${kind.path}/${ids[0]}/ack`, bob), 'post', ack, 200)
      conforms(await app.api.post(`${kind.path}/${ids[0]}/ack`, bob), 'post', ack, 404)

      conforms(await app.api.post(kind.path, alice, { ...full, unknown: 1 }), 'post', kind.path, 400)
      conforms(await app.api.post(kind.path, alice, { ...full, ttl_seconds: 10 ** 9 }), 'post', kind.path, 400)
      conforms(await app.api.post(kind.path, alice, { ...full, sender: bob.pubkey }), 'post', kind.path, 403)
      conforms(await app.api.post(kind.path, alice, { ...full, [kind.artifact]: b64(MAX_ARTIFACT_BYTES + 1) }), 'post', kind.path, 413)
      conforms(await app.api.post(kind.path, undefined, full), 'post', kind.path, 401)
      conforms(await app.api.post(kind.path, alice, full, { method: 'GET' }), 'post', kind.path, 401)
      conforms(await app.api.get(`${kind.path}${qs({ recipient: bob.pubkey })}`, alice), 'get', kind.path, 403)
      conforms(await app.api.get(`${kind.path}${qs({ recipient: bob.pubkey, limit: 1000 })}`, bob), 'get', kind.path, 400)
      conforms(await app.api.get(`${kind.path}${qs({ recipient: bob.pubkey, cursor: 'bm90LW91cnM' })}`, bob), 'get', kind.path, 400)
      conforms(await app.api.get(`${kind.path}${qs({ recipient: bob.pubkey })}`, undefined), 'get', kind.path, 401)
      conforms(await app.api.post(`${kind.path}/42/ack`, bob), 'post', ack, 400)
      conforms(await app.api.post(`${kind.path}/${ids[1]}/ack`, bob, { please: true }), 'post', ack, 400)
      conforms(await app.api.post(`${kind.path}/${ids[1]}/ack`, undefined), 'post', ack, 401)
    })
  }

  it('/groups and /groups/{id}: upserts, pages, one group, and their refusals', async () => {
    const [named, bare] = [`book-club-${hex32()}`, `bare-${hex32()}`]
    const owner = newSigner()
    const upserted = conforms(
      await admin(app, 'post', '/groups', { group_id: named, display_name: 'Book club', avatar_url: 'https://img.example/a.png', owner_pubkey: owner.npub, relays: ['wss://relay.example'] }),
      'post',
      '/groups',
      200,
    )
    assert.equal(upserted.body.group.owner_pubkey, owner.pubkey)
    conforms(await admin(app, 'post', '/groups', { group_id: bare }), 'post', '/groups', 200)
    conforms(await push(app, groupHint(named, 7)), 'post', PUSH, 204)
    const got = conforms(await app.api.get(`/groups/${named}`, newSigner()), 'get', '/groups/{id}', 200)
    assert.equal(got.body.group.last_epoch, 7)
    const first = conforms(await admin(app, 'get', `/groups${qs({ limit: 1 })}`), 'get', '/groups', 200)
    assert.ok(first.body.next_cursor, 'a next page')
    conforms(await admin(app, 'get', `/groups${qs({ cursor: first.body.next_cursor })}`), 'get', '/groups', 200)

    conforms(await app.api.get(`/groups/absent-${hex32()}`, newSigner()), 'get', '/groups/{id}', 404)
    conforms(await app.api.get(`/groups/${'g'.repeat(257)}`, newSigner()), 'get', '/groups/{id}', 400)
    conforms(await app.api.get(`/groups/${named}`, undefined), 'get', '/groups/{id}', 401)
    conforms(await admin(app, 'get', `/groups${qs({ limit: 0 })}`), 'get', '/groups', 400)
    conforms(await admin(app, 'get', '/groups', undefined, null), 'get', '/groups', 401)
    conforms(await admin(app, 'post', '/groups', { group_id: '' }), 'post', '/groups', 400)
    conforms(await admin(app, 'post', '/groups', { group_id: bare }, 'not-the-admin-token'), 'post', '/groups', 401)
  })

  it('/dm-hints: pages of hints, and its refusals', async () => {
    const [sender, bob] = [newSigner(), newSigner()]
    for (let i = 0; i < 2; i++) conforms(await push(app, dmHint(sender, bob)), 'post', PUSH, 204)
    const first = conforms(await app.api.get(`/dm-hints${qs({ recipient: bob.npub, limit: 1 })}`, bob), 'get', '/dm-hints', 200)
    assert.equal(first.body.items[0].sender, sender.pubkey)
    assert.ok(first.body.next_cursor, 'a next page')
    conforms(await app.api.get(`/dm-hints${qs({ recipient: bob.pubkey, since: 0, cursor: first.body.next_cursor })}`, bob), 'get', '/dm-hints', 200)

    conforms(await app.api.get(`/dm-hints${qs({ recipient: bob.pubkey })}`, sender), 'get', '/dm-hints', 403)
    conforms(await app.api.get(`/dm-hints${qs({ recipient: bob.pubkey, since: -1 })}`, bob), 'get', '/dm-hints', 400)
    conforms(await app.api.get(`/dm-hints${qs({ recipient: bob.pubkey })}`, undefined), 'get', '/dm-hints', 401)
  })

  it('/internal/pubsub/push: applied and malformed hints, and its refusals', async () => {
    conforms(await push(app, Buffer.from('not a hint')), 'post', PUSH, 204)
    conforms(await push(app, dmHint(newSigner(), newSigner()), null), 'post', PUSH, 401)
    conforms(await push(app, dmHint(newSigner(), newSigner()), 'Bearer not-the-push-token'), 'post', PUSH, 401)
    const huge = request(app.app).post(PUSH).set('Authorization', `Bearer ${PUSH_TOKEN}`).set('Content-Type', 'application/json')
    conforms(await huge.send(JSON.stringify({ message: { data: 'A'.repeat(1100 * 1024) } })), 'post', PUSH, 413)
    const compressed = request(app.app).post(PUSH).set('Authorization', `Bearer ${PUSH_TOKEN}`).set('Content-Type', 'application/json').set('Content-Encoding', 'compress')
    conforms(await compressed.send('{}'), 'post', PUSH, 415)
    // A body claiming gzip that is not: still one of the route's answers (415), not a 400 Pub/Sub would redeliver forever.
    const corrupt = request(app.app).post(PUSH).set('Authorization', `Bearer ${PUSH_TOKEN}`).set('Content-Type', 'application/json').set('Content-Encoding', 'gzip')
    conforms(await corrupt.send('not gzip at all'), 'post', PUSH, 415)
  })

  it('/healthz, /readyz, /metrics and /api/v1/openapi.json', async () => {
    conforms(await request(app.app).get('/healthz'), 'get', '/healthz', 200)
    conforms(await request(app.app).get('/readyz'), 'get', '/readyz', 200)
    conforms(await request(unreachable.app).get('/readyz'), 'get', '/readyz', 503)
    conforms(await request(app.app).get('/metrics').set('Authorization', `Bearer ${METRICS_AUTH}`), 'get', '/metrics', 200)
    conforms(await request(app.app).get(`/metrics${qs({ auth: METRICS_AUTH })}`), 'get', '/metrics', 200)
    conforms(await request(app.app).get('/metrics'), 'get', '/metrics', 404)
    conforms(await request(app.app).get('/metrics').set('Authorization', 'Bearer not-the-metrics-key'), 'get', '/metrics', 404)
    conforms(await request(app.app).get('/api/v1/openapi.json'), 'get', '/openapi.json', 200)
  })

  it('what any /api/v1 route may answer: 413, 415, 429, 500 and 503', async () => {
    const oversized = JSON.stringify({ padding: 'x'.repeat(100 * 1024) })
    for (const op of OPERATIONS) {
      const path = concrete(op.template)
      const call = (req: request.Test) => req.set('Content-Type', 'application/json').send(oversized)
      conforms(await call(op.method === 'get' ? request(app.app).get(path) : request(app.app).post(path)), op.method, op.template, 413)
      const typed = op.method === 'get' ? request(app.app).get(path) : request(app.app).post(path)
      conforms(await typed.set('Content-Type', 'text/plain').send('hello'), op.method, op.template, 415)
      const signer = newSigner()
      await op.send(limited, signer)
      conforms(await op.send(limited, signer), op.method, op.template, 429)
      conforms(await op.send(broken, newSigner()), op.method, op.template, 500)
      conforms(await op.send(unreachable, newSigner()), op.method, op.template, 503)
    }
    await push(limited, dmHint(newSigner(), newSigner()), 'Bearer not-the-push-token')
    conforms(await push(limited, dmHint(newSigner(), newSigner()), 'Bearer not-the-push-token'), 'post', PUSH, 429)
    conforms(await push(broken, dmHint(newSigner(), newSigner())), 'post', PUSH, 500)
    conforms(await push(unreachable, dmHint(newSigner(), newSigner())), 'post', PUSH, 503)
  })

  it('an unknown route answers the document’s Error', async () => {
    const res = await request(app.app).get('/api/v1/nothing-here')
    assert.equal(res.status, 404)
    assert.deepEqual(valueProblems({ $ref: '#/components/schemas/Error' }, res.body, doc), [])
  })

  it('every status the document lists for every operation was provoked and checked above', () => {
    const listed = Object.entries(doc.paths).flatMap(([template, item]) =>
      METHODS.filter(m => item[m] !== undefined).flatMap(m => Object.keys(item[m]?.responses ?? {}).map(status => `${m} ${template} ${status}`)),
    )
    assert.deepEqual(
      listed.filter(answer => !exercised.has(answer)),
      [],
      'documented but never provoked',
    )
  })
})

describe('the checkers', () => {
  it('refuse a document that is not valid OpenAPI 3.0', () => {
    type Loose = Record<string, Record<string, Record<string, Record<string, unknown>>>>
    const breakings: [string, (d: Loose) => void][] = [
      ['dangling $ref', d => void (d.components!.schemas!.GroupPage!.properties = { items: { $ref: '#/components/schemas/Nothing' } })],
      ['JSON Schema keyword OpenAPI 3.0 lacks', d => void (d.components!.schemas!.Group!.const = 1)],
      ['type array', d => void (d.components!.schemas!.DmHint!.type = ['object', 'null'])],
      ['example off its schema', d => void (d.components!.schemas!.Deposited!.example = { ok: false })],
      ['required name never present', d => void (d.components!.schemas!.Acknowledged!.required = ['ok', 'nope'])],
      ['operation without responses', d => void (d.paths!['/healthz']!.get = { summary: 'x', responses: {} })],
      ['unknown security scheme', d => void (d.paths!['/metrics']!.get = { ...d.paths!['/metrics']!.get, security: [{ nobody: [] }] })],
      ['undeclared path parameter', d => void (d.paths!['/groups/{id}']!.get = { ...d.paths!['/groups/{id}']!.get, parameters: [] })],
    ]
    for (const [what, breakIt] of breakings) {
      const copy = structuredClone(doc) as unknown as Loose
      breakIt(copy)
      assert.ok(documentProblems(copy).length > 0, `not refused: ${what}`)
    }
  })


  it('refuse a real answer once its schema in the document is broken', async () => {
    const bob = newSigner()
    const deposited = await app.api.post('/keypackages', newSigner(), KINDS[0].deposits(bob)[0])
    const page = await app.api.get(`/keypackages${qs({ recipient: bob.pubkey })}`, bob)
    assert.deepEqual(answerProblems(doc, page, 'get', '/keypackages'), [])
    const breakings: ((d: Doc & { components: { schemas: Record<string, { properties: Record<string, Record<string, unknown>>; required: string[] }> } }) => void)[] = [
      d => void delete d.components.schemas.KeyPackageItem?.properties.tags,
      d => void (d.components.schemas.KeyPackageItem!.properties.created_at!.type = 'string'),
      d => void d.components.schemas.KeyPackageItem!.required.push('ratchet_tree_b64'),
      d => void (d.components.schemas.KeyPackagePage!.properties.items!.maxItems = 0),
      d => void (d.components.schemas.Deposited!.properties.ok!.enum = [false]),
    ]
    for (const breakIt of breakings) {
      const copy = structuredClone(doc) as Parameters<typeof breakIt>[0]
      breakIt(copy)
      const problems = [...answerProblems(copy, page, 'get', '/keypackages'), ...answerProblems(copy, deposited, 'post', '/keypackages')]
      assert.ok(problems.length > 0, `a broken schema passed: ${breakIt.toString()}`)
    }
    assert.deepEqual(answerProblems(doc, { ...page, status: 418 } as request.Response, 'get', '/keypackages'), ['status 418 is not documented'])
  })
})
