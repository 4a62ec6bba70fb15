// The NIP-98 header the client builds passes the mailbox API's own check (libs/nostr's checkHttpAuth)
// for the request it actually sent; application signers are used as they are and checked.
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { after, before, describe, it } from 'node:test'
import { checkHttpAuth } from '@msr/nostr'
import { npubEncode, nsecEncode } from 'nostr-tools/nip19'
import { finalizeEvent, generateSecretKey, getPublicKey } from 'nostr-tools/pure'
import { createMailboxClient, MailboxInputError, type EventSigner } from './index.js'
import { acceptedAuth, json, startServer, type TestServer } from './testing/server.js'

const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex')
const tag = (event: { tags: string[][] }, name: string) => event.tags.find(t => t[0] === name)?.[1]

let server: TestServer

before(async () => {
  server = await startServer((req, _n, res) => {
    if (req.method === 'POST') return json(res, 201, { ok: true, id: '00000000-0000-4000-8000-000000000000' })
    if (req.target.startsWith('/api/v1/groups/') || req.target.startsWith('/mailbox/api/v1/groups/'))
      return json(res, 200, { ok: true, group: { group_id: 'g', display_name: null, avatar_url: null, owner_pubkey: null, last_epoch: null, last_event_ts: null, message_count: 0, relays: [], created_at: 1, updated_at: 1 } })
    json(res, 200, { ok: true, items: [] })
  })
})

after(async () => {
  await server?.close()
})

const last = () => server.requests[server.requests.length - 1] ?? assert.fail('no request reached the server')

describe('the NIP-98 header of a request', () => {
  it('passes the server’s check for a GET with a query string: u is the URL as sent, method GET, no payload tag', async () => {
    const sk = generateSecretKey()
    const client = createMailboxClient({ baseUrl: server.baseUrl, signer: sk })
    await client.keyPackages.list({ limit: 5, cursor: 'czoxMg' })
    const req = last()
    assert.equal(req.method, 'GET')
    assert.equal(req.target, `/api/v1/keypackages?recipient=${getPublicKey(sk)}&limit=5&cursor=czoxMg`)
    const event = acceptedAuth(req, server.baseUrl)
    assert.equal(event.kind, 27235)
    assert.equal(event.pubkey, getPublicKey(sk))
    assert.equal(tag(event, 'u'), server.baseUrl + req.target)
    assert.equal(tag(event, 'method'), 'GET')
    assert.equal(tag(event, 'payload'), undefined)
    assert.ok(Math.abs(event.created_at - Date.now() / 1000) < 5)
  })

  it('passes for a POST with a body: payload is the sha256 of the exact bytes sent, UTF-8 beyond ASCII included', async () => {
    const client = createMailboxClient({ baseUrl: server.baseUrl, signer: generateSecretKey() })
    const groupId = 'café ☕ 群 \u{1F600}'
    assert.deepEqual(await client.welcomes.deposit({ recipient: getPublicKey(generateSecretKey()), groupId, welcome: new Uint8Array([1, 2, 3]) }), {
      id: '00000000-0000-4000-8000-000000000000',
    })
    const req = last()
    assert.equal(req.headers['content-type'], 'application/json')
    assert.equal(JSON.parse(req.body.toString('utf8')).group_id, groupId)
    const event = acceptedAuth(req, server.baseUrl)
    assert.equal(tag(event, 'method'), 'POST')
    assert.equal(tag(event, 'payload'), sha256(req.body))
  })

  it('is refused by that check for another URL, method or body (the check is not vacuous)', async () => {
    const client = createMailboxClient({ baseUrl: server.baseUrl, signer: generateSecretKey() })
    await client.keyPackages.deposit({ recipient: getPublicKey(generateSecretKey()), content: 'AAEC' })
    const req = last()
    const now = Math.floor(Date.now() / 1000)
    const check = (over: Partial<{ url: string; method: string; body: Buffer }>) =>
      checkHttpAuth(req.headers.authorization, { url: server.baseUrl + req.target, method: req.method, body: req.body, now, ...over })
    assert.equal(check({}).ok, true)
    assert.equal(check({ url: `${server.baseUrl}${req.target}?x=1` }).failure, 'url')
    assert.equal(check({ method: 'PUT' }).failure, 'method')
    assert.equal(check({ body: Buffer.concat([req.body, Buffer.from(' ')]) }).failure, 'payload')
  })

  it('signs an acknowledgement (a POST without a body) with no payload tag and sends no body', async () => {
    const client = createMailboxClient({ baseUrl: server.baseUrl, signer: generateSecretKey() })
    assert.equal(await client.welcomes.ack('0f8fad5b-d9cb-469f-a165-70867728950e'), true)
    const req = last()
    assert.equal(req.target, '/api/v1/welcome/0f8fad5b-d9cb-469f-a165-70867728950e/ack')
    assert.equal(req.body.length, 0)
    assert.equal(req.headers['content-type'], undefined)
    assert.equal(tag(acceptedAuth(req, server.baseUrl), 'payload'), undefined)
  })

  it('builds every URL from baseUrl as the server does: trailing slashes dropped, a path prefix kept', async () => {
    const sk = generateSecretKey()
    await createMailboxClient({ baseUrl: `${server.baseUrl}//`, signer: sk }).dmHints.list({ since: 0 })
    assert.equal(tag(acceptedAuth(last(), server.baseUrl), 'u'), `${server.baseUrl}/api/v1/dm-hints?recipient=${getPublicKey(sk)}&since=0`)
    await createMailboxClient({ baseUrl: `${server.baseUrl}/mailbox`, signer: sk }).groups.get('g')
    assert.equal(last().target, '/mailbox/api/v1/groups/g')
    assert.equal(tag(acceptedAuth(last(), server.baseUrl), 'u'), `${server.baseUrl}/mailbox/api/v1/groups/g`)
  })

  it('sends a group id as one path segment and signs exactly that URL', async () => {
    const client = createMailboxClient({ baseUrl: server.baseUrl, signer: generateSecretKey() })
    await client.groups.get('a/b c?d#e%é')
    assert.equal(last().target, '/api/v1/groups/a%2Fb%20c%3Fd%23e%25%C3%A9')
    acceptedAuth(last(), server.baseUrl)
  })
})

