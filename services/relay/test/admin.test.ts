// GET /admin/fingerprint: the store's fingerprint, only with the admin key as a Bearer token (404 otherwise,
// and always without `[admin] key`); `msr-relay fingerprint` prints the same for a stopped relay's store.
import assert from 'node:assert/strict'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { relayConfigSchema } from '../src/config.js'
import { loadConfig } from '@msr/config'
import { newSigner, runCli, sign, startTestRelay, tempDir, TestClient, type TestRelay } from './harness.js'

const KEY = 'admin-key-0123456789abcdef'

const get = async (relay: TestRelay, path: string, headers: Record<string, string> = {}) => {
  const res = await fetch(`http://127.0.0.1:${relay.port}${path}`, { headers })
  return { status: res.status, type: res.headers.get('content-type') ?? '', body: await res.text() }
}

describe('/admin/fingerprint with [admin] key', () => {
  let relay: TestRelay

  before(async () => {
    relay = await startTestRelay({ 'admin.key': KEY })
  })

  after(async () => {
    await relay?.close()
  })

  it('is a 404 without the key, with a wrong one, and with the key as a query parameter', async () => {
    for (const [path, headers] of [
      ['/admin/fingerprint', {}],
      ['/admin/fingerprint', { Authorization: 'Bearer admin-key-0123456789abcdeX' }],
      ['/admin/fingerprint', { Authorization: KEY }],
      [`/admin/fingerprint?auth=${KEY}`, {}],
    ] as const) {
      const res = await get(relay, path, headers)
      assert.equal(res.status, 404, `${path} ${JSON.stringify(headers)}`)
      assert.doesNotMatch(res.body, /admin-key/)
    }
  })

  it('answers the events served and their SHA-256 with the key; the CLI prints the same once the relay is stopped', async () => {
    const empty = JSON.parse((await get(relay, '/admin/fingerprint', { Authorization: `Bearer ${KEY}` })).body) as { events: number; sha256: string }
    assert.equal(empty.events, 0)
    const client = await TestClient.connect(relay.url)
    try {
      for (let i = 0; i < 3; i++) await client.publishOk(sign(newSigner(), { content: `note ${i}` }))
    } finally {
      await client.close()
    }
    const res = await get(relay, '/admin/fingerprint', { Authorization: `Bearer ${KEY}` })
    assert.equal(res.status, 200)
    assert.match(res.type, /^application\/json/)
    const served = JSON.parse(res.body) as { events: number; sha256: string; at: number }
    assert.equal(served.events, 3)
    assert.match(served.sha256, /^[0-9a-f]{64}$/)
    assert.notEqual(served.sha256, empty.sha256)
    await relay.stop()
    const cli = runCli(['fingerprint'], { RELAY_DATA__PATH: relay.dataDir }, relay.dataDir)
    assert.deepEqual(await cli.exited, { code: 0, signal: null }, cli.stderr.join('\n'))
    const printed = JSON.parse(cli.stdout.join('')) as { events: number; sha256: string }
    assert.deepEqual({ events: printed.events, sha256: printed.sha256 }, { events: served.events, sha256: served.sha256 })
  })
})

describe('/admin/fingerprint without [admin] key', () => {
  it('is a 404 whatever is presented', async () => {
    const relay = await startTestRelay()
    try {
      assert.equal((await get(relay, '/admin/fingerprint', { Authorization: 'Bearer ' })).status, 404)
      assert.equal((await get(relay, '/admin/fingerprint', { Authorization: `Bearer ${KEY}` })).status, 404)
    } finally {
      await relay.close()
    }
  })
})

describe('msr-relay fingerprint and [admin] key', () => {
  it('fingerprint and export refuse a data.path that holds no store, instead of creating one', async () => {
    const dir = await tempDir()
    for (const command of ['fingerprint', 'export']) {
      const cli = runCli([command], { RELAY_DATA__PATH: join(dir, 'none') }, dir)
      assert.equal((await cli.exited).code, 2, command)
      assert.match(cli.stderr.join(''), /no store at .*none/, command)
      assert.equal(existsSync(join(dir, 'none')), false, `${command} created nothing`)
    }
  })

  it('a key shorter than 16 characters is refused, naming the key', () => {
    const loaded = loadConfig({ schema: relayConfigSchema, overrides: { 'admin.key': 'short' } })
    assert.equal(loaded.ok, false)
    assert.match(loaded.ok ? '' : loaded.errors.join('\n'), /admin\.key/)
  })
})
