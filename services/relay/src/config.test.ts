import assert from 'node:assert/strict'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, test } from 'node:test'
import { configReference, replaceMarkedSection, sectionMarkers } from '@msr/config'
import { loadRelayConfig, REFERENCE_SECTION, relayConfigSchema } from './config.js'

const README = new URL('../../../../README.md', import.meta.url)
/** Where this file's TOML files go, removed after it. */
const dirs: string[] = []
after(() => dirs.forEach(dir => rmSync(dir, { recursive: true, force: true })))
const configDir = (): string => {
  const dir = mkdtempSync(join(tmpdir(), 'relay-config-'))
  dirs.push(dir)
  return dir
}
const EXAMPLE = new URL('../../config/relay.toml', import.meta.url)

test('the README configuration reference is the one generated from the schema (npm run docs)', () => {
  const readme = readFileSync(README, 'utf8')
  const expected = replaceMarkedSection(readme, REFERENCE_SECTION, configReference(relayConfigSchema, { envPrefix: 'RELAY_' }))
  const { start, end } = sectionMarkers(REFERENCE_SECTION)
  assert.ok(readme.includes(start) && readme.includes(end))
  assert.equal(readme, expected, 'README.md is out of date: run `npm run docs`')
})

test('the shipped hardened configuration is valid once the metrics key is supplied, and not before', () => {
  const loaded = loadRelayConfig(EXAMPLE.pathname, { RELAY_METRICS__AUTH: 'a-secret-of-at-least-16-chars' })
  assert.ok(loaded.ok, loaded.ok ? '' : loaded.errors.join('\n'))
  assert.equal(loaded.value.auth.enabled, true)
  assert.equal(loaded.value.auth.required, true)
  assert.deepEqual(loaded.value.auth.private_kinds, [446, 1059, 444])
  assert.deepEqual(
    loaded.value.rate_limiter.event.map(r => [r.name, r.limit, r.period, r.kinds]),
    [
      ['mls_group_messages', 100, 60_000, [445]],
      ['noise_dms', 50, 60_000, [446]],
    ],
  )
  const withoutKey = loadRelayConfig(EXAMPLE.pathname, {})
  assert.equal(withoutKey.ok, false)
  if (!withoutKey.ok) assert.match(withoutKey.errors.join('\n'), /metrics\.auth/)
})

test('no file at the default path means built-in defaults', () => {
  const loaded = loadRelayConfig(undefined, {})
  assert.ok(loaded.ok)
  assert.equal(loaded.value.network.port, 8080)
  assert.equal(loaded.value.data.path, './data')
  assert.equal(loaded.value.data.db_query_timeout, 100)
  assert.equal(loaded.source.file, undefined)
})

test('a named file that is missing is an error', () => {
  const loaded = loadRelayConfig('/nonexistent/relay.toml', {})
  assert.equal(loaded.ok, false)
})

test('file < RELAY_ env < PORT', () => {
  const dir = configDir()
  const file = join(dir, 'relay.toml')
  writeFileSync(file, '[network]\nport = 7000\n[limitation]\nmax_limit = 10\n[data]\npath = "/from/file"\n')
  const fileOnly = loadRelayConfig(file, {})
  assert.ok(fileOnly.ok)
  assert.equal(fileOnly.value.network.port, 7000)
  const env = loadRelayConfig(file, { RELAY_NETWORK__PORT: '9000', RELAY_DATA__PATH: '/tmp/x' })
  assert.ok(env.ok)
  assert.equal(env.value.network.port, 9000)
  assert.equal(env.value.data.path, '/tmp/x')
  assert.equal(env.value.limitation.max_limit, 10)
  const port = loadRelayConfig(file, { RELAY_NETWORK__PORT: '9000', PORT: '8888' })
  assert.ok(port.ok)
  assert.equal(port.value.network.port, 8888)
})

test('every bad key is listed at once', () => {
  const dir = configDir()
  const file = join(dir, 'relay.toml')
  writeFileSync(file, '[network]\nport = "eighty"\n[limitation]\nmax_limt = 5\n[search]\nenabled = true\n[nonsense]\nx = 1\n')
  const loaded = loadRelayConfig(file, { RELAY_DATA__DB_QUERY_TIMEOUT: 'soon', PORT: 'abc' })
  assert.equal(loaded.ok, false)
  if (loaded.ok) return
  const text = loaded.errors.join('\n')
  for (const key of ['network.port', 'limitation.max_limt', 'search.enabled', 'nonsense', 'data.db_query_timeout'])
    assert.match(text, new RegExp(key.replace('.', '\\.')), `missing ${key} in:\n${text}`)
})

test('data.query_inline: a duration, 5 ms by default, 0 to turn it off; anything else is refused, naming the key', () => {
  const inline = (env: Record<string, string>) => loadRelayConfig(undefined, env)
  const byDefault = inline({})
  assert.ok(byDefault.ok)
  assert.equal(byDefault.value.data.query_inline, 5)
  for (const [value, ms] of [['2.5ms', 2.5], ['0', 0], ['1s', 1000]] as const) {
    const loaded = inline({ RELAY_DATA__QUERY_INLINE: value })
    assert.ok(loaded.ok, value)
    assert.equal(loaded.value.data.query_inline, ms)
  }
  for (const value of ['soon', '-1ms', '5 ms ago']) {
    const loaded = inline({ RELAY_DATA__QUERY_INLINE: value })
    assert.equal(loaded.ok, false, value)
    if (!loaded.ok) assert.match(loaded.errors.join('\n'), /data\.query_inline.*expected a duration/, value)
  }
})

