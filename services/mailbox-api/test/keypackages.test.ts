// The KeyPackage mailbox over HTTP on a real PostgreSQL: the shared mailbox behaviour, then tags.
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { b64, expectError, expectStatus, newSigner, qs } from './harness.js'
import { describeMailbox, useMailboxContext, type MailboxSpec } from './mailbox-suite.js'

const KEYPACKAGES: MailboxSpec = {
  path: '/keypackages',
  table: 'mail_keypackages',
  kind: 'keypackage',
  artifact: 'content_b64',
  body: (recipient, extra = {}) => ({ recipient, content_b64: b64(300), ...extra }),
}

const ctx = useMailboxContext()
describeMailbox(KEYPACKAGES, ctx)

describe('/keypackages: tags', () => {
  it('keeps opaque string tags with the item and answers them on pickup', async () => {
    const [alice, bob] = [newSigner(), newSigner()]
    const tags = [['mls_protocol_version', '1.0'], ['ciphersuite', '0x0001'], ['relays', 'wss://a.example', 'wss://b.example'], []]
    expectStatus(await ctx.main.api.post('/keypackages', alice, KEYPACKAGES.body(bob.pubkey, { tags })), 201)
    expectStatus(await ctx.main.api.post('/keypackages', alice, KEYPACKAGES.body(bob.pubkey)), 201)
    const res = await ctx.main.api.get(`/keypackages${qs({ recipient: bob.pubkey })}`, bob)
    expectStatus(res, 200)
    assert.deepEqual(res.body.items[0].tags, tags)
    assert.equal(res.body.items[1].tags, undefined, 'no tags sent, none answered')
  })

  it('refuses tags that are not arrays of strings, or too many or too long', async () => {
    const [alice, bob] = [newSigner(), newSigner()]
    const refuse = async (tags: unknown) =>
      expectError(await ctx.main.api.post('/keypackages', alice, KEYPACKAGES.body(bob.pubkey, { tags })), 400, 'VALIDATION_FAILED')
    await refuse('ciphersuite')
    await refuse(['ciphersuite'])
    await refuse([['n', 1]])
    await refuse([['n', null]])
    await refuse({ n: 'v' })
    await refuse(Array.from({ length: 65 }, () => ['t']))
    await refuse([Array.from({ length: 17 }, () => 'v')])
    await refuse([['t', 'x'.repeat(1025)]])
  })
})
