import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { NIP11_MEDIA_TYPE, relayInformation, wantsRelayInformation } from './nip11.js'

describe('wantsRelayInformation', () => {
  it('is true when Accept names application/nostr+json, alone, with parameters, in a list, in any case', () => {
    for (const accept of [
      NIP11_MEDIA_TYPE,
      'application/nostr+json; q=0.9',
      'text/html, application/nostr+json',
      'text/html,application/nostr+json;q=1',
      '  APPLICATION/NOSTR+JSON  ',
    ])
      assert.equal(wantsRelayInformation(accept), true, accept)
  })

  it('is false for other media types and a missing header', () => {
    for (const accept of [undefined, '', '*/*', 'application/json', 'text/html', 'application/nostr+jsonx', 'application/nostr', 'x-application/nostr+json'])
      assert.equal(wantsRelayInformation(accept), false, String(accept))
  })
})

describe('relayInformation', () => {
  it('drops undefined and empty strings, keeps zeros, false and the required fields', () => {
    const doc = relayInformation({
      name: 'relay',
      description: '',
      pubkey: undefined,
      contact: 'mailto:ops@example.com',
      supported_nips: [1, 9, 11, 40, 42, 45, 70],
      limitation: { max_message_length: 131072, auth_required: false, restricted_writes: true, min_pow_difficulty: 0 },
    })
    assert.deepEqual(doc, {
      name: 'relay',
      contact: 'mailto:ops@example.com',
      supported_nips: [1, 9, 11, 40, 42, 45, 70],
      limitation: { max_message_length: 131072, auth_required: false, restricted_writes: true, min_pow_difficulty: 0 },
    })
    assert.deepEqual(Object.keys(JSON.parse(JSON.stringify(doc)) as object), ['name', 'contact', 'supported_nips', 'limitation'])
  })
})
