// The access-control sections of the relay configuration: [auth], [network] public_url, [metrics], [rate_limiter].
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, describe, it } from 'node:test'
import { npubEncode } from 'nostr-tools/nip19'
import { loadRelayConfig } from './config.js'

const dir = mkdtempSync(join(tmpdir(), 'relay-config-auth-'))
after(() => rmSync(dir, { recursive: true, force: true }))

let files = 0

/** Loads a TOML text as the relay would (no environment). */
const load = (toml: string) => {
  const file = join(dir, `relay-${++files}.toml`)
  writeFileSync(file, toml)
  return loadRelayConfig(file, {})
}

/** The configuration of a TOML text that must be valid. */
const valid = (toml: string) => {
  const loaded = load(toml)
  assert.ok(loaded.ok, loaded.ok ? '' : loaded.errors.join('\n'))
  return loaded.value
}

/** The problems of a TOML text that must be refused. */
const problems = (toml: string): string[] => {
  const loaded = load(toml)
  assert.equal(loaded.ok, false, 'expected the configuration to be refused')
  return loaded.ok ? [] : loaded.errors
}

/** Asserts one problem line names `path` and matches `message`. */
const hasProblem = (errors: string[], path: string, message: RegExp) =>
  assert.ok(
    errors.some(line => line.startsWith(`${path}:`) && message.test(line)),
    `expected a problem at ${path} matching ${message}; got:\n${errors.join('\n')}`,
  )

const ALICE = 'a'.repeat(64)

