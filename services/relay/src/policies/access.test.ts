import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { npubEncode } from 'nostr-tools/nip19'
import { finalizeEvent, generateSecretKey, getPublicKey } from 'nostr-tools/pure'
import { toJson, type NostrEvent } from '@msr/nostr'
import { relayConfigSchema } from '../config.js'
import { storedKind } from '../store/stored-json.js'
import { checkRead, checkWrite, compileAccess, visibleTo, type Peer } from './access.js'

const secret = generateSecretKey()
const AUTHOR = getPublicKey(secret)
const ALICE = 'a'.repeat(64)
const BOB = 'b'.repeat(64)
const URL = 'wss://relay.example.com'

/** Compiled `[auth]` rules of a configuration built from these sections. */
const rules = (sections: Record<string, unknown> = {}) => compileAccess(relayConfigSchema.parse(sections))

/** Rules with NIP-42 enabled, plus the given `[auth]` keys. */
const authRules = (auth: Record<string, unknown> = {}) => rules({ network: { public_url: URL }, auth: { enabled: true, ...auth } })

const peer = (ip: string, ...authed: string[]): Peer => ({ ip, authed: new Set(authed) })
const anon = peer('10.0.0.1')

const signed = (kind = 1, tags: string[][] = [], content = ''): NostrEvent => {
  const { id, pubkey, created_at, sig } = finalizeEvent({ kind, tags, content, created_at: 1_700_000_000 }, secret)
  return { id, pubkey, created_at, kind, tags, content, sig }
}

/** The prefix of a refusal, or 'ok'. */
const verdict = (reason: string | undefined): string => (reason === undefined ? 'ok' : (reason.split(':')[0] ?? reason))

describe('checkRead', () => {
  it('lets anyone read public kinds by default', () => {
    assert.equal(checkRead(rules(), anon, [[1], undefined]), undefined)
    assert.equal(checkRead(rules(), anon, []), undefined)
  })

  it('asks an unauthenticated reader of a private kind to authenticate, naming the kind', () => {
    const reason = checkRead(authRules(), anon, [[1], [1059, 446]])
    assert.match(reason ?? '', /^auth-required: .*kind 1059/)
    assert.equal(checkRead(authRules(), anon, [undefined, [444]])?.startsWith('auth-required: '), true)
  })

  it('says restricted: for private kinds when the relay cannot authenticate anyone', () => {
    assert.equal(verdict(checkRead(rules(), anon, [[446]])), 'restricted')
  })

  it('lets an authenticated reader ask for private kinds (what it receives is filtered by visibleTo)', () => {
    assert.equal(checkRead(authRules(), peer('10.0.0.1', ALICE), [[446, 1059, 444]]), undefined)
  })

  it('follows a configured private_kinds list', () => {
    const r = authRules({ private_kinds: [4] })
    assert.equal(verdict(checkRead(r, anon, [[4]])), 'auth-required')
    assert.equal(checkRead(r, anon, [[446, 1059]]), undefined)
  })

  it('refuses addresses on the ip_blacklist (addresses and ranges, IPv4 and IPv6), even when authenticated', () => {
    const r = authRules({ req: { ip_blacklist: ['192.0.2.0/24', '2001:db8::/32', '10.0.0.9'] } })
    for (const ip of ['192.0.2.200', '2001:db8:5::1', '10.0.0.9'])
      assert.equal(checkRead(r, peer(ip, ALICE), [[1]]), 'restricted: reading is not allowed from your address', ip)
    for (const ip of ['192.0.3.1', '2001:db9::1', '10.0.0.10']) assert.equal(checkRead(r, peer(ip), [[1]]), undefined, ip)
  })

  it('refuses addresses outside a non-empty ip_whitelist', () => {
    const r = rules({ auth: { req: { ip_whitelist: ['10.0.0.0/8', 'fd00::/8'] } } })
    assert.equal(checkRead(r, peer('10.200.0.1'), [[1]]), undefined)
    assert.equal(checkRead(r, peer('fd12::1'), [[1]]), undefined)
    assert.equal(verdict(checkRead(r, peer('11.0.0.1'), [[1]])), 'restricted')
    assert.equal(verdict(checkRead(r, peer('fe80::1'), [[1]])), 'restricted')
  })

  it('the blacklist wins over the whitelist', () => {
    const r = rules({ auth: { req: { ip_whitelist: ['10.0.0.0/8'], ip_blacklist: ['10.6.6.0/24'] } } })
    assert.equal(verdict(checkRead(r, peer('10.6.6.6'), [[1]])), 'restricted')
    assert.equal(checkRead(r, peer('10.6.7.6'), [[1]]), undefined)
  })

  it('with a pubkey_whitelist asks to authenticate, then admits only listed pubkeys (npub or hex in the config)', () => {
    const r = authRules({ req: { pubkey_whitelist: [npubEncode(ALICE)] } })
    assert.equal(verdict(checkRead(r, anon, [[1]])), 'auth-required')
    assert.equal(checkRead(r, peer('10.0.0.1', BOB), [[1]]), 'restricted: reading is not allowed for your pubkey')
    assert.equal(checkRead(r, peer('10.0.0.1', ALICE), [[1]]), undefined)
    assert.equal(checkRead(r, peer('10.0.0.1', BOB, ALICE), [[1]]), undefined, 're-authenticated as a listed pubkey')
  })

  it('refuses a connection authenticated as a blacklisted pubkey, even alongside another', () => {
    const r = authRules({ req: { pubkey_blacklist: [BOB] } })
    assert.equal(checkRead(r, anon, [[1]]), undefined)
    assert.equal(checkRead(r, peer('10.0.0.1', ALICE), [[1]]), undefined)
    assert.equal(checkRead(r, peer('10.0.0.1', ALICE, BOB), [[1]]), 'restricted: reading is not allowed for your pubkey')
  })

  it('with auth.required every reader must authenticate first', () => {
    const r = authRules({ required: true })
    assert.equal(verdict(checkRead(r, anon, [[1]])), 'auth-required')
    assert.equal(checkRead(r, peer('10.0.0.1', ALICE), [[1]]), undefined)
  })

  it('is not affected by the [auth.event] lists', () => {
    const r = authRules({ event: { ip_blacklist: ['10.0.0.0/8'], pubkey_whitelist: [ALICE] } })
    assert.equal(checkRead(r, peer('10.0.0.1', BOB), [[1]]), undefined)
  })
})

