import assert from 'node:assert/strict'
import { mkdtempSync, readFileSync, rmSync, statfsSync } from 'node:fs'
import { join } from 'node:path'
import { after, describe, it } from 'node:test'
import { fileURLToPath } from 'node:url'
import { publicKey, unsigned } from '../testing/fixtures.js'
import { effectiveCap, memoryStoreCap, onTmpfs, openConfiguredStore, TMPFS_MAGIC, writeMapCap } from './write-map.js'

const SHM = '/dev/shm'
const shm = onTmpfs(SHM) ? {} : { skip: `${SHM} is not a tmpfs on this machine` }
const here = fileURLToPath(new URL('.', import.meta.url))
const onDisk = onTmpfs(here) ? { skip: `${here} is on a tmpfs on this machine` } : {}

/** How this process maps the store's data file: true when some mapping of it is writable. */
const mappedWritable = (dir: string): boolean => {
  const lines = readFileSync('/proc/self/maps', 'utf8')
    .split('\n')
    .filter(line => line.endsWith(join(dir, 'data.mdb')))
  assert.ok(lines.length > 0, `data.mdb of ${dir} is mapped`)
  return lines.some(line => line.split(/\s+/)[1]?.[1] === 'w')
}

describe('data.write_map: where the map may be writable, and the cap it puts on the store', () => {
  it('takes a tmpfs, at 90 % of its size, and nothing else', () => {
    assert.deepEqual(writeMapCap({ type: TMPFS_MAGIC, blocks: 1000, bsize: 4096 }), { cap: 3_686_400 })
    const ext4 = writeMapCap({ type: 0xef53, blocks: 1000, bsize: 4096 })
    assert.ok('problem' in ext4 && /0xef53 is not tmpfs/.test(ext4.problem), JSON.stringify(ext4))
    assert.ok('problem' in writeMapCap({ type: TMPFS_MAGIC, blocks: 0, bsize: 4096 }))
  })

  it('lowers data.max_size to the map cap, and stands in for a missing one', () => {
    assert.equal(effectiveCap(0, 0), 0)
    assert.equal(effectiveCap(500, 0), 500)
    assert.equal(effectiveCap(0, 1000), 1000)
    assert.equal(effectiveCap(500, 1000), 500)
    assert.equal(effectiveCap(2000, 1000), 1000)
  })

  it('refuses a store on a disk, saying why', onDisk, () => {
    const dir = mkdtempSync(join(here, 'write-map-disk-'))
    try {
      assert.throws(() => memoryStoreCap(dir), /data\.write_map needs the store on a memory file system \(tmpfs\): .*is not tmpfs/)
      assert.throws(() => openConfiguredStore({ path: dir, write_map: true }), /data\.write_map/)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })

  describe('a store on a tmpfs', shm, () => {
    const dirs: string[] = []
    const fresh = () => {
      const dir = mkdtempSync(join(SHM, 'msr-write-map-'))
      dirs.push(dir)
      return dir
    }
    after(() => dirs.forEach(dir => rmSync(dir, { recursive: true, force: true })))

    it('is written through a writable map with write_map on, keeps what it committed, and is capped at 90 % of the tmpfs', async () => {
      const dir = fresh()
      const { bsize, blocks } = statfsSync(dir)
      const notes = Array.from({ length: 50 }, (_, i) =>
        unsigned({ pubkey: publicKey(1), created_at: 1_700_000_000 + i, kind: 1, tags: [['t', 'x']], content: `note ${i}` }),
      )
      const first = openConfiguredStore({ path: dir, write_map: true })
      assert.equal(first.mapCap, Math.floor(0.9 * bsize * blocks))
      assert.equal(mappedWritable(dir), true)
      const outcomes = await first.store.write(tx => tx.applyAll(notes.map(n => ({ event: n.event, json: Buffer.from(n.json) })), 0, () => undefined))
      assert.deepEqual(new Set(outcomes.map(o => o.status)), new Set(['stored']))
      await first.store.close()

      const again = openConfiguredStore({ path: dir, write_map: true })
      try {
        const found = again.store.query({ kinds: [1], tags: { t: ['x'] } }, { limit: 100, now: 2_000_000_000, deadline: Infinity, clock: () => 0 })
        assert.equal(found.events.length, 50)
        assert.equal(again.store.get(notes[7]!.event.id), notes[7]!.json)
      } finally {
        await again.store.close()
      }
    })

    it('is written with write calls (a read-only map) with write_map off, and no cap of its own', async () => {
      const dir = fresh()
      const { store, mapCap } = openConfiguredStore({ path: dir, write_map: false })
      try {
        assert.equal(mapCap, 0)
        assert.equal(mappedWritable(dir), false)
      } finally {
        await store.close()
      }
    })
  })
})
