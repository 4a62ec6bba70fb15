import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { envEntries, envName, parseEnvValue } from './env-overlay.js'

describe('envEntries', () => {
  it('maps prefixed variables to lower-case key paths split on "__"', () => {
    const { entries, errors } = envEntries({
      RELAY_NETWORK__PORT: '9000',
      RELAY_AUTH__REQ__IP_WHITELIST: '["a"]',
      RELAY_LIMITATION__MAX_LIMIT: '10',
      HOME: '/root',
    }, 'RELAY_')
    assert.deepEqual(errors, [])
    assert.deepEqual(entries.map(e => [e.path.join('.'), e.value, e.origin]), [
      ['network.port', 9000, 'RELAY_NETWORK__PORT'],
      ['auth.req.ip_whitelist', ['a'], 'RELAY_AUTH__REQ__IP_WHITELIST'],
      ['limitation.max_limit', 10, 'RELAY_LIMITATION__MAX_LIMIT'],
    ])
  })

  it('rejects a name with an empty key', () => {
    const { errors } = envEntries({ RELAY___X: '1', RELAY_NETWORK__: '1', RELAY_: '1' }, 'RELAY_')
    assert.equal(errors.length, 3)
    assert.match(errors[0] ?? '', /^RELAY___X: empty key/)
  })
})

describe('parseEnvValue', () => {
  it('parses TOML values and keeps anything else as the raw string', () => {
    assert.equal(parseEnvValue('9000'), 9000)
    assert.equal(parseEnvValue('true'), true)
    assert.deepEqual(parseEnvValue('["a", "b"]'), ['a', 'b'])
    assert.equal(parseEnvValue('"x"'), 'x')
    assert.equal(parseEnvValue('hello world'), 'hello world')
    assert.equal(parseEnvValue(''), '')
    assert.equal(parseEnvValue('1\nother = 2'), '1\nother = 2')
  })
})

describe('envName', () => {
  it('is the inverse of the mapping', () => {
    assert.equal(envName('RELAY_', ['auth', 'req', 'ip_whitelist']), 'RELAY_AUTH__REQ__IP_WHITELIST')
  })
})
