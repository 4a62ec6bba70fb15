import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, describe, it } from 'node:test'
import { signed, type Ready } from '../testing/fixtures.js'
import { EventStore } from './event-store.js'
import { fingerprint } from './fingerprint.js'

const T = 1_700_000_000
const dirs: string[] = []
after(() => dirs.forEach(d => rmSync(d, { recursive: true, force: true })))

/** A fresh store holding `events`, applied one transaction each in the given order. */
const storeWith = async (events: Ready[]): Promise<EventStore> => {
  const dir = mkdtempSync(join(tmpdir(), 'msr-fingerprint-'))
  dirs.push(dir)
  const store = EventStore.open(dir)
  for (const e of events) await store.write(tx => tx.apply(e.event, Buffer.from(e.json)))
  store.refresh()
  return store
}

describe('fingerprint', () => {
  const note = signed(1, { kind: 1, created_at: T, content: 'kept' })
  const doomed = signed(1, { kind: 1, created_at: T, content: 'deleted' })
  const deletion = signed(1, { kind: 5, created_at: T + 1, tags: [['e', doomed.event.id]] })
  const old = signed(2, { kind: 0, created_at: T, content: 'old profile' })
  const newer = signed(2, { kind: 0, created_at: T + 1, content: 'new profile' })
  const expiring = signed(3, { kind: 1, created_at: T, tags: [['expiration', String(T + 10)]] })
  const events = [note, doomed, deletion, old, newer, expiring]

  it('is the same whatever order the events arrived in, and counts what is served', async () => {
    const forward = await storeWith(events)
    const backward = await storeWith([...events].reverse())
    try {
      const a = await fingerprint(forward, T + 5)
      const b = await fingerprint(backward, T + 5)
      assert.deepEqual(a, b)
      assert.equal(a.events, 4, 'note, deletion, newer profile, the event not yet expired')
      assert.match(a.sha256, /^[0-9a-f]{64}$/)
    } finally {
      await Promise.all([forward.close(), backward.close()])
    }
  })

  it('differs when one event differs, and leaves out events expired at `now`', async () => {
    const full = await storeWith(events)
    const less = await storeWith(events.filter(e => e !== note))
    try {
      assert.notEqual((await fingerprint(full, T + 5)).sha256, (await fingerprint(less, T + 5)).sha256)
      const later = await fingerprint(full, T + 10)
      assert.equal(later.events, 3)
      assert.notEqual(later.sha256, (await fingerprint(full, T + 5)).sha256)
      assert.equal(later.at, T + 10)
    } finally {
      await Promise.all([full.close(), less.close()])
    }
  })
})