describe('checkWrite', () => {
  it('accepts public events from anyone by default, and refuses kind 445 until the connection authenticates', () => {
    assert.equal(checkWrite(authRules(), anon, signed(1)), undefined)
    assert.match(checkWrite(authRules(), anon, signed(445)) ?? '', /^auth-required: .*kind 445/)
    assert.equal(checkWrite(authRules(), peer('10.0.0.1', ALICE), signed(445)), undefined, 'any authenticated pubkey: 445 is signed by throwaway keys')
  })

  it('says restricted: for kind 445 when authentication is off, and accepts it with auth_required_kinds = []', () => {
    assert.equal(verdict(checkWrite(rules(), anon, signed(445))), 'restricted')
    assert.equal(checkWrite(rules({ auth: { auth_required_kinds: [] } }), anon, signed(445)), undefined)
  })

  it('refuses addresses by the [auth.event] ip lists', () => {
    const r = rules({ auth: { event: { ip_blacklist: ['2001:db8::/48'], ip_whitelist: ['2001:db8::/32', '127.0.0.1'] } } })
    assert.equal(checkWrite(r, peer('127.0.0.1'), signed()), undefined)
    assert.equal(checkWrite(r, peer('2001:db8:1::1'), signed()), undefined)
    assert.equal(checkWrite(r, peer('2001:db8::1'), signed()), 'restricted: publishing is not allowed from your address')
    assert.equal(checkWrite(r, peer('127.0.0.2'), signed()), 'restricted: publishing is not allowed from your address')
  })

  it('applies the [auth.event] NIP-42 pubkey lists to the connection, not to the author', () => {
    const white = authRules({ event: { pubkey_whitelist: [ALICE] } })
    assert.equal(verdict(checkWrite(white, anon, signed())), 'auth-required')
    assert.equal(verdict(checkWrite(white, peer('10.0.0.1', AUTHOR), signed())), 'restricted')
    assert.equal(checkWrite(white, peer('10.0.0.1', ALICE), signed()), undefined)
    const black = authRules({ event: { pubkey_blacklist: [AUTHOR] } })
    assert.equal(checkWrite(black, anon, signed()), undefined)
    assert.equal(verdict(checkWrite(black, peer('10.0.0.1', AUTHOR), signed())), 'restricted')
  })

  it('applies the event author lists to the event pubkey', () => {
    const white = rules({ auth: { event: { event_pubkey_whitelist: [npubEncode(AUTHOR)] } } })
    assert.equal(checkWrite(white, anon, signed()), undefined)
    const other = rules({ auth: { event: { event_pubkey_whitelist: [ALICE] } } })
    assert.equal(checkWrite(other, anon, signed()), 'restricted: events by this author are not accepted here')
    const black = rules({ auth: { event: { event_pubkey_blacklist: [AUTHOR.toUpperCase()] } } })
    assert.equal(checkWrite(black, peer('10.0.0.1', AUTHOR), signed()), 'restricted: events by this author are not accepted here')
  })

  it('with auth.required refuses every event until the connection authenticates', () => {
    const r = authRules({ required: true, auth_required_kinds: [] })
    assert.equal(verdict(checkWrite(r, anon, signed())), 'auth-required')
    assert.equal(checkWrite(r, peer('10.0.0.1', ALICE), signed()), undefined)
  })

  it('accepts a NIP-70 protected event only from a connection authenticated as its author', () => {
    const event = signed(1, [['-']])
    assert.equal(verdict(checkWrite(authRules(), anon, event)), 'auth-required')
    assert.equal(verdict(checkWrite(rules(), anon, event)), 'restricted')
    assert.equal(verdict(checkWrite(authRules(), peer('10.0.0.1', ALICE), event)), 'restricted')
    assert.equal(checkWrite(authRules(), peer('10.0.0.1', ALICE, AUTHOR), event), undefined)
    // ["-", "x"] is not the protected marker.
    assert.equal(checkWrite(authRules(), anon, signed(1, [['-', 'x']])), undefined)
  })

  it('is not affected by the [auth.req] lists', () => {
    const r = rules({ auth: { req: { ip_blacklist: ['0.0.0.0/0'] } } })
    assert.equal(checkWrite(r, anon, signed()), undefined)
  })
})