test('timer durations are refused outside their range, naming the variable: 0 would spin, past 24 days Node fires at once', () => {
  for (const [name, bad, range] of [
    ['RELAY_NETWORK__PING_INTERVAL', '0', 'from 100ms to 24d'],
    ['RELAY_NETWORK__PING_INTERVAL', '25d', 'from 100ms to 24d'],
    ['RELAY_DATA__EXPIRATION_SWEEP_INTERVAL', '30d', 'from 100ms to 24d'],
    ['RELAY_DATA__EXPIRATION_SWEEP_INTERVAL', '0', 'from 100ms to 24d'],
    ['RELAY_BACKUP__INTERVAL', '10ms', 'from 100ms to 24d'],
    ['RELAY_REPLICATION__ACK_TIMEOUT', '90d', 'from 0 to 24d'],
  ] as const) {
    const loaded = loadRelayConfig(undefined, { [name]: bad })
    assert.equal(loaded.ok, false, `${name}=${bad}`)
    if (!loaded.ok) assert.match(loaded.errors.join('\n'), new RegExp(`${name}.*expected a duration ${range}|expected a duration ${range}.*${name}`), `${name}=${bad}`)
  }
  const fine = loadRelayConfig(undefined, { RELAY_NETWORK__PING_INTERVAL: '100ms', RELAY_DATA__EXPIRATION_SWEEP_INTERVAL: '100ms', RELAY_BACKUP__INTERVAL: '24d' })
  assert.ok(fine.ok, fine.ok ? '' : fine.errors.join('\n'))
})

test('data.write_map: off by default, a boolean; anything else is refused, naming the key', () => {
  const byDefault = loadRelayConfig(undefined, {})
  assert.ok(byDefault.ok)
  assert.equal(byDefault.value.data.write_map, false)
  const on = loadRelayConfig(undefined, { RELAY_DATA__WRITE_MAP: 'true' })
  assert.ok(on.ok)
  assert.equal(on.value.data.write_map, true)
  for (const value of ['maybe', '1', '"yes"']) {
    const loaded = loadRelayConfig(undefined, { RELAY_DATA__WRITE_MAP: value })
    assert.equal(loaded.ok, false, value)
    if (!loaded.ok) assert.match(loaded.errors.join('\n'), /data\.write_map.*expected boolean/, value)
  }
})

test('the configuration is frozen', () => {
  const loaded = loadRelayConfig(undefined, {})
  assert.ok(loaded.ok)
  assert.throws(() => {
    ;(loaded.value.limitation as { max_limit: number }).max_limit = 1
  })
})

test('the Marmot keys refuse what they cannot mean, naming the key', () => {
  const dir = configDir()
  const file = join(dir, 'relay.toml')
  writeFileSync(
    file,
    '[limitation]\nhistory_kinds = [445, "x"]\nmax_history = 0\nrefused_kinds = [70000]\n' +
      '[[rate_limiter.event]]\nname = "g"\nlimit = 1\nper_tag = "hh"\n',
  )
  const loaded = loadRelayConfig(file, {})
  assert.equal(loaded.ok, false)
  const errors = loaded.ok ? '' : loaded.errors.join('\n')
  assert.match(errors, /^limitation\.history_kinds\[1\]: expected number, received string$/m)
  assert.match(errors, /^limitation\.max_history: must be >= 1, received 0$/m)
  assert.match(errors, /^limitation\.refused_kinds\[0\]: must be <= 65535, received 70000$/m)
  assert.match(errors, /^rate_limiter\.event\[0\]\.per_tag: expected a single-letter tag name, e\.g\. "h"$/m)
})

test('[replication] is off by default and checks its keys together, naming each', () => {
  const off = loadRelayConfig(undefined, {})
  assert.ok(off.ok)
  assert.deepEqual(off.value.replication, { topic: '', subscription: 'auto', replica_id: '', project_id: '', ack_timeout: 3000, on_bus_outage: 'refuse', verify: true, seek_margin: 600_000, catch_up_quiet: 5000, shutdown_drain: 3000 })
  const on = loadRelayConfig(undefined, { RELAY_REPLICATION__TOPIC: 'relay-events', RELAY_REPLICATION__REPLICA_ID: 'r-1', RELAY_REPLICATION__ON_BUS_OUTAGE: 'local' })
  assert.ok(on.ok, on.ok ? '' : on.errors.join('\n'))
  assert.equal(on.value.replication.on_bus_outage, 'local')
  const errorsOf = (env: Record<string, string>) => {
    const loaded = loadRelayConfig(undefined, env)
    return loaded.ok ? '' : loaded.errors.join('\n')
  }
  assert.match(errorsOf({ RELAY_REPLICATION__SUBSCRIPTION: 'mine' }), /^replication\.subscription \(from RELAY_REPLICATION__SUBSCRIPTION\): needs replication\.topic/m)
  assert.match(errorsOf({ RELAY_REPLICATION__REPLICA_ID: 'r1' }), /^replication\.replica_id \(from RELAY_REPLICATION__REPLICA_ID\): needs replication\.topic/m)
  const bad = errorsOf({
    RELAY_REPLICATION__TOPIC: '9events',
    RELAY_REPLICATION__SUBSCRIPTION: 'goog-sub',
    RELAY_REPLICATION__REPLICA_ID: 'a b',
    RELAY_REPLICATION__ACK_TIMEOUT: '"2m"',
    RELAY_REPLICATION__ON_BUS_OUTAGE: 'ignore',
  })
  for (const key of ['topic', 'subscription', 'replica_id', 'ack_timeout', 'on_bus_outage'])
    assert.match(bad, new RegExp(`^replication\\.${key}[ :]`, 'm'), `missing ${key} in:\n${bad}`)
})
