import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { test } from 'node:test'
import { replaceMarkedSection } from '@msr/config'
import { ENV_SECTION, envReference, loadMailboxConfig } from './config.js'

const README = new URL('../../../../README.md', import.meta.url)

test('the README environment reference is the one generated from the schema (npm run docs)', () => {
  const readme = readFileSync(README, 'utf8')
  assert.equal(readme, replaceMarkedSection(readme, ENV_SECTION, envReference()), 'README.md is out of date: run `npm run docs`')
})

test('defaults: port 8081, embedded PostgreSQL, 7-day default and 30-day maximum TTL, local public URL, signatures on the event loop', () => {
  const loaded = loadMailboxConfig({})
  assert.ok(loaded.ok)
  assert.equal(loaded.value.port, 8081)
  assert.equal(loaded.value.databaseUrl, undefined)
  assert.equal(loaded.value.dataDir, './data/postgres')
  assert.equal(loaded.value.defaultTtlSeconds, 7 * 86400)
  assert.equal(loaded.value.maxTtlSeconds, 30 * 86400)
  assert.equal(loaded.value.maxArtifactBytes, 256 * 1024)
  assert.equal(loaded.value.publicUrl, 'http://127.0.0.1:8081')
  assert.equal(loaded.value.verifyWorkers, 0)
})

test('PUBLIC_URL loses a trailing slash; PORT moves the default public URL', () => {
  const explicit = loadMailboxConfig({ PUBLIC_URL: 'https://mailbox.example.com/' })
  assert.ok(explicit.ok)
  assert.equal(explicit.value.publicUrl, 'https://mailbox.example.com')
  const port = loadMailboxConfig({ PORT: '9000' })
  assert.ok(port.ok)
  assert.equal(port.value.publicUrl, 'http://127.0.0.1:9000')
})

test('every bad variable is listed at once, and secrets are never echoed', () => {
  const loaded = loadMailboxConfig({
    PORT: 'eighty',
    ADMIN_TOKEN: 'short-secret',
    ADMIN_IP_ALLOWLIST: '10.0.0.0/8, not-an-ip',
    MAILBOX_DEFAULT_TTL: 'soon',
    PUBLIC_URL: 'ftp://x?y',
    LOG_LEVEL: 'loud',
  })
  assert.equal(loaded.ok, false)
  if (loaded.ok) return
  const text = loaded.errors.join('\n')
  for (const name of ['PORT', 'MAILBOX_DEFAULT_TTL', 'LOG_LEVEL']) assert.match(text, new RegExp(name))
  assert.doesNotMatch(text, /short-secret/)
  const second = loadMailboxConfig({ ADMIN_TOKEN: 'short-secret', ADMIN_IP_ALLOWLIST: 'not-an-ip', PUBLIC_URL: 'ftp://x' })
  assert.equal(second.ok, false)
  if (!second.ok) {
    const all = second.errors.join('\n')
    for (const name of ['ADMIN_TOKEN', 'ADMIN_IP_ALLOWLIST', 'PUBLIC_URL']) assert.match(all, new RegExp(name))
    assert.doesNotMatch(all, /short-secret/)
  }
})

test('a default TTL above the maximum is refused', () => {
  const loaded = loadMailboxConfig({ MAILBOX_DEFAULT_TTL: '40d' })
  assert.equal(loaded.ok, false)
})

test('hint inputs: off by default (push refused, no pull), 100 messages of flow control', () => {
  const loaded = loadMailboxConfig({})
  assert.ok(loaded.ok)
  assert.equal(loaded.value.hintsPushToken, undefined)
  assert.equal(loaded.value.hintsPushServiceAccount, undefined)
  assert.deepEqual(loaded.value.hintsSubscriptions, [])
  assert.equal(loaded.value.hintsMaxMessages, 100)
  const full = loadMailboxConfig({
    HINTS_PUSH_TOKEN: 'a-push-token-long-enough',
    HINTS_PUSH_SERVICE_ACCOUNT: 'push@p.iam.gserviceaccount.com',
    HINTS_PUSH_AUDIENCE: 'https://mailbox.example.com/internal/pubsub/push',
    HINTS_SUBSCRIPTION: 'projects/p/subscriptions/mailbox-hints',
    HINTS_MAX_MESSAGES: '20',
  })
  assert.ok(full.ok, full.ok ? '' : full.errors.join('\n'))
  assert.equal(full.value.hintsMaxMessages, 20)
  assert.deepEqual(full.value.hintsSubscriptions, ['projects/p/subscriptions/mailbox-hints'])
})

