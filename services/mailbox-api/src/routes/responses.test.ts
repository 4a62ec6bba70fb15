// The response schemas hold what the domain answers: a mailbox item's fields are its kind's columns
// between the common ones, in the order pickup answers them.
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { KEYPACKAGES, WELCOMES } from '../domain/mailbox.js'
import { ERROR_CODES, keyPackageItem, welcomeItem } from './responses.js'

describe('response schemas', () => {
  it("describe each mailbox item as pickup answers it: the common fields around its kind's columns", () => {
    for (const [kind, item] of [
      [KEYPACKAGES, keyPackageItem],
      [WELCOMES, welcomeItem],
    ] as const)
      assert.deepEqual(Object.keys(item.shape), ['id', 'recipient', 'sender', ...kind.columns, 'created_at', 'expires_at', 'picked_up_at'], kind.name)
  })

  it('list each error code once', () => {
    assert.equal(new Set(ERROR_CODES).size, ERROR_CODES.length)
  })
})
