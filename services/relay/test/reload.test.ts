// `msr-relay serve --config FILE --watch`: reloadable keys apply live, invalid files and restart-only keys are logged.
import assert from 'node:assert/strict'
import { rename, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { upgradeStatus } from './client-helpers.js'
import { authEvent, freePort, newSigner, now, runCli, sign, stopCli, tempDir, TEST_PUBLIC_URL, TestClient, waitUntil, withTimeout, type CliProcess, type LogRecord } from './harness.js'

/** Reloads are noticed through the file system: allow for slow machines. */
const RELOAD_CAP_MS = 30_000

describe('serve --watch', () => {
  let dir: string
  let file: string
  let port: number
  let cli: CliProcess
  let client: TestClient
  const author = newSigner()

  /** The configuration file: the listener and store (as started unless given), then the sections a step sets. */
  const configFile = (sections: string, listen: { port?: number; data?: string; network?: string } = {}) =>
    `[network]\nhost = "127.0.0.1"\nport = ${listen.port ?? port}\n${listen.network ?? ''}` +
    `[data]\npath = "${listen.data ?? join(dir, 'data')}"\n` +
    `[verification]\nworkers = 1\n[log]\nlevel = "info"\n${sections}\n`

  /**
   * Rewrites the file, in place (as `echo >` would) or by renaming a new file over it (as editors do),
   * and returns the log position to look from.
   */
  const rewrite = async (text: string, how: 'in-place' | 'rename' = 'in-place'): Promise<number> => {
    const from = cli.stdout.length
    if (how === 'in-place') await writeFile(file, text)
    else {
      await writeFile(`${file}.new`, text)
      await rename(`${file}.new`, file)
    }
    return from
  }

  /** The first JSON log line written after position `from` that matches. */
  const logAfter = async (from: number, predicate: (r: LogRecord) => boolean, what: string): Promise<LogRecord> => {
    let found: LogRecord | undefined
    await waitUntil(
      () => {
        for (const line of cli.stdout.slice(from)) {
          try {
            const record = JSON.parse(line) as LogRecord
            if (predicate(record)) return Boolean((found = record))
          } catch {
            // not a log line
          }
        }
        return false
      },
      what,
      RELOAD_CAP_MS,
    )
    return found as LogRecord
  }

  const served = async (c = client) => (await c.query({ authors: [author.pubkey], limit: 100 })).length

  before(async () => {
    dir = await tempDir('msr-relay-reload-')
    file = join(dir, 'relay.toml')
    port = await freePort()
    await writeFile(file, configFile('[limitation]\nmax_limit = 5\n'))
    cli = runCli(['serve', '--config', file, '--watch'], {}, dir)
    await cli.waitForLog(r => r.message === 'relay listening')
    client = await TestClient.connect(`ws://127.0.0.1:${port}`)
  })

  after(async () => {
    await client?.close()
    if (cli) await stopCli(cli)
    await rm(dir, { recursive: true, force: true })
  })

  it('starts with max_limit = 5: a REQ for 8 stored events returns 5', async () => {
    for (let i = 0; i < 8; i++) await client.publishOk(sign(author, { content: `note ${i}`, created_at: now() - i }))
    assert.equal(await served(), 5)
  })

  it('applies max_limit = 2 from the rewritten file without a restart', async () => {
    const from = await rewrite(configFile('[limitation]\nmax_limit = 2\n'))
    await waitUntil(async () => (await served()) === 2, 'max_limit = 2 to take effect', RELOAD_CAP_MS)
    const log = await logAfter(from, r => r.message === 'configuration reloaded', 'the reload log line')
    assert.deepEqual(log.applied, ['limitation.max_limit'])
    const doc = (await (await fetch(`http://127.0.0.1:${port}/`, { headers: { Accept: 'application/nostr+json' } })).json()) as {
      limitation: { max_limit: number }
    }
    assert.equal(doc.limitation.max_limit, 2)
    assert.equal(cli.child.exitCode, null, 'the same process is serving')
  })

  it('keeps running with the old configuration when the new file is invalid, and logs every problem', async () => {
    const from = await rewrite(configFile('[limitation]\nmax_limit = "lots"\nmax_limt = 7\n'))
    const log = await logAfter(from, r => r.message === 'configuration change rejected; the running configuration is kept', 'the rejection log line')
    const errors = (log.errors as string[]).join('\n')
    assert.match(errors, /limitation\.max_limit: expected number, received string/)
    assert.match(errors, /limitation\.max_limt: unknown key/)
    assert.equal(log.severity, 'ERROR')
    assert.equal(await served(), 2)
    assert.equal(cli.child.exitCode, null)
    // A broken TOML file is no different.
    const from2 = await rewrite('[limitation\nmax_limit = 1\n')
    await logAfter(from2, r => r.message === 'configuration change rejected; the running configuration is kept', 'the second rejection')
    assert.equal(await served(), 2)
  })

  it('names [network] port and [data] path as needing a restart and does not apply them, applying the rest', async () => {
    const otherPort = await freePort()
    const otherData = join(dir, 'elsewhere')
    const from = await rewrite(configFile('[limitation]\nmax_limit = 3\n', { port: otherPort, data: otherData }), 'rename')
    const log = await logAfter(from, r => r.message === 'configuration keys changed that apply only after a restart', 'the restart warning')
    assert.deepEqual((log.keys as string[]).sort(), ['data.path', 'network.port'])
    assert.equal(log.severity, 'WARNING')
    // Still on the old port and the old store; the limitation change in the same file applied.
    await waitUntil(async () => (await served()) === 3, 'max_limit = 3 to take effect', RELOAD_CAP_MS)
    const fresh = await TestClient.connect(`ws://127.0.0.1:${port}`)
    try {
      assert.equal(await served(fresh), 3)
    } finally {
      await fresh.close()
    }
    await assert.rejects(TestClient.connect(`ws://127.0.0.1:${otherPort}`))
  })

  it('applies a new rate limit rule live', async () => {
    const rule = '[[rate_limiter.event]]\nname = "notes"\ndescription = "notes (reloaded)"\nperiod = "1m"\nlimit = 1\nkinds = [1]\n'
    await rewrite(configFile(`[limitation]\nmax_limit = 3\n${rule}`))
    // Until the reload, every note is accepted; after it, at most one more is.
    await waitUntil(
      async () => (await client.publish(sign(author, { content: `probe ${Math.random()}` })))[3] === 'rate-limited: notes (reloaded)',
      'the rate limit to take effect',
      RELOAD_CAP_MS,
      200,
    )
    assert.equal((await client.publish(sign(newSigner(), { kind: 1 })))[3], 'rate-limited: notes (reloaded)')
    await client.publishOk(sign(newSigner(), { kind: 7 }))
  })

  it('applies enabling NIP-42 and an [auth.event] pubkey_blacklist live', async () => {
    const banned = newSigner()
    const from = await rewrite(
      configFile(
        `[limitation]\nmax_limit = 3\n[auth]\nenabled = true\n[auth.event]\npubkey_blacklist = ["${banned.pubkey}"]\n` +
          // An IPv4-mapped entry once made the rule compiler throw, killing the process from the watcher.
          '[auth.req]\nip_blacklist = ["::ffff:192.0.2.1"]\n',
        {
          network: `public_url = "${TEST_PUBLIC_URL}"\n`,
        },
      ),
      'rename',
    )
    const log = await logAfter(from, r => r.message === 'configuration reloaded', 'the reload log line')
    assert.deepEqual((log.applied as string[]).sort(), [
      'auth.enabled',
      'auth.event.pubkey_blacklist',
      'auth.req.ip_blacklist',
      'network.public_url',
      'rate_limiter.event',
    ])
    const bannedClient = await TestClient.connect(`ws://127.0.0.1:${port}`)
    const allowedClient = await TestClient.connect(`ws://127.0.0.1:${port}`)
    try {
      await bannedClient.authOk(banned)
      const refused = sign(banned, { content: 'from a banned identity' })
      assert.deepEqual(await bannedClient.publish(refused), ['OK', refused.id, false, 'restricted: publishing is not allowed for your pubkey'])
      await allowedClient.authOk(newSigner())
      await allowedClient.publishOk(sign(banned, { content: 'authored by the banned key, sent by someone else' }))
    } finally {
      await Promise.all([bannedClient.close(), allowedClient.close()])
    }
  })

  it('a connection opened before auth was enabled cannot authenticate without a challenge, and gets one when asked to authenticate', async () => {
    const empty = authEvent(newSigner(), '', TEST_PUBLIC_URL)
    client.send(['AUTH', empty])
    const answer = await client.next(m => m[0] === 'OK' && m[1] === empty.id)
    assert.equal(answer[2], false, 'an AUTH event with an empty challenge tag must not authenticate')
    const mls = sign(newSigner(), { kind: 445 })
    assert.match((await client.publish(mls))[3], /^auth-required: /)
    await client.authOk(newSigner())
    await client.publishOk(sign(newSigner(), { kind: 445 }))
  })

  it('still serves after all of it, from the same process', async () => {
    assert.equal((await upgradeStatus(`ws://127.0.0.1:${port}`)).status, 101)
    assert.equal(cli.child.exitCode, null)
  })
})

describe('serve --watch without a configuration file', () => {
  let dir: string

  before(async () => {
    dir = await tempDir('msr-relay-reload-')
  })
  after(() => rm(dir, { recursive: true, force: true }))

  it('fails with a clear message when the default file does not exist', async () => {
    const cli = runCli(['serve', '--watch'], { RELAY_DATA__PATH: join(dir, 'never') }, dir)
    const { code } = await withTimeout(cli.exited, 'the CLI to exit')
    assert.notEqual(code, 0)
    assert.match(cli.stderr.join('\n'), /--watch needs a configuration file; config\/relay\.toml does not exist/)
  })

  it('fails, naming the file, when the --config file does not exist', async () => {
    const missing = join(dir, 'absent.toml')
    const cli = runCli(['serve', '--config', missing, '--watch'], { RELAY_DATA__PATH: join(dir, 'never') }, dir)
    const { code } = await withTimeout(cli.exited, 'the CLI to exit')
    assert.notEqual(code, 0)
    assert.ok(cli.stderr.join('\n').includes(missing), cli.stderr.join('\n'))
  })
})
