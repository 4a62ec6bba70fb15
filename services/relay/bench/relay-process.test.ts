// The bench's relay child: its store made where --store-dir says, and the file system the report names.
import assert from 'node:assert/strict'
import { existsSync, statfsSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { fileURLToPath } from 'node:url'
import { fileSystemOf, startRelayProcess } from './relay-process.js'

const CLI = fileURLToPath(new URL('../src/cli.js', import.meta.url))

describe('bench relay process', () => {
  it('makes its data dir in storeDir, stores there, and removes it when stopped', async () => {
    const storeDir = await mkdtemp(join(tmpdir(), 'msr-bench-store-'))
    try {
      const relay = await startRelayProcess({ cli: CLI, env: { ...process.env }, logLevel: 'warn', storeDir })
      try {
        assert.equal(join(relay.dataDir, '..'), storeDir)
        assert.ok(existsSync(join(relay.dataDir, 'lmdb', 'data.mdb')), 'the store is under storeDir')
      } finally {
        await relay.stop()
      }
      assert.equal(existsSync(relay.dataDir), false)
    } finally {
      await rm(storeDir, { recursive: true, force: true })
    }
  })

  it('names the file system of a directory, and says when it cannot tell', () => {
    const named = fileSystemOf(tmpdir())
    const type = statfsSync(tmpdir()).type
    if (type === 0x01021994) assert.equal(named, 'tmpfs: memory')
    else if (type === 0xef53) assert.equal(named, 'ext4')
    else assert.match(named, /^(\w|file system 0x)/)
    if (existsSync('/dev/shm') && statfsSync('/dev/shm').type === 0x01021994) assert.equal(fileSystemOf('/dev/shm'), 'tmpfs: memory')
    assert.equal(fileSystemOf(join(tmpdir(), 'msr-no-such-dir')), 'file system unknown')
  })
})
