// data.write_map through the CLI: a relay serving a store on a tmpfs through LMDB's writable map keeps
// every event it acknowledged across a SIGKILL and reports the cap the map puts on the store; on any other
// file system it does not start. (The store side: src/store/write-map.test.ts; SIGKILLs during mixed
// traffic and snapshots: crash-cycles.test.ts.)
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync, statfsSync } from 'node:fs'
import { join } from 'node:path'
import { after, describe, it } from 'node:test'
import { onTmpfs } from '../src/store/write-map.js'
import { freePort, newSigner, runCli, serveCli, sign, stopCli, tempDir, TestClient, withTimeout } from './harness.js'

const SHM = '/dev/shm'
const KEY = 'write-map-metrics-key-0123'

describe('[data] write_map', () => {
  const dirs: string[] = []
  after(() => dirs.forEach(dir => rmSync(dir, { recursive: true, force: true })))

  it('on a tmpfs: events acknowledged before a SIGKILL are served after the restart, and the cap is 90 % of the tmpfs', { skip: onTmpfs(SHM) ? false : `${SHM} is not a tmpfs here` }, async () => {
    const dir = mkdtempSync(join(SHM, 'msr-write-map-cli-'))
    dirs.push(dir)
    const env = {
      RELAY_DATA__PATH: join(dir, 'data'),
      RELAY_DATA__WRITE_MAP: 'true',
      RELAY_AUTH__AUTH_REQUIRED_KINDS: '[]',
      RELAY_METRICS__ENABLED: 'true',
      RELAY_METRICS__AUTH: `"${KEY}"`,
    }
    const port = await freePort()
    const alice = newSigner()
    const events = Array.from({ length: 40 }, (_, i) => sign(alice, { kind: 1, content: `note ${i}`, tags: [['t', 'write-map']] }))
    const first = await serveCli(port, env, dir)
    try {
      const client = await TestClient.connect(`ws://127.0.0.1:${port}`)
      for (const event of events) await client.publishOk(event)
      const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`, { headers: { authorization: `Bearer ${KEY}` } })).text()
      const { bsize, blocks } = statfsSync(dir)
      assert.match(metrics, new RegExp(`^msr_relay_store_max_bytes ${Math.floor(0.9 * bsize * blocks)}$`, 'm'))
      first.child.kill('SIGKILL')
      await withTimeout(first.exited, 'the killed relay to exit')
    } finally {
      if (first.child.exitCode === null && first.child.signalCode === null) first.child.kill('SIGKILL')
    }
    const second = await serveCli(port, env, dir)
    try {
      const client = await TestClient.connect(`ws://127.0.0.1:${port}`)
      const served = await client.query({ '#t': ['write-map'], limit: 100 })
      assert.deepEqual(new Set(served.map(e => e.id)), new Set(events.map(e => e.id)))
      await client.close()
    } finally {
      await stopCli(second)
    }
  })

  it('on a disk: the relay does not start, and says why', async t => {
    const dir = await tempDir()
    if (onTmpfs(dir)) return t.skip(`${dir} is on a tmpfs here`)
    const cli = runCli(['serve'], { RELAY_DATA__PATH: join(dir, 'data'), RELAY_DATA__WRITE_MAP: 'true', PORT: String(await freePort()) }, dir)
    const { code } = await withTimeout(cli.exited, 'the relay to give up')
    assert.equal(code, 2)
    assert.match(cli.stderr.join(''), /data\.write_map needs the store on a memory file system \(tmpfs\): .*not tmpfs/)
  })
})
