import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { readGroup, readGroupAnswer } from './items.js'

/** A group as the API answers it (snake_case). */
const apiGroup = (extra: Record<string, unknown> = {}): Record<string, unknown> => ({
  group_id: 'g',
  display_name: null,
  avatar_url: null,
  owner_pubkey: null,
  last_epoch: null,
  last_event_ts: 1_700_000_000,
  message_count: 42,
  relays: [],
  created_at: 1,
  updated_at: 2,
  ...extra,
})

describe('readGroup', () => {
  it('maps a group to camelCase, message_count to messageCount', () => {
    assert.deepEqual(readGroupAnswer({ ok: true, group: apiGroup() }), {
      groupId: 'g',
      displayName: null,
      avatarUrl: null,
      ownerPubkey: null,
      lastEpoch: null,
      lastEventTs: 1_700_000_000,
      messageCount: 42,
      relays: [],
      createdAt: 1,
      updatedAt: 2,
    })
    assert.equal(readGroup(apiGroup({ message_count: 0, last_epoch: 3 })).messageCount, 0)
  })

  it('refuses a group without a numeric message_count', () => {
    const { message_count: _, ...without } = apiGroup()
    assert.throws(() => readGroup(without), /message_count is not a number/)
    assert.throws(() => readGroup(apiGroup({ message_count: '42' })), /message_count is not a number/)
    assert.throws(() => readGroup(apiGroup({ message_count: null })), /message_count is not a number/)
  })
})
