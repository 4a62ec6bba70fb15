// What an `auto` subscription is made with (the emulator stores it but checks none of it: Pub/Sub refuses a
// label value outside its rules and an expiration under a day, so these are checked here).
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { autoSubscriptionOptions, labelValue } from './bus.js'

/** Pub/Sub's rule for a label value (ASCII part): lowercase letters, digits, `_` and `-`, at most 63. */
const LABEL_VALUE = /^[a-z0-9_-]{0,63}$/

describe('auto subscription options', () => {
  it('labels the subscription with its replica id, made a valid label value', () => {
    assert.equal(labelValue('relay-0'), 'relay-0')
    assert.equal(labelValue('Replica.One~2+3%'), 'replica_one_2_3_')
    const long = 'A'.repeat(64) // the longest replica id the configuration accepts
    assert.match(labelValue(long), LABEL_VALUE)
    assert.equal(labelValue(long).length, 63)
    assert.deepEqual(autoSubscriptionOptions('Replica.One', false).labels, { 'msr-relay': 'replica', replica_id: 'replica_one' })
  })

  it('gives a per-start id one day of expiration, the shortest Pub/Sub allows, and a stable id none of its own', () => {
    assert.deepEqual(autoSubscriptionOptions('3f9a0c1b2d4e', true).expirationPolicy, { ttl: { seconds: 86_400 } })
    assert.equal('expirationPolicy' in autoSubscriptionOptions('relay-0', false), false, "Pub/Sub's default (31 days): the replica comes back to its backlog")
    assert.equal(autoSubscriptionOptions('relay-0', false).ackDeadlineSeconds, 60)
  })

  it("keeps a per-start id's own messages from its subscription, and a stable id's not (a lost disk gets them back by the seek)", () => {
    assert.equal(autoSubscriptionOptions('3f9a0c1b2d4e', true).filter, 'NOT attributes.origin = "3f9a0c1b2d4e"')
    assert.equal('filter' in autoSubscriptionOptions('relay-0', false), false)
  })
})
