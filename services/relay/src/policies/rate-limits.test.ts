import assert from 'node:assert/strict'
import { setTimeout as sleep } from 'node:timers/promises'
import { describe, it } from 'node:test'
import type { NostrEvent } from '@msr/nostr'
import { relayConfigSchema } from '../config.js'
import type { Peer } from './access.js'
import { compileRateLimits, MAX_TAG_KEYS } from './rate-limits.js'

const ALICE = 'a'.repeat(64)
const BOB = 'b'.repeat(64)

/** Only `kind` matters to the limiter. */
const event = (kind: number): NostrEvent => ({ id: '0'.repeat(64), pubkey: 'f'.repeat(64), created_at: 0, kind, tags: [], content: '', sig: '0'.repeat(128) })

const peer = (ip: string, ...authed: string[]): Peer => ({ ip, authed: new Set(authed) })

/** The compiled `[rate_limiter]` section of a configuration. */
const limits = (rateLimiter: Record<string, unknown>) => compileRateLimits(relayConfigSchema.parse({ rate_limiter: rateLimiter }).rate_limiter)

const rule = (fields: Record<string, unknown>) => ({ name: 'r', description: 'test rule', period: '1m', limit: 2, ...fields })

/** The outcomes of checking `count` events of `kind` from `from`: the reason, or 'ok'. */
const outcomes = async (l: ReturnType<typeof limits>, kind: number, from: Peer, count: number): Promise<string[]> => {
  const out: string[] = []
  for (let i = 0; i < count; i++) out.push((await l.checkEvent(event(kind), from))?.reason ?? 'ok')
  return out
}