describe('signers', () => {
  it('takes a secret key as 32 bytes, 64 hex characters (any case) or nsec, all the same identity', async () => {
    const sk = generateSecretKey()
    const hex = Buffer.from(sk).toString('hex')
    for (const signer of [sk, hex, hex.toUpperCase(), nsecEncode(sk)]) {
      const client = createMailboxClient({ baseUrl: server.baseUrl, signer })
      assert.equal(await client.pubkey(), getPublicKey(sk))
      await client.keyPackages.list()
      assert.equal(acceptedAuth(last(), server.baseUrl).pubkey, getPublicKey(sk))
    }
  })

  it('refuses what is not a secret key at creation, naming the option', () => {
    const npub = npubEncode(getPublicKey(generateSecretKey()))
    for (const signer of [new Uint8Array(31), new Uint8Array(32), 'zz'.repeat(32), 'a'.repeat(63), 'nsec1invalid', npub, {} as EventSigner, null as unknown as EventSigner]) {
      assert.throws(() => createMailboxClient({ baseUrl: server.baseUrl, signer }), (e: unknown) => e instanceof MailboxInputError && e.field === 'signer', String(signer))
    }
  })

  it('uses an application signer; getPublicKey is asked once; fields a signer adds are not sent', async () => {
    const sk = generateSecretKey()
    let asked = 0
    const signer: EventSigner = {
      getPublicKey: async () => (asked++, getPublicKey(sk)),
      sign: async template => ({ ...finalizeEvent(template, sk), relay: 'wss://signer.example' }) as never,
    }
    const client = createMailboxClient({ baseUrl: server.baseUrl, signer })
    await client.keyPackages.list()
    await client.welcomes.list()
    assert.equal(asked, 1)
    const event = acceptedAuth(last(), server.baseUrl)
    assert.deepEqual(Object.keys(event).sort(), ['content', 'created_at', 'id', 'kind', 'pubkey', 'sig', 'tags'])
  })

  it('refuses a signer that signs as someone else or changes the event, before sending', async () => {
    const [sk, other] = [generateSecretKey(), generateSecretKey()]
    const before = server.requests.length
    const impostor = createMailboxClient({ baseUrl: server.baseUrl, signer: { pubkey: getPublicKey(sk), sign: async t => finalizeEvent(t, other) } })
    await assert.rejects(impostor.keyPackages.list(), (e: unknown) => e instanceof MailboxInputError && /another pubkey/.test(e.message))
    const editor = createMailboxClient({ baseUrl: server.baseUrl, signer: { pubkey: getPublicKey(sk), sign: async t => finalizeEvent({ ...t, content: 'x' }, sk) } })
    await assert.rejects(editor.keyPackages.deposit({ recipient: getPublicKey(other), content: 'AAAA' }), (e: unknown) => e instanceof MailboxInputError && e.field === 'signer')
    assert.equal(server.requests.length, before)
  })

  it('deposits without knowing its pubkey, but needs it (pubkey or getPublicKey) to read a mailbox', async () => {
    const sk = generateSecretKey()
    const client = createMailboxClient({ baseUrl: server.baseUrl, signer: { sign: async t => finalizeEvent(t, sk) } })
    await client.keyPackages.deposit({ recipient: getPublicKey(generateSecretKey()), content: 'AAAA' })
    assert.equal(acceptedAuth(last(), server.baseUrl).pubkey, getPublicKey(sk))
    await assert.rejects(client.keyPackages.list(), (e: unknown) => e instanceof MailboxInputError && e.field === 'signer')
  })
})
