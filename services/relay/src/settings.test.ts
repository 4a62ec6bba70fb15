import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import type { NostrEvent } from '@msr/nostr'
import { relayConfigSchema, type RelayConfig } from './config.js'
import { checkWrite } from './policies/access.js'
import { changedKeys, Settings } from './settings.js'

const ALICE = 'a'.repeat(64)

/** A validated configuration from the given sections (data.path fixed so only what a test changes differs). */
const config = (sections: Record<string, unknown> = {}): RelayConfig =>
  relayConfigSchema.parse({ ...sections, data: { path: '/srv/relay', ...(sections.data as object | undefined) } })

const note = (pubkey: string): NostrEvent => ({ id: '0'.repeat(64), pubkey, created_at: 0, kind: 1, tags: [], content: '', sig: '0'.repeat(128) })

describe('changedKeys', () => {
  it('is empty for equal configurations', () => {
    assert.deepEqual(changedKeys(config(), config()), [])
  })

  it('names each changed leaf by its dotted path', () => {
    const a = config()
    const b = config({ limitation: { max_limit: 2 }, network: { port: 9000 }, data: { path: '/elsewhere' } })
    assert.deepEqual(changedKeys(a, b).sort(), ['data.path', 'limitation.max_limit', 'network.port'])
  })

  it('reports nested tables and whole arrays', () => {
    const a = config({ auth: { event: { pubkey_blacklist: [] } } })
    const b = config({ auth: { event: { pubkey_blacklist: [ALICE] }, private_kinds: [446] } })
    assert.deepEqual(changedKeys(a, b).sort(), ['auth.event.pubkey_blacklist', 'auth.private_kinds'])
  })

  it('reports array-of-table changes (rate rules) as the array key', () => {
    const a = config({ rate_limiter: { event: [{ name: 'r', limit: 3 }] } })
    const b = config({ rate_limiter: { event: [{ name: 'r', limit: 4 }] } })
    assert.deepEqual(changedKeys(a, b), ['rate_limiter.event'])
  })

  it('treats keys present on one side only as changed', () => {
    assert.deepEqual(changedKeys({ a: { b: 1 } }, { a: {} }), ['a.b'])
    assert.deepEqual(changedKeys({ a: 1 }, { a: 1, c: [1] }), ['c'])
  })
})

describe('Settings.reload', () => {
  it('applies reloadable sections at once and recompiles the rules', () => {
    const settings = new Settings(config())
    const before = settings.current
    const outcome = settings.reload(
      config({
        limitation: { max_limit: 2 },
        information: { name: 'Renamed' },
        auth: { event: { pubkey_blacklist: [ALICE] } },
        rate_limiter: { max_connections_per_ip: 3 },
        metrics: { enabled: true, auth: 'k'.repeat(16) },
        network: { trusted_proxies: 1, public_url: 'wss://relay.example.com' },
      }),
    )
    assert.deepEqual(outcome.restartRequired, [])
    assert.deepEqual(
      outcome.applied.sort(),
      [
        'auth.event.pubkey_blacklist',
        'information.name',
        'limitation.max_limit',
        'metrics.auth',
        'metrics.enabled',
        'network.public_url',
        'network.trusted_proxies',
        'rate_limiter.max_connections_per_ip',
      ],
    )
    const now = settings.current
    assert.notEqual(now, before, 'the state is swapped whole')
    assert.equal(now.config.limitation.max_limit, 2)
    assert.equal(now.config.network.trusted_proxies, 1)
    assert.equal(now.limits.maxConnectionsPerIp, 3)
    assert.equal(now.access.relayUrl, 'wss://relay.example.com')
    assert.equal(checkWrite(now.access, { ip: '10.0.0.1', authed: new Set([ALICE]) }, note(ALICE))?.startsWith('restricted: '), true)
    // Readers holding the previous state keep a consistent one.
    assert.equal(before.config.limitation.max_limit, 1000)
    assert.equal(checkWrite(before.access, { ip: '10.0.0.1', authed: new Set([ALICE]) }, note(ALICE)), undefined)
  })

  it('reports restart-only keys without applying them, while applying the rest of the same file', () => {
    const settings = new Settings(config())
    const outcome = settings.reload(
      config({
        data: { path: '/new/place', query_workers: 3 },
        network: { port: 9999, host: '0.0.0.0' },
        verification: { backend: 'wasm' },
        limitation: { max_limit: 7 },
      }),
    )
    assert.deepEqual(outcome.applied, ['limitation.max_limit'])
    assert.deepEqual(outcome.restartRequired.sort(), ['data.path', 'data.query_workers', 'network.host', 'network.port', 'verification.backend'])
    const { config: now } = settings.current
    assert.equal(now.limitation.max_limit, 7)
    assert.equal(now.data.path, '/srv/relay')
    assert.equal(now.data.query_workers, 0)
    assert.equal(now.network.port, 8080)
    assert.equal(now.network.host, '127.0.0.1')
    assert.equal(now.verification.backend, 'auto')
  })

  it('keeps naming a pending restart-only change on later reloads', () => {
    const settings = new Settings(config())
    settings.reload(config({ network: { port: 9999 } }))
    const again = settings.reload(config({ network: { port: 9999 }, limitation: { max_limit: 9 } }))
    assert.deepEqual(again.applied, ['limitation.max_limit'])
    assert.deepEqual(again.restartRequired, ['network.port'])
    assert.equal(settings.current.config.network.port, 8080)
  })

  it('reports nothing for an unchanged file', () => {
    const settings = new Settings(config({ limitation: { max_limit: 5 } }))
    assert.deepEqual(settings.reload(config({ limitation: { max_limit: 5 } })), { applied: [], restartRequired: [] })
  })
})

describe('Settings.reload and rate-limit counters', () => {
  it('keeps the limiters (and their counts) when [rate_limiter] is unchanged, and replaces them when it changes', async () => {
    const base = relayConfigSchema.parse({ rate_limiter: { event: [{ name: 'r', limit: 1, period: '1m' }] } })
    const settings = new Settings(base)
    const peer = { ip: '192.0.2.1', authed: new Set<string>() }
    const event = { kind: 1 } as Parameters<Settings['current']['limits']['checkEvent']>[0]
    assert.equal(await settings.current.limits.checkEvent(event, peer), undefined)
    assert.ok(await settings.current.limits.checkEvent(event, peer), 'the second event is over the limit')
    settings.reload(relayConfigSchema.parse({ ...base, limitation: { ...base.limitation, max_limit: 7 } }))
    assert.ok(await settings.current.limits.checkEvent(event, peer), 'an unrelated reload keeps the count')
    settings.reload(relayConfigSchema.parse({ ...base, rate_limiter: { ...base.rate_limiter, event: [{ name: 'r', limit: 2, period: '1m' }] } }))
    assert.equal(await settings.current.limits.checkEvent(event, peer), undefined, 'a changed rule starts afresh')
  })
})
