// Graceful shutdown of the real CLI process: SIGTERM closes clients with 1001, exits 0, loses no acknowledged event.
import assert from 'node:assert/strict'
import { rm } from 'node:fs/promises'
import { join } from 'node:path'
import { createServer } from 'node:net'
import { after, before, describe, it } from 'node:test'
import { startRelay } from '../src/main.js'
import { freePort, newSigner, serveCli, sign, stopCli, tempDir, TestClient, testConfig, type CliProcess, type OkMessage } from './harness.js'

describe('SIGTERM', () => {
  let dir: string
  const running: CliProcess[] = []

  before(async () => {
    dir = await tempDir('msr-relay-shutdown-')
  })

  after(async () => {
    await Promise.all(running.map(stopCli))
    await rm(dir, { recursive: true, force: true })
  })

  const start = async () => {
    const port = await freePort()
    const cli = await serveCli(port, { RELAY_DATA__PATH: join(dir, 'data'), RELAY_NETWORK__PORT: '0' }, dir)
    running.push(cli)
    return { cli, url: `ws://127.0.0.1:${port}` }
  }

  it('closes clients with 1001, exits 0, and every acknowledged event is there after a restart', async t => {
    const signer = newSigner()
    const first = await start()
    const client = await TestClient.connect(first.url)
    const watcher = await TestClient.connect(first.url)
    await watcher.req('w', { kinds: [1], limit: 0 })

    const settled = Array.from({ length: 20 }, (_, i) => sign(signer, { content: `settled ${i}` }))
    for (const e of settled) await client.publishOk(e)
    // A burst still in flight when the signal arrives.
    const burst = Array.from({ length: 300 }, (_, i) => sign(signer, { content: `burst ${i}` }))
    for (const e of burst) client.send(['EVENT', e])
    await client.next(m => m[0] === 'OK' && m[1] === burst[0]?.id)
    first.cli.child.kill('SIGTERM')

    const [closed, watcherClosed, exit] = await Promise.all([client.waitClosed(), watcher.waitClosed(), first.cli.exited])
    assert.equal(closed.code, 1001)
    assert.equal(watcherClosed.code, 1001)
    assert.deepEqual(exit, { code: 0, signal: null })
    assert.match(first.cli.stdout.join(''), /"seconds":[\d.]+,"message":"stopped"/, 'the last line says it stopped, and how long it took')

    const oks = client.history.filter((m): m is OkMessage => m[0] === 'OK')
    const refused = oks.filter(m => m[2] !== true)
    assert.deepEqual(refused, [], 'no event was refused while shutting down')
    const acknowledged = oks.map(m => m[1])
    t.diagnostic(`${acknowledged.length - settled.length} of ${burst.length} burst events acknowledged before the close`)
    for (const e of settled) assert.ok(acknowledged.includes(e.id))

    const second = await start()
    const reader = await TestClient.connect(second.url)
    try {
      const stored = new Set<string>()
      for (let i = 0; i < acknowledged.length; i += 200) {
        for (const e of await reader.query({ ids: acknowledged.slice(i, i + 200) })) stored.add(e.id)
      }
      assert.equal(stored.size, acknowledged.length)
      // And they are served exactly as published.
      assert.deepEqual(await reader.query({ ids: [settled[0]?.id] }), [settled[0]])
    } finally {
      await reader.close()
    }
    assert.deepEqual(await stopCli(second.cli), { code: 0, signal: null })
  })

  it('stops promptly with no client connected (SIGINT too)', async () => {
    const { cli } = await start()
    cli.child.kill('SIGINT')
    assert.deepEqual(await cli.exited, { code: 0, signal: null })
  })
})

describe('a start that fails', () => {
  it('on a port already taken: rejects with the reason, after stopping the worker threads it had started', async () => {
    const dir = await tempDir('msr-relay-taken-')
    const taken = createServer()
    await new Promise<void>(resolve => taken.listen(0, '127.0.0.1', resolve))
    try {
      const port = (taken.address() as { port: number }).port
      const workers = () => process.getActiveResourcesInfo().filter(r => r === 'MessagePort').length
      const before = workers()
      await assert.rejects(startRelay(testConfig(join(dir, 'data'), { 'network.port': port, 'data.query_workers': 2 })), /EADDRINUSE/)
      for (let i = 0; i < 100 && workers() > before; i++) await new Promise(resolve => setTimeout(resolve, 50))
      assert.equal(workers(), before, 'the verifier and query workers of the failed start are gone')
    } finally {
      taken.close()
      await rm(dir, { recursive: true, force: true })
    }
  })
})
