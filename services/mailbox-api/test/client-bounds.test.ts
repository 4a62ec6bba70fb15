// @msr/mailbox-client's page sizes (its input.ts MAX_PAGE_SIZE, mirrored: the library imports no service)
// against the API's own (routes/schemas.ts PAGE_SIZES): for each listing the largest page the server
// serves is sent and answered, and one more is refused by the client before any request, as the server
// refuses it. Either side changing alone fails here.
import assert from 'node:assert/strict'
import { createServer, type RequestListener, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { after, before, describe, it } from 'node:test'
import request from 'supertest'
import { createMailboxAdminClient, createMailboxClient, MailboxInputError } from '@msr/mailbox-client'
import { PAGE_SIZES } from '../src/routes/schemas.js'
import { buildTestApp, expectError, newSigner, qs, startPostgres, type TestApp, type TestPostgres } from './harness.js'

const ADMIN_TOKEN = 'admin-token-for-bounds-tests-0123'

let pg: TestPostgres
let server: Server
let baseUrl: string
let api: TestApp

before(async () => {
  pg = await startPostgres()
  let handler: RequestListener = (_req, res) => void res.writeHead(503).end()
  server = createServer((req, res) => handler(req, res))
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  api = await buildTestApp(pg.pool, { PUBLIC_URL: baseUrl, ADMIN_TOKEN })
  handler = api.app
})

after(async () => {
  server?.closeAllConnections()
  await new Promise(resolve => server?.close(resolve))
  await pg?.close()
})

/** A fetch that counts the requests it lets through. */
const counting = () => {
  let sent = 0
  const wrapped: typeof fetch = (input, init) => {
    sent++
    return fetch(input, init)
  }
  return { fetch: wrapped, sent: () => sent }
}

const signer = newSigner()
const user = (fetch: typeof globalThis.fetch) => createMailboxClient({ baseUrl, signer: signer.secretKey, fetch })

/** Each listing: its page sizes on the server, a call through the client, and the same query sent raw. */
const LISTINGS = [
  { name: 'keyPackages.list', size: PAGE_SIZES.mailbox, call: (f: typeof fetch, limit: number) => user(f).keyPackages.list({ limit }), path: '/keypackages' },
  { name: 'welcomes.list', size: PAGE_SIZES.mailbox, call: (f: typeof fetch, limit: number) => user(f).welcomes.list({ limit }), path: '/welcome' },
  { name: 'welcomes.drain', size: PAGE_SIZES.mailbox, call: async (f: typeof fetch, limit: number) => user(f).welcomes.drain({ limit }).next(), path: '/welcome' },
  { name: 'dmHints.list', size: PAGE_SIZES.dmHints, call: (f: typeof fetch, limit: number) => user(f).dmHints.list({ limit }), path: '/dm-hints' },
  {
    name: 'admin groups.list',
    size: PAGE_SIZES.groups,
    call: (f: typeof fetch, limit: number) => createMailboxAdminClient({ baseUrl, token: ADMIN_TOKEN, fetch: f }).groups.list({ limit }),
    path: '/groups',
  },
]

/** The server's answer to `path` with `limit`, sent without the client. */
const raw = (path: string, limit: number) =>
  path === '/groups'
    ? request(api.app).get(`/api/v1/groups${qs({ limit })}`).set('Authorization', `Bearer ${ADMIN_TOKEN}`)
    : api.api.get(`${path}${qs({ recipient: signer.pubkey, limit })}`, signer)

describe('the client refuses the page sizes the API refuses, and only those', () => {
  for (const { name, size, call, path } of LISTINGS)
    it(`${name}: limit ${size.max} is sent and served; ${size.max + 1} is refused before any request, as the server refuses it`, async () => {
      const counter = counting()
      await call(counter.fetch, size.max)
      assert.equal(counter.sent(), 1)
      await assert.rejects(call(counter.fetch, size.max + 1), (e: unknown) => e instanceof MailboxInputError && e.field === 'limit')
      assert.equal(counter.sent(), 1, 'no request for the refused limit')
      expectError(await raw(path, size.max + 1), 400, 'VALIDATION_FAILED')
    })
})