test('HINTS_SUBSCRIPTION takes several subscriptions, comma-separated, and names each bad one', () => {
  const loaded = loadMailboxConfig({ HINTS_SUBSCRIPTION: 'mailbox-group-hints, projects/p/subscriptions/mailbox-dm-hints,' })
  assert.ok(loaded.ok)
  assert.deepEqual(loaded.value.hintsSubscriptions, ['mailbox-group-hints', 'projects/p/subscriptions/mailbox-dm-hints'])
  const bad = loadMailboxConfig({ HINTS_SUBSCRIPTION: 'good,projects/p/topics/t' })
  assert.equal(bad.ok, false)
  assert.match(bad.ok ? '' : bad.errors.join('\n'), /"projects\/p\/topics\/t" is not a subscription/)
})

test('hint settings are checked: token length, service account email, audience needs the account, subscription name', () => {
  const loaded = loadMailboxConfig({
    HINTS_PUSH_TOKEN: 'short-push',
    HINTS_PUSH_AUDIENCE: 'https://mailbox.example.com/internal/pubsub/push',
    HINTS_SUBSCRIPTION: 'projects/p/topics/t',
    HINTS_MAX_MESSAGES: '0',
  })
  assert.equal(loaded.ok, false)
  if (loaded.ok) return
  const text = loaded.errors.join('\n')
  for (const name of ['HINTS_PUSH_TOKEN', 'HINTS_PUSH_AUDIENCE', 'HINTS_SUBSCRIPTION', 'HINTS_MAX_MESSAGES']) assert.match(text, new RegExp(name))
  assert.doesNotMatch(text, /short-push/)
  const email = loadMailboxConfig({ HINTS_PUSH_SERVICE_ACCOUNT: 'not-an-email' })
  assert.equal(email.ok, false)
})

test('the push OIDC token is verified by default: a service account alone needs an audience, or HINTS_PUSH_IAM_VERIFIED=true', () => {
  const account = 'push@p.iam.gserviceaccount.com'
  const alone = loadMailboxConfig({ HINTS_PUSH_SERVICE_ACCOUNT: account })
  assert.equal(alone.ok, false)
  assert.match(alone.ok ? '' : alone.errors.join('\n'), /HINTS_PUSH_SERVICE_ACCOUNT: needs HINTS_PUSH_AUDIENCE .* or HINTS_PUSH_IAM_VERIFIED=true/)
  assert.ok(loadMailboxConfig({ HINTS_PUSH_SERVICE_ACCOUNT: account, HINTS_PUSH_AUDIENCE: 'https://m.example.com/internal/pubsub/push' }).ok)
  assert.ok(loadMailboxConfig({ HINTS_PUSH_SERVICE_ACCOUNT: account, HINTS_PUSH_IAM_VERIFIED: 'true' }).ok)
  assert.equal(loadMailboxConfig({ HINTS_PUSH_SERVICE_ACCOUNT: account, HINTS_PUSH_IAM_VERIFIED: 'yes' }).ok, false)
})

test('duration variables are refused outside their range: a janitor interval of 0 would spin, past 24 days Node fires at once', () => {
  for (const [name, bad] of [['MAILBOX_JANITOR_INTERVAL', '0'], ['MAILBOX_JANITOR_INTERVAL', '30d'], ['MAILBOX_DEFAULT_TTL', '0'], ['MAILBOX_MAX_TTL', '500ms']] as const) {
    const loaded = loadMailboxConfig({ [name]: bad })
    assert.equal(loaded.ok, false, `${name}=${bad}`)
    if (!loaded.ok) assert.match(loaded.errors.join('\n'), new RegExp(`${name}.*expected a duration (from|of at least)`), `${name}=${bad}`)
  }
  const fine = loadMailboxConfig({ MAILBOX_JANITOR_INTERVAL: '24d' })
  assert.ok(fine.ok, fine.ok ? '' : fine.errors.join('\n'))
})