describe('visibleTo', () => {
  const privateKinds = new Set([446, 1059, 444])

  it('shows public kinds to everyone, authenticated or not', () => {
    assert.equal(visibleTo(privateKinds, new Set(), signed(1, [['p', ALICE]])), true)
  })

  it('shows a private kind to its author and to p-tagged recipients only', () => {
    const dm = signed(1059, [['p', ALICE], ['e', BOB]])
    assert.equal(visibleTo(privateKinds, new Set([AUTHOR]), dm), true)
    assert.equal(visibleTo(privateKinds, new Set([ALICE]), dm), true)
    assert.equal(visibleTo(privateKinds, new Set([BOB]), dm), false, 'an e tag is not a recipient')
    assert.equal(visibleTo(privateKinds, new Set(), dm), false)
    assert.equal(visibleTo(privateKinds, new Set([BOB, ALICE]), dm), true, 'one of the proved pubkeys is a recipient')
  })

  it('does not take other tag names or valueless p tags for recipients', () => {
    const dm = signed(446, [['P', BOB], ['p'], ['pubkey', BOB]])
    assert.equal(visibleTo(privateKinds, new Set([BOB]), dm), false)
  })
})

describe('storedKind', () => {
  const kinds = [0, 1, 3, 4, 7, 9, 10, 99, 100, 444, 445, 446, 999, 1000, 1059, 9999, 10002, 20000, 22242, 30000, 39999, 40000, 65534, 65535]

  it('reads the kind of the canonical JSON of every kind', () => {
    for (const kind of kinds) assert.equal(storedKind(Buffer.from(toJson(signed(kind)))), kind, `kind ${kind}`)
  })

  it('is not misled by "kind" in tags or content, nor by created_at 0', () => {
    const decoy = ',"kind":12345,'
    for (const kind of [0, 446, 65535]) {
      const event = signed(kind, [['x', decoy]], `{"kind":777}${decoy}`)
      assert.equal(storedKind(Buffer.from(toJson(event))), kind)
      assert.equal(storedKind(Buffer.from(toJson({ ...event, created_at: 0 }))), kind)
    }
  })
})