describe('[auth] and [network] public_url', () => {
  it('is off by default, with the spec private kinds and 445 gated', () => {
    const config = valid('')
    assert.equal(config.auth.enabled, false)
    assert.equal(config.auth.required, false)
    assert.deepEqual(config.auth.private_kinds, [446, 1059, 444])
    assert.deepEqual(config.auth.auth_required_kinds, [445])
    assert.equal(config.network.trusted_proxies, 0)
  })

  it('needs network.public_url when auth is enabled', () => {
    hasProblem(problems('[auth]\nenabled = true\n'), 'network.public_url', /required when auth\.enabled/)
    const config = valid('[network]\npublic_url = "wss://relay.example.com"\n[auth]\nenabled = true\n')
    assert.equal(config.network.public_url, 'wss://relay.example.com')
  })

  it('refuses a public_url that is not a ws:// or wss:// URL', () => {
    for (const url of ['relay.example.com', 'ftp://relay.example.com', 'wss://', 'not a url', 'mailto:ops@example.com'])
      hasProblem(problems(`[network]\npublic_url = "${url}"\n[auth]\nenabled = true\n`), 'network.public_url', /ws:\/\/ or wss:\/\//)
  })

  it('accepts ws, wss and their http(s) spellings with ports and paths', () => {
    for (const url of ['ws://127.0.0.1:8080', 'wss://relay.example.com/nostr', 'https://relay.example.com', 'wss://[::1]:7000/'])
      valid(`[network]\npublic_url = "${url}"\n[auth]\nenabled = true\n`)
  })

  it('auth.required needs auth.enabled', () => {
    hasProblem(problems('[auth]\nrequired = true\n'), 'auth.required', /needs auth\.enabled/)
    valid('[network]\npublic_url = "wss://r.example"\n[auth]\nenabled = true\nrequired = true\n')
  })

  it('stores pubkeys given as npub or any-case hex as lowercase hex', () => {
    const npub = npubEncode(ALICE)
    const hexUpper = 'B'.repeat(64)
    const config = valid(
      `[auth.req]\npubkey_whitelist = ["${npub}", "${hexUpper}"]\n` +
        `[auth.event]\npubkey_blacklist = ["${npub}"]\nevent_pubkey_whitelist = ["${npub}"]\nevent_pubkey_blacklist = ["${hexUpper}"]\n`,
    )
    assert.deepEqual(config.auth.req.pubkey_whitelist, [ALICE, 'b'.repeat(64)])
    assert.deepEqual(config.auth.event.pubkey_blacklist, [ALICE])
    assert.deepEqual(config.auth.event.event_pubkey_whitelist, [ALICE])
    assert.deepEqual(config.auth.event.event_pubkey_blacklist, ['b'.repeat(64)])
  })

  it('refuses a malformed pubkey, naming its place in the list', () => {
    const errors = problems(`[auth.event]\nevent_pubkey_whitelist = ["${ALICE}", "npub1nope", "abc"]\n`)
    hasProblem(errors, 'auth.event.event_pubkey_whitelist[1]', /pubkey/)
    hasProblem(errors, 'auth.event.event_pubkey_whitelist[2]', /pubkey/)
    assert.equal(errors.length, 2)
  })

  it('accepts IPv4/IPv6 addresses and CIDR ranges, and lists every bad one with its path', () => {
    const config = valid('[auth.req]\nip_whitelist = ["10.0.0.0/8", "192.0.2.1", "2001:db8::/32", "::1", "0.0.0.0/0", "::/0"]\n')
    assert.equal(config.auth.req.ip_whitelist.length, 6)
    const errors = problems(
      '[auth.req]\nip_whitelist = ["10.0.0.0/8", "10.0.0.0/33"]\n' +
        '[auth.event]\nip_blacklist = ["example.com", "2001:db8::/129", "1.2.3.4/8/1", "300.1.1.1", "10.0.0.0/x"]\n' +
        '[[rate_limiter.event]]\nname = "r"\nlimit = 1\nip_whitelist = ["10.0.0.1/-1"]\n',
    )
    hasProblem(errors, 'auth.req.ip_whitelist[1]', /IP address or CIDR range/)
    for (const i of [0, 1, 2, 3, 4]) hasProblem(errors, `auth.event.ip_blacklist[${i}]`, /IP address or CIDR range/)
    hasProblem(errors, 'rate_limiter.event[0].ip_whitelist[0]', /IP address or CIDR range/)
    assert.equal(errors.length, 7)
  })

  it('refuses unknown keys in the permission blocks', () => {
    hasProblem(problems('[auth.req]\nip_whitelists = []\n'), 'auth.req.ip_whitelists', /unknown key/)
  })
})

describe('[metrics]', () => {
  it('needs a key of at least 16 characters when enabled', () => {
    hasProblem(problems('[metrics]\nenabled = true\n'), 'metrics.auth', /at least 16 characters/)
    hasProblem(problems('[metrics]\nenabled = true\nauth = "fifteen-chars!!"\n'), 'metrics.auth', /at least 16 characters/)
    assert.equal(valid('[metrics]\nenabled = true\nauth = "sixteen-chars!!!"\n').metrics.auth, 'sixteen-chars!!!')
    assert.equal(valid('[metrics]\nenabled = false\n').metrics.enabled, false)
  })

  it('never echoes the key in a problem', () => {
    const errors = problems('[metrics]\nenabled = true\nauth = "short-SECRET"\n')
    assert.ok(!errors.join('\n').includes('short-SECRET'), errors.join('\n'))
  })
})

describe('[rate_limiter]', () => {
  it('reads the spec rules: name, description, period, limit, kinds with ranges, ip_whitelist', () => {
    const config = valid(
      '[rate_limiter]\nmax_connections_per_ip = 5\nreq_per_minute = 60\n' +
        '[[rate_limiter.event]]\nname = "mls_group_messages"\ndescription = "MLS messages (kind 445)"\nperiod = "1m"\nlimit = 100\nkinds = [445]\n' +
        '[[rate_limiter.event]]\nname = "addressable"\nperiod = "10s"\nlimit = 5\nkinds = [[30000, 39999], 1]\nip_whitelist = ["10.0.0.0/8"]\n',
    )
    assert.equal(config.rate_limiter.enabled, true)
    assert.equal(config.rate_limiter.max_connections_per_ip, 5)
    assert.equal(config.rate_limiter.req_per_minute, 60)
    assert.deepEqual(config.rate_limiter.event, [
      { name: 'mls_group_messages', description: 'MLS messages (kind 445)', period: 60_000, limit: 100, kinds: [445], ip_whitelist: [] },
      { name: 'addressable', description: '', period: 10_000, limit: 5, kinds: [[30000, 39999], 1], ip_whitelist: ['10.0.0.0/8'] },
    ])
  })

  it('refuses an unknown key in a [[rate_limiter.event]] rule, naming the rule', () => {
    const errors = problems('[[rate_limiter.event]]\nname = "ok"\nlimit = 1\n[[rate_limiter.event]]\nname = "bad"\nlimit = 1\nfreq = 10\n')
    hasProblem(errors, 'rate_limiter.event[1].freq', /unknown key/)
    assert.equal(errors.length, 1)
  })

  it('refuses a rule without a name or limit, a zero limit, a bad period and kinds out of range', () => {
    const errors = problems('[[rate_limiter.event]]\nperiod = "soon"\nkinds = [70000, [1, 2, 3]]\n[[rate_limiter.event]]\nname = "z"\nlimit = 0\n')
    hasProblem(errors, 'rate_limiter.event[0].name', /missing required key/)
    hasProblem(errors, 'rate_limiter.event[0].limit', /missing required key/)
    hasProblem(errors, 'rate_limiter.event[0].period', /duration/)
    assert.ok(errors.some(line => line.startsWith('rate_limiter.event[0].kinds[0]')), errors.join('\n'))
    assert.ok(errors.some(line => line.startsWith('rate_limiter.event[0].kinds[1]')), errors.join('\n'))
    hasProblem(errors, 'rate_limiter.event[1].limit', />= 1/)
  })
})
