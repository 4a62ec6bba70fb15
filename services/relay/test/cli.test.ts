// The msr-relay command line: configuration errors, environment overrides, PORT.
import assert from 'node:assert/strict'
import { rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { freePort, newSigner, runCli, serveCli, sign, stopCli, tempDir, TestClient, withTimeout, type CliProcess } from './harness.js'

describe('msr-relay serve', () => {
  let dir: string
  const running: CliProcess[] = []

  before(async () => {
    dir = await tempDir('msr-relay-cli-')
  })

  after(async () => {
    await Promise.all(running.map(stopCli))
    await rm(dir, { recursive: true, force: true })
  })

  const serve = async (port: number, env: Record<string, string>, args: string[] = []) => {
    const cli = await serveCli(port, { RELAY_DATA__PATH: join(dir, `data-${port}`), ...env }, dir, args)
    running.push(cli)
    return cli
  }

  it('refuses a config file with an unknown key and a wrong type, printing both, and exits non-zero', async () => {
    const file = join(dir, 'bad.toml')
    await writeFile(file, '[limitation]\nmax_limit = "lots"\n\n[network]\nbogus_key = 1\n')
    const cli = runCli(['serve', '--config', file], { RELAY_DATA__PATH: join(dir, 'never') }, dir)
    const { code } = await withTimeout(cli.exited, 'the CLI to exit')
    assert.notEqual(code, 0)
    const stderr = cli.stderr.join('\n')
    assert.match(stderr, /limitation\.max_limit/)
    assert.match(stderr, /network\.bogus_key/)
    assert.match(stderr, /unknown/i)
  })

  it('refuses a missing --config file and exits non-zero', async () => {
    const cli = runCli(['serve', '--config', join(dir, 'absent.toml')], { RELAY_DATA__PATH: join(dir, 'never') }, dir)
    const { code } = await withTimeout(cli.exited, 'the CLI to exit')
    assert.notEqual(code, 0)
    assert.match(cli.stderr.join('\n'), /absent\.toml/)
  })

  it('refuses a bad environment value, naming the variable', async () => {
    const cli = runCli(['serve'], { RELAY_LIMITATION__MAX_LIMIT: 'lots', RELAY_DATA__PATH: join(dir, 'never') }, dir)
    const { code } = await withTimeout(cli.exited, 'the CLI to exit')
    assert.notEqual(code, 0)
    assert.match(cli.stderr.join('\n'), /RELAY_LIMITATION__MAX_LIMIT/)
  })

  it('RELAY_LIMITATION__MAX_LIMIT=5 takes effect', async () => {
    const port = await freePort()
    await serve(port, { RELAY_LIMITATION__MAX_LIMIT: '5' })
    const doc = (await (await fetch(`http://127.0.0.1:${port}/`, { headers: { Accept: 'application/nostr+json' } })).json()) as {
      limitation: { max_limit: number }
    }
    assert.equal(doc.limitation.max_limit, 5)
    const client = await TestClient.connect(`ws://127.0.0.1:${port}`)
    try {
      const signer = newSigner()
      for (let i = 0; i < 8; i++) await client.publishOk(sign(signer, { content: `n${i}` }))
      assert.equal((await client.query({ authors: [signer.pubkey], limit: 100 })).length, 5)
    } finally {
      await client.close()
    }
  })

  it('reads the config file, and the environment wins over it', async () => {
    const file = join(dir, 'good.toml')
    await writeFile(file, '[limitation]\nmax_limit = 3\nmax_subscriptions = 2\n\n[information]\nname = "From File"\n')
    const port = await freePort()
    await serve(port, { RELAY_LIMITATION__MAX_SUBSCRIPTIONS: '4' }, ['--config', file])
    const doc = (await (await fetch(`http://127.0.0.1:${port}/`, { headers: { Accept: 'application/nostr+json' } })).json()) as {
      name: string
      limitation: { max_limit: number; max_subscriptions: number }
    }
    assert.equal(doc.name, 'From File')
    assert.equal(doc.limitation.max_limit, 3)
    assert.equal(doc.limitation.max_subscriptions, 4)
  })

  it('PORT wins over RELAY_NETWORK__PORT', async () => {
    const [port, other] = [await freePort(), await freePort()]
    const cli = await serve(port, { RELAY_NETWORK__PORT: String(other) })
    const listening = await cli.waitForLog(r => r.message === 'relay listening')
    assert.equal(listening.port, port)
    const client = await TestClient.connect(`ws://127.0.0.1:${port}`)
    await client.publishOk(sign(newSigner()))
    await client.close()
    await assert.rejects(fetch(`http://127.0.0.1:${other}/healthz`))
  })
})
