import assert from 'node:assert/strict'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, describe, it } from 'node:test'
import * as z from 'zod'
import { loadConfig, type ConfigResult } from './load-config.js'
import { section } from './section.js'
import { sampleSchema } from './sample-schema.js'

const dirs: string[] = []
after(() => dirs.forEach(dir => rmSync(dir, { recursive: true, force: true })))

function tomlFile(text: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'msr-config-'))
  dirs.push(dir)
  const file = join(dir, 'relay.toml')
  writeFileSync(file, text)
  return file
}

function expectOk<T>(result: ConfigResult<T>): T {
  assert.ok(result.ok, result.ok ? '' : result.errors.join('\n'))
  return result.value
}

function expectErrors<T>(result: ConfigResult<T>): string[] {
  assert.equal(result.ok, false, 'expected the config to be rejected')
  return result.ok ? [] : result.errors
}

describe('loadConfig', () => {
  it('gives every default for an empty file, including inside sections left out', () => {
    const value = expectOk(loadConfig({ schema: sampleSchema, file: tomlFile('') }))
    assert.deepEqual(value, {
      log_level: 'info',
      network: { host: '0.0.0.0', port: 8080, idle_timeout: 30_000 },
      auth: { req: { ip_whitelist: [] } },
      limitation: { max_limit: 500 },
      rate_limiter: { event: [] },
    })
  })

  it('shows why sections use prefault: zod 4 .default({}) skips the inner defaults', () => {
    const inner = { port: z.number().default(1) }
    const withDefault = z.strictObject({ net: z.strictObject(inner).default({ port: 1 }) })
    const withSection = z.strictObject({ net: section(inner) })
    assert.deepEqual(z.strictObject({ net: z.strictObject(inner).default({} as { port: number }) }).parse({}), { net: {} })
    assert.deepEqual(withDefault.parse({}), { net: { port: 1 } })
    assert.deepEqual(withSection.parse({}), { net: { port: 1 } })
  })

  it('layers file, then environment, then overrides', () => {
    const file = tomlFile('log_level = "debug"\n[network]\nhost = "127.0.0.1"\nport = 7000\n[limitation]\nmax_limit = 100\n')
    const result = loadConfig({
      schema: sampleSchema, file, envPrefix: 'RELAY_',
      env: { RELAY_NETWORK__PORT: '9000', RELAY_LIMITATION__MAX_LIMIT: '200', OTHER_NETWORK__PORT: '1' },
      overrides: { 'network.port': 8081, 'limitation.relay_name': undefined },
    })
    const value = expectOk(result)
    assert.equal(value.log_level, 'debug')
    assert.equal(value.network.host, '127.0.0.1')
    assert.equal(value.limitation.max_limit, 200)
    assert.equal(value.network.port, 8081)
    assert.equal(value.limitation.relay_name, undefined)
    assert.ok(result.ok)
    assert.deepEqual(result.source, { file, envKeys: ['RELAY_LIMITATION__MAX_LIMIT', 'RELAY_NETWORK__PORT'] })
  })

  it('reads env values as TOML values, falling back to the raw string', () => {
    const value = expectOk(loadConfig({
      schema: sampleSchema, envPrefix: 'RELAY_',
      env: {
        RELAY_NETWORK__PORT: '9000',
        RELAY_NETWORK__HOST: 'example.com',
        RELAY_NETWORK__IDLE_TIMEOUT: '"2m"',
        RELAY_AUTH__REQ__IP_WHITELIST: '["10.0.0.1", "10.0.0.2"]',
        RELAY_RATE_LIMITER__EVENT: '[{ per_second = 5, kinds = [1, 7] }]',
      },
    }))
    assert.equal(value.network.port, 9000)
    assert.equal(value.network.host, 'example.com')
    assert.equal(value.network.idle_timeout, 120_000)
    assert.deepEqual(value.auth.req.ip_whitelist, ['10.0.0.1', '10.0.0.2'])
    assert.deepEqual(value.rate_limiter.event, [{ per_second: 5, kinds: [1, 7] }])
  })

  it('names the env var when its value is wrong, and says how to pass a string', () => {
    const errors = expectErrors(loadConfig({
      schema: sampleSchema, envPrefix: 'RELAY_',
      env: { RELAY_NETWORK__PORT: 'abc', RELAY_LIMITATION__RELAY_NAME: '123' },
    }))
    assert.deepEqual(errors, [
      'network.port (from RELAY_NETWORK__PORT): expected number, received string',
      'limitation.relay_name (from RELAY_LIMITATION__RELAY_NAME): expected string, received number'
        + ` (environment values are read as TOML; quote a string: RELAY_LIMITATION__RELAY_NAME='"..."')`,
    ])
  })

  it('lists each unknown key on its own line, from the file and from the environment', () => {
    const file = tomlFile('colour = 1\n[limitation]\nmax_limt = 5\nburst = 2\n')
    const errors = expectErrors(loadConfig({
      schema: sampleSchema, file, envPrefix: 'RELAY_', env: { RELAY_NETWORK__PROT: '1' },
    }))
    assert.deepEqual(errors.sort(), [
      'colour: unknown key',
      'limitation.burst: unknown key',
      'limitation.max_limt: unknown key (did you mean "max_limit"?)',
      'network.prot (from RELAY_NETWORK__PROT): unknown key (did you mean "port"?)',
    ])
  })

  it('reports every problem at once', () => {
    const file = tomlFile([
      'log_level = "loud"',
      '[network]', 'port = 70000', 'idle_timeout = "soon"',
      '[[rate_limiter.event]]', 'per_second = "fast"',
    ].join('\n'))
    const errors = expectErrors(loadConfig({ schema: sampleSchema, file, envPrefix: 'RELAY_', env: { RELAY___X: '1' } }))
    assert.deepEqual(errors, [
      'RELAY___X: empty key in variable name (keys are separated by exactly "__")',
      'log_level: expected one of "debug", "info", "warn", "error", received "loud"',
      'network.port: must be <= 65535, received 70000',
      'network.idle_timeout: expected a duration like "100ms", "10s", "1m", "1h", received "soon"',
      'rate_limiter.event[0].per_second: expected number, received string',
    ])
  })

  it('reports the cross-field rules in the same run as type errors and unknown keys', () => {
    const schema = z
      .strictObject({
        auth: z.strictObject({ enabled: z.boolean().default(false) }).prefault({}),
        network: z.strictObject({ port: z.number().default(1), public_url: z.string().default(''), hosts: z.array(z.string()).default([]) }).prefault({}),
      })
      .superRefine((c, ctx) => {
        if (c.auth.enabled && !c.network.public_url) ctx.addIssue({ code: 'custom', path: ['network', 'public_url'], message: 'required when auth.enabled is true' })
      })
    const file = tomlFile(['[auth]', 'enabled = true', '[network]', 'port = "x"', 'hosts = ["a", 1]', 'bogus = 2'].join('\n'))
    assert.deepEqual(expectErrors(loadConfig({ schema, file })), [
      'network.port: expected number, received string',
      'network.hosts[1]: expected string, received number',
      'network.bogus: unknown key',
      'network.public_url: required when auth.enabled is true',
    ])
  })

  it('reports a missing required key and a value of the wrong shape', () => {
    const file = tomlFile('network = 5\n[[rate_limiter.event]]\nkinds = [1]\n')
    const errors = expectErrors(loadConfig({ schema: sampleSchema, file }))
    assert.deepEqual(errors, [
      'network: expected table, received number',
      'rate_limiter.event[0].per_second: missing required key (expected number)',
    ])
  })

  it('reports an env var that cannot be placed because the file has a scalar in the way', () => {
    const file = tomlFile('network = 5\n')
    const errors = expectErrors(loadConfig({ schema: sampleSchema, file, envPrefix: 'RELAY_', env: { RELAY_NETWORK__PORT: '1' } }))
    assert.equal(errors[0], 'RELAY_NETWORK__PORT: cannot set network.port: network is not a table')
  })

  it('continues without a missing optional file', () => {
    const missing = join(tmpdir(), 'msr-config-does-not-exist', 'relay.toml')
    const result = loadConfig({ schema: sampleSchema, file: missing })
    assert.equal(expectOk(result).network.port, 8080)
    assert.ok(result.ok)
    assert.equal(result.source.file, undefined)
  })

  it('fails on a missing required file', () => {
    const missing = join(tmpdir(), 'msr-config-does-not-exist', 'relay.toml')
    assert.deepEqual(expectErrors(loadConfig({ schema: sampleSchema, file: missing, fileRequired: true })), [
      `${missing}: file not found`,
    ])
  })

  it('reports a TOML syntax error with file, line and column', () => {
    const file = tomlFile('[network]\nport = = 1\n')
    const [error, ...rest] = expectErrors(loadConfig({ schema: sampleSchema, file }))
    assert.deepEqual(rest, [])
    assert.match(error ?? '', new RegExp(`^${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: TOML syntax error at line 2, column \\d+: `))
    assert.doesNotMatch(error ?? '', /port = = 1/, 'the line itself is not quoted')
  })

  it('never quotes the broken line: it may hold a secret', () => {
    for (const text of ['[admin]\nkey = "topSECRETadminKey-42abcdef" x\n', '[metrics]\nenabled = true\nauth = "rotatedSECRETkey-0123456789\n']) {
      const [error] = expectErrors(loadConfig({ schema: sampleSchema, file: tomlFile(text) }))
      assert.match(error ?? '', /TOML syntax error at line \d+, column \d+: /)
      assert.doesNotMatch(error ?? '', /SECRET/, error)
    }
  })

  it('returns a deeply frozen value', () => {
    const value = expectOk(loadConfig({
      schema: sampleSchema, envPrefix: 'RELAY_', env: { RELAY_RATE_LIMITER__EVENT: '[{ per_second = 1, kinds = [1] }]' },
    }))
    assert.ok(Object.isFrozen(value))
    assert.ok(Object.isFrozen(value.network))
    assert.ok(Object.isFrozen(value.auth.req.ip_whitelist))
    assert.ok(Object.isFrozen(value.rate_limiter.event[0]?.kinds))
    assert.throws(() => { (value.network as { port: number }).port = 1 }, TypeError)
  })

  it('treats prototype-looking keys as plain (unknown) keys', () => {
    const errors = expectErrors(loadConfig({
      schema: sampleSchema, envPrefix: 'RELAY_', env: { RELAY_CONSTRUCTOR__PROTOTYPE__X: '1' }, overrides: { '__proto__.x': 1 },
    }))
    assert.deepEqual(errors.sort(), ['__proto__: unknown key', 'constructor (from RELAY_CONSTRUCTOR__PROTOTYPE__X): unknown key'])
    assert.equal(({} as Record<string, unknown>)['x'], undefined)
  })
})
