// Bad input fails at the call, naming the field, before anything is signed or sent.
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { npubEncode } from 'nostr-tools/nip19'
import { generateSecretKey, getPublicKey } from 'nostr-tools/pure'
import { createMailboxAdminClient, createMailboxClient, MailboxInputError } from './index.js'
import { json, startServer } from './testing/server.js'

const BASE = 'https://mailbox.example.com'
const RECIPIENT = getPublicKey(generateSecretKey())
const refusing: typeof fetch = async () => assert.fail('a request was sent')
const client = createMailboxClient({ baseUrl: BASE, signer: generateSecretKey(), fetch: refusing })
const admin = createMailboxAdminClient({ baseUrl: BASE, token: 'admin-token-0123456789abcdef', fetch: refusing })

/** Asserts `run` fails with a MailboxInputError on `field` (thrown or rejected). */
const refused = async (field: string, run: () => unknown): Promise<void> => {
  const check = (e: unknown) => {
    assert.ok(e instanceof MailboxInputError, `expected a MailboxInputError on ${field}, got ${String(e)}`)
    assert.equal(e.field, field)
    assert.ok(e.message.startsWith(`${field}: `), e.message)
    return true
  }
  try {
    await run()
  } catch (e) {
    check(e)
    return
  }
  assert.fail(`expected ${field} to be refused`)
}

describe('input checks', () => {
  it('refuses a recipient that is not a pubkey as hex or npub', async () => {
    for (const recipient of ['', 'a'.repeat(63), 'g'.repeat(64), `${RECIPIENT}0`, 'npub1xyz', npubEncode(RECIPIENT).slice(0, -1), 42])
      await refused('recipient', () => client.keyPackages.deposit({ recipient: recipient as string, content: 'AAAA' }))
  })

  it('refuses an artifact that is empty or not standard padded base64', async () => {
    for (const content of ['', 'AAA', 'AA=A', 'AA-_', 'AAAA\n', new Uint8Array(0), 7])
      await refused('content', () => client.keyPackages.deposit({ recipient: RECIPIENT, content: content as string }))
    await refused('welcome', () => client.welcomes.deposit({ recipient: RECIPIENT, groupId: 'g', welcome: 'not base64' }))
    await refused('ratchetTree', () => client.welcomes.deposit({ recipient: RECIPIENT, groupId: 'g', welcome: 'AAAA', ratchetTree: 'AAAAA' }))
    await refused('groupId', () => client.welcomes.deposit({ recipient: RECIPIENT, groupId: '', welcome: 'AAAA' }))
  })

  it('refuses tags that are not arrays of strings and a ttl that is not a positive integer', async () => {
    for (const tags of ['t', ['t'], [['t', 1]], { t: 'v' }]) await refused('tags', () => client.keyPackages.deposit({ recipient: RECIPIENT, content: 'AAAA', tags: tags as string[][] }))
    for (const ttlSeconds of [0, -1, 1.5, '60', Number.NaN]) await refused('ttlSeconds', () => client.keyPackages.deposit({ recipient: RECIPIENT, content: 'AAAA', ttlSeconds: ttlSeconds as number }))
  })

  it('refuses an item id that is not a UUID, a group id no URL can carry, and bad paging', async () => {
    for (const id of ['', '42', '../groups', `${'0'.repeat(8)}-0000-0000-0000-00000000000g`]) await refused('id', () => client.welcomes.ack(id))
    for (const id of ['', '.', '..']) await refused('groupId', () => client.groups.get(id))
    await refused('limit', () => client.keyPackages.list({ limit: 0 }))
    await refused('cursor', () => client.keyPackages.list({ cursor: '' }))
    await refused('since', () => client.dmHints.list({ since: -1 }))
    await refused('limit', () => admin.groups.list({ limit: 2.5 }))
    // drain checks its options at the call, not at the first next().
    assert.throws(() => client.keyPackages.drain({ limit: -3 }), MailboxInputError)
  })

  it('refuses a page larger than the API serves before any request, and sends the largest it serves', async () => {
    const server = await startServer((_req, _n, res) => json(res, 200, { ok: true, items: [] }))
    try {
      const user = createMailboxClient({ baseUrl: server.baseUrl, signer: generateSecretKey() })
      const admin = createMailboxAdminClient({ baseUrl: server.baseUrl, token: 'admin-token-0123456789abcdef' })
      for (const limit of [101, 1000]) {
        await refused('limit', () => user.keyPackages.list({ limit }))
        await refused('limit', () => user.welcomes.list({ limit }))
        await refused('limit', () => user.welcomes.drain({ limit }).next())
      }
      await refused('limit', () => user.dmHints.list({ limit: 501 }))
      await refused('limit', () => admin.groups.list({ limit: 501 }))
      assert.equal(server.requests.length, 0, 'no request was sent')

      await user.keyPackages.list({ limit: 100 })
      await user.welcomes.drain({ limit: 100 }).next()
      await user.dmHints.list({ limit: 500 })
      await admin.groups.list({ limit: 500 })
      const limits = server.requests.map(r => new URL(r.target, server.baseUrl).searchParams.get('limit'))
      assert.deepEqual(limits, ['100', '100', '500', '500'])
    } finally {
      await server.close()
    }
  })

  it('refuses bad admin metadata', async () => {
    await refused('groupId', () => admin.groups.upsert({ groupId: '' }))
    await refused('ownerPubkey', () => admin.groups.upsert({ groupId: 'g', ownerPubkey: 'alice' }))
    await refused('relays', () => admin.groups.upsert({ groupId: 'g', relays: 'wss://r' as unknown as string[] }))
  })

  it('refuses bad options at creation', async () => {
    for (const baseUrl of ['', 'mailbox.example.com', 'ftp://x', 'https://x/?q=1', 'https://x/#f'])
      await refused('baseUrl', () => createMailboxClient({ baseUrl, signer: generateSecretKey() }))
    await refused('retries', () => createMailboxClient({ baseUrl: BASE, signer: generateSecretKey(), retries: -1 }))
    await refused('timeoutMs', () => createMailboxClient({ baseUrl: BASE, signer: generateSecretKey(), timeoutMs: 0 }))
    await refused('token', () => createMailboxAdminClient({ baseUrl: BASE, token: '' }))
    await refused('token', () => createMailboxAdminClient({ baseUrl: BASE, token: 'two words' }))
    await refused('signer.pubkey', () => createMailboxClient({ baseUrl: BASE, signer: { pubkey: 'me', sign: async () => assert.fail() } }))
  })
})
