// The Welcome mailbox over HTTP on a real PostgreSQL: the shared mailbox behaviour, then group_id and the ratchet tree.
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { b64, expectError, expectStatus, newSigner, qs } from './harness.js'
import { describeMailbox, useMailboxContext, type MailboxSpec } from './mailbox-suite.js'

const WELCOMES: MailboxSpec = {
  path: '/welcome',
  table: 'mail_welcomes',
  kind: 'welcome',
  artifact: 'welcome_b64',
  body: (recipient, extra = {}) => ({ recipient, group_id: 'group-routing-id-1', welcome_b64: b64(500), ratchet_tree_b64: b64(200), ...extra }),
}

const ctx = useMailboxContext()
describeMailbox(WELCOMES, ctx)

describe('/welcome: group_id and ratchet tree', () => {
  it('answers group_id, and the ratchet tree only when one was deposited', async () => {
    const [alice, bob] = [newSigner(), newSigner()]
    const { ratchet_tree_b64: _tree, ...withoutTree } = WELCOMES.body(bob.pubkey, { group_id: 'g-without-tree' })
    expectStatus(await ctx.main.api.post('/welcome', alice, WELCOMES.body(bob.pubkey, { group_id: 'g-with-tree' })), 201)
    expectStatus(await ctx.main.api.post('/welcome', alice, withoutTree), 201)
    const res = await ctx.main.api.get(`/welcome${qs({ recipient: bob.pubkey })}`, bob)
    expectStatus(res, 200)
    const [withTree, noTree] = res.body.items
    assert.equal(withTree.group_id, 'g-with-tree')
    assert.match(withTree.ratchet_tree_b64, /^[A-Za-z0-9+/]+=*$/)
    assert.equal(noTree.group_id, 'g-without-tree')
    assert.equal(noTree.ratchet_tree_b64, undefined)
  })

  it('requires a group_id of 1..256 characters', async () => {
    const [alice, bob] = [newSigner(), newSigner()]
    const { group_id: _g, ...withoutGroup } = WELCOMES.body(bob.pubkey)
    expectError(await ctx.main.api.post('/welcome', alice, withoutGroup), 400, 'VALIDATION_FAILED')
    for (const group_id of ['', 'g'.repeat(257), 42, null])
      expectError(await ctx.main.api.post('/welcome', alice, WELCOMES.body(bob.pubkey, { group_id })), 400, 'VALIDATION_FAILED')
    expectStatus(await ctx.main.api.post('/welcome', alice, WELCOMES.body(bob.pubkey, { group_id: 'g'.repeat(256) })), 201)
  })

  it('checks the ratchet tree like the welcome: base64, and 413 past the artifact cap', async () => {
    const [alice, bob] = [newSigner(), newSigner()]
    expectError(await ctx.main.api.post('/welcome', alice, WELCOMES.body(bob.pubkey, { ratchet_tree_b64: 'not base64' })), 400, 'VALIDATION_FAILED')
    const { message } = expectError(
      await ctx.small.api.post('/welcome', alice, WELCOMES.body(bob.pubkey, { welcome_b64: b64(100), ratchet_tree_b64: b64(1025) })),
      413,
      'PAYLOAD_TOO_LARGE',
    )
    assert.match(message, /ratchet_tree_b64/)
    expectStatus(await ctx.small.api.post('/welcome', alice, WELCOMES.body(bob.pubkey, { welcome_b64: b64(1024), ratchet_tree_b64: b64(1024) })), 201)
  })
})
