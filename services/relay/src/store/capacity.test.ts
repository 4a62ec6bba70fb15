import assert from 'node:assert/strict'
import { mkdtempSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { publicKey, unsigned, type Ready } from '../testing/fixtures.js'
import { EventStore, type StoreOutcome } from './event-store.js'
import { STORE_FULL } from './capacity.js'

const author = publicKey(1)
const note = (i: number): Ready => unsigned({ pubkey: author, created_at: 1_700_000_000 + i, kind: 1, tags: [], content: `${i} ${'x'.repeat(2000)}` })

describe('store capacity', () => {
  let dir: string
  let store: EventStore
  const notes = Array.from({ length: 400 }, (_, i) => note(i))
  const applyAll = async (events: Ready[], maxBytes: number): Promise<StoreOutcome[]> => {
    const outcomes = await store.write(tx => tx.applyAll(events.map(e => ({ event: e.event, json: Buffer.from(e.json) })), maxBytes, () => undefined))
    store.refresh()
    return outcomes
  }

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'msr-capacity-'))
    store = EventStore.open(dir)
  })
  after(async () => {
    await store.close()
    rmSync(dir, { recursive: true, force: true })
  })

  it('counts the pages holding data: usage grows with events and falls when they are deleted, though the file does not shrink', async () => {
    const empty = store.usedBytes()
    await applyAll(notes, 0)
    const full = store.usedBytes()
    assert.ok(full - empty > 400 * 2000, `${full - empty} bytes for 400 events of 2 kB`)
    const fileSize = statSync(join(dir, 'data.mdb')).size
    const deletion = unsigned({ pubkey: author, created_at: 1_700_001_000, kind: 5, tags: notes.map(n => ['e', n.event.id]), content: '' })
    await applyAll([deletion], 0)
    assert.ok(store.usedBytes() < empty + (full - empty) / 4, `usage ${store.usedBytes()} after deleting every note (was ${full})`)
    assert.ok(statSync(join(dir, 'data.mdb')).size >= fileSize, 'the file shrank: the test would not tell pages from file size')
  })

  it('refuses all but deletions once usage reaches the cap, and nothing without a cap', async () => {
    const more = Array.from({ length: 3 }, (_, i) => note(1000 + i))
    const cap = store.usedBytes()
    assert.deepEqual(await applyAll([more[0] as Ready], cap), [{ status: 'rejected', reason: STORE_FULL }])
    const deletion = unsigned({ pubkey: author, created_at: 1_700_002_000, kind: 5, tags: [['e', 'ab'.repeat(32)]], content: '' })
    assert.deepEqual(await applyAll([deletion], cap), [{ status: 'stored' }])
    assert.deepEqual(await applyAll([more[1] as Ready], cap + 1024 * 1024), [{ status: 'stored' }])
    assert.deepEqual(await applyAll([more[2] as Ready], 0), [{ status: 'stored' }])
  })
})
