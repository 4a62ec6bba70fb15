// A full disk: the relay refuses writes with a clear `error:` message, keeps serving reads, and takes
// writes again once space returns. Real LMDB on a real filesystem that fills up (a small tmpfs, which
// needs root to mount: skipped elsewhere, saying so).
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { mkdirSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { STORE_FULL, WRITE_FAILED } from '../src/pipeline/writer.js'
import { newSigner, sign, startTestRelay, tempDir, TestClient, type TestRelay } from './harness.js'

const MOUNT_MIB = 24
let mount = ''
let mounted = false
let relay: TestRelay | undefined

before(async () => {
  mount = await tempDir()
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${MOUNT_MIB}m`, 'tmpfs', mount], { stdio: 'ignore' })
    mounted = true
  } catch {
    mounted = false
  }
})
after(async () => {
  await relay?.close()
  if (mounted) execFileSync('umount', [mount])
  rmSync(mount, { recursive: true, force: true })
})

/**
 * Publishes until the store is refused once the tmpfs has 512 KiB left, checks reads, frees the room and
 * publishes again; `dataDir` on the small tmpfs.
 */
const fillAndRecover = async (t: { diagnostic: (line: string) => void }, overrides: Record<string, unknown>, dataDir: string) => {
  mkdirSync(dataDir)
  relay = await startTestRelay(overrides, { dataDir })
  const client = await TestClient.connect(relay.url)
  const signer = newSigner()
  const first = sign(signer, { content: 'stored before the disk filled' })
  await client.publishOk(first)
  // Fill what is left but a little, then publish until the store cannot grow.
  const filler = join(mount, 'filler')
  const free = Number(execFileSync('df', ['--output=avail', '-B1', mount], { encoding: 'utf8' }).split('\n')[1])
  writeFileSync(filler, Buffer.alloc(Math.max(0, free - 512 * 1024)))
  let refused: string | undefined
  for (let i = 0; i < 5000 && refused === undefined; i++) {
    const answer = await client.publish(sign(signer, { content: `filling ${i} ${'x'.repeat(2000)}` }))
    if (answer[2] === false) refused = String(answer[3])
  }
  assert.equal(refused, STORE_FULL, 'the disk never filled, or the refusal does not say so')
  assert.deepEqual((await client.query({ ids: [first.id] })).map(e => e.id), [first.id], 'reads go on')
  rmSync(filler)
  const later = sign(signer, { content: 'stored once space returned' })
  // Known, not yet understood (about one run in ten under load): LMDB can fail the first commit after
  // room returned. The client is told to try again, and the retry is stored; a second failure fails here.
  const answer = await client.publish(later)
  if (answer[2] !== true) {
    assert.equal(answer[3], WRITE_FAILED, 'a refusal after room returned says to try again')
    t.diagnostic('the first write after room returned was refused once (see README, Reliability)')
    await client.publishOk(later)
  }
  assert.deepEqual((await client.query({ ids: [later.id] })).map(e => e.id), [later.id])
  await client.close()
  await relay.close()
  relay = undefined
}

describe('a full disk', () => {
  it('refuses EVENTs with "error: … storage is full", still serves REQs, and stores again once space returns', async t => {
    if (!mounted) return t.skip('mounting a small tmpfs needs root')
    await fillAndRecover(t, {}, join(mount, 'relay'))
  })

  it('the same with [data] write_map: refused before the tmpfs is full, so no page is written into a full one (SIGBUS)', async t => {
    if (!mounted) return t.skip('mounting a small tmpfs needs root')
    await fillAndRecover(t, { 'data.write_map': true }, join(mount, 'relay-write-map'))
  })
})