describe('event rate rules', () => {
  it('refuses the event past the limit with the rule description and name', async () => {
    const l = limits({ event: [rule({ name: 'mls', description: 'MLS messages (kind 445)', limit: 3, kinds: [445] })] })
    assert.deepEqual(await outcomes(l, 445, peer('10.0.0.1'), 3), ['ok', 'ok', 'ok'])
    assert.deepEqual(await l.checkEvent(event(445), peer('10.0.0.1')), { reason: 'rate-limited: MLS messages (kind 445)', rule: 'mls' })
  })

  it('uses the rule name when it has no description', async () => {
    const l = limits({ event: [{ name: 'bare', limit: 1 }] })
    await l.checkEvent(event(1), peer('10.0.0.1'))
    assert.equal((await l.checkEvent(event(1), peer('10.0.0.1')))?.reason, 'rate-limited: bare')
  })

  it('counts each client IP separately', async () => {
    const l = limits({ event: [rule({ kinds: [445] })] })
    assert.deepEqual(await outcomes(l, 445, peer('10.0.0.1'), 3), ['ok', 'ok', 'rate-limited: test rule'])
    assert.deepEqual(await outcomes(l, 445, peer('10.0.0.2'), 2), ['ok', 'ok'])
    assert.deepEqual(await outcomes(l, 445, peer('2001:db8::1'), 2), ['ok', 'ok'])
  })

  it('counts an authenticated pubkey across addresses, independently of the per-IP count', async () => {
    const l = limits({ event: [rule({ limit: 3, kinds: [445] })] })
    assert.deepEqual(await outcomes(l, 445, peer('10.0.0.1', ALICE), 2), ['ok', 'ok'])
    // Alice from a second address: the address is fresh, her pubkey has one event left.
    assert.deepEqual(await outcomes(l, 445, peer('10.0.0.2', ALICE), 2), ['ok', 'rate-limited: test rule'])
    // Bob from Alice's first address: his pubkey is fresh, the address has one event left.
    assert.deepEqual(await outcomes(l, 445, peer('10.0.0.1', BOB), 2), ['ok', 'rate-limited: test rule'])
  })

  it('counts every pubkey a re-authenticated connection proved', async () => {
    const l = limits({ event: [rule({ limit: 1 })] })
    assert.equal(await l.checkEvent(event(1), peer('10.0.0.1', BOB)), undefined)
    assert.equal((await l.checkEvent(event(1), peer('10.0.0.2', ALICE, BOB)))?.reason, 'rate-limited: test rule')
  })

  it('counts only the kinds it covers, with inclusive ranges', async () => {
    const l = limits({ event: [rule({ limit: 1, kinds: [7, [30000, 39999]] })] })
    for (const [i, kind] of [30000, 35000, 39999, 7].entries())
      assert.deepEqual(await outcomes(l, kind, peer(`10.0.1.${i}`), 2), ['ok', 'rate-limited: test rule'], `kind ${kind}`)
    for (const kind of [29999, 40000, 1, 6, 8]) assert.deepEqual(await outcomes(l, kind, peer('10.0.2.1'), 3), ['ok', 'ok', 'ok'], `kind ${kind}`)
  })

  it('without kinds covers every kind, with one budget shared by all of them', async () => {
    const l = limits({ event: [rule({ limit: 2 })] })
    assert.equal(await l.checkEvent(event(1), peer('10.0.0.1')), undefined)
    assert.equal(await l.checkEvent(event(65535), peer('10.0.0.1')), undefined)
    assert.equal((await l.checkEvent(event(0), peer('10.0.0.1')))?.reason, 'rate-limited: test rule')
  })

  it('keeps a budget per rule: the spec rules for 445 and 446 do not share one', async () => {
    const l = limits({
      event: [
        rule({ name: 'mls_group_messages', description: 'MLS messages (kind 445)', limit: 2, kinds: [445] }),
        rule({ name: 'noise_dms', description: 'Noise DMs (kind 446)', limit: 1, kinds: [446] }),
      ],
    })
    const from = peer('10.0.0.1', ALICE)
    assert.deepEqual(await outcomes(l, 446, from, 2), ['ok', 'rate-limited: Noise DMs (kind 446)'])
    assert.deepEqual(await outcomes(l, 445, from, 3), ['ok', 'ok', 'rate-limited: MLS messages (kind 445)'])
    assert.deepEqual(await l.checkEvent(event(446), from), { reason: 'rate-limited: Noise DMs (kind 446)', rule: 'noise_dms' })
  })

  describe('per_tag', () => {
    const GROUP = '1'.repeat(64)
    const inGroups = (...groups: string[]): NostrEvent => ({ ...event(445), tags: groups.map(g => ['h', g]) })
    const decoy = (i: number) => i.toString(16).padStart(64, '0')

    it('counts per tag value, whoever sends', async () => {
      const l = limits({ event: [rule({ kinds: [445], per_tag: 'h' })] })
      assert.equal(await l.checkEvent(inGroups(GROUP), peer('10.0.0.1', ALICE)), undefined)
      assert.equal(await l.checkEvent(inGroups(GROUP), peer('10.0.0.2', BOB)), undefined)
      assert.equal((await l.checkEvent(inGroups(GROUP), peer('10.0.0.3')))?.reason, 'rate-limited: test rule')
      assert.equal(await l.checkEvent(inGroups(decoy(1)), peer('10.0.0.3')), undefined, 'another group has its own budget')
    })

    it('charges every value: decoy values do not carry an event past a spent budget', async () => {
      const l = limits({ event: [rule({ kinds: [445], per_tag: 'h' })] })
      for (let i = 0; i < 2; i++) assert.equal(await l.checkEvent(inGroups(GROUP), peer('10.0.0.1')), undefined)
      for (let i = 0; i < 10; i++) {
        const refused = await l.checkEvent(inGroups(decoy(4 * i + 1), decoy(4 * i + 2), decoy(4 * i + 3), GROUP), peer('10.0.0.1'))
        assert.deepEqual(refused, { reason: 'rate-limited: test rule', rule: 'r' }, `decoys ${i}`)
      }
    })

    it(`refuses with blocked: an event naming more than ${MAX_TAG_KEYS} distinct values, whatever their budgets`, async () => {
      const l = limits({ event: [rule({ name: 'groups', kinds: [445], per_tag: 'h', limit: 100 })] })
      const values = Array.from({ length: MAX_TAG_KEYS }, (_, i) => decoy(100 + i))
      assert.equal(await l.checkEvent(inGroups(...values, values[0] as string), peer('10.0.0.1')), undefined, 'repeated values count once')
      assert.deepEqual(await l.checkEvent(inGroups(...values, GROUP), peer('10.0.0.1')), {
        reason: `blocked: an event counted per "h" value may name at most ${MAX_TAG_KEYS} of them`,
        rule: 'groups',
      })
    })
  })

  it('applies every rule covering a kind', async () => {
    const l = limits({ event: [rule({ name: 'wide', description: 'all', limit: 5 }), rule({ name: 'narrow', description: 'dms', limit: 1, kinds: [4] })] })
    assert.deepEqual(await outcomes(l, 4, peer('10.0.0.1'), 2), ['ok', 'rate-limited: dms'])
  })

  it('exempts addresses and ranges on the rule ip_whitelist, and only those', async () => {
    const l = limits({ event: [rule({ limit: 1, ip_whitelist: ['10.9.0.0/16', '2001:db8::/64', '192.0.2.1'] })] })
    for (const ip of ['10.9.4.4', '2001:db8::42', '192.0.2.1', '::ffff:192.0.2.1'])
      assert.deepEqual(await outcomes(l, 1, peer(ip, ALICE), 4), ['ok', 'ok', 'ok', 'ok'], ip)
    assert.deepEqual(await outcomes(l, 1, peer('10.10.0.1'), 2), ['ok', 'rate-limited: test rule'])
    assert.deepEqual(await outcomes(l, 1, peer('2001:db8:0:1::1'), 2), ['ok', 'rate-limited: test rule'])
  })

  it('starts a fresh budget once the period has passed', async () => {
    const l = limits({ event: [rule({ limit: 1, period: '100ms' })] })
    assert.deepEqual(await outcomes(l, 1, peer('10.0.0.1'), 2), ['ok', 'rate-limited: test rule'])
    await sleep(400)
    assert.equal(await l.checkEvent(event(1), peer('10.0.0.1')), undefined)
  })

  it('limits nothing when the section is disabled', async () => {
    const l = limits({ enabled: false, max_connections_per_ip: 2, req_per_minute: 1, event: [rule({ limit: 1 })] })
    assert.deepEqual(await outcomes(l, 1, peer('10.0.0.1', ALICE), 5), ['ok', 'ok', 'ok', 'ok', 'ok'])
    for (let i = 0; i < 5; i++) assert.equal(await l.checkRequest('c1'), undefined)
    assert.equal(l.maxConnectionsPerIp, 0)
  })
})

describe('requests and connections', () => {
  it('allows req_per_minute REQ/COUNTs per connection, then refuses with rate-limited:', async () => {
    const l = limits({ req_per_minute: 3 })
    for (let i = 0; i < 3; i++) assert.equal(await l.checkRequest('c1'), undefined)
    assert.equal(await l.checkRequest('c1'), 'rate-limited: at most 3 REQ/COUNT per minute per connection')
    assert.equal(await l.checkRequest('c2'), undefined)
  })

  it('does not limit requests with req_per_minute = 0', async () => {
    const l = limits({ req_per_minute: 0 })
    for (let i = 0; i < 1000; i++) assert.equal(await l.checkRequest('c1'), undefined)
  })

  it('exposes max_connections_per_ip, 100 by default', () => {
    assert.equal(limits({}).maxConnectionsPerIp, 100)
    assert.equal(limits({ max_connections_per_ip: 2 }).maxConnectionsPerIp, 2)
    assert.equal(limits({ max_connections_per_ip: 0 }).maxConnectionsPerIp, 0)
  })
})
