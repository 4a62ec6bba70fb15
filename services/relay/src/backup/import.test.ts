// importEvents when its input fails part-way (a truncated gzip): it rejects with the read error only once
// the events already read are settled, so its caller may close the verifier without a check in progress.
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { acceptUnverified } from '../pipeline/validate.js'
import { Writer } from '../pipeline/writer.js'
import { EventStore } from '../store/event-store.js'
import { signed } from '../testing/fixtures.js'
import { importEvents } from './import.js'

describe('importEvents on input that fails part-way', () => {
  it('rejects with the read error after every event read before it was checked and stored', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'msr-import-'))
    const store = EventStore.open(dir)
    const writer = new Writer(store, error => assert.fail(String(error)))
    try {
      const events = Array.from({ length: 20 }, (_, i) => signed(1, { content: `line ${i}`, created_at: 1_700_000_000 + i }))
      async function* lines(): AsyncGenerator<{ line: string; tooLong: boolean }> {
        for (const { json } of events) yield { line: json, tooLong: false }
        throw new Error('unexpected end of file')
      }
      let checking = 0
      const failure = await importEvents(lines(), {
        writer,
        now: 1_700_000_100,
        // A check that takes a while, as on the verifier pool: all 20 are in flight when the input fails.
        admit: async checked => {
          checking++
          await new Promise(resolve => setTimeout(resolve, 50))
          checking--
          return acceptUnverified(checked, 'operator vouched')
        },
        source: 'client',
      }).then(
        () => assert.fail('the import should fail with its input'),
        (error: unknown) => ({ error, checking }),
      )
      assert.match(String(failure.error), /unexpected end of file/)
      assert.equal(failure.checking, 0, 'no check was still in progress when the import rejected')
      store.refresh()
      assert.equal([...store.allEvents()].length, events.length, 'what was read before the failure is stored')
    } finally {
      await writer.close()
      store.close()
      await rm(dir, { recursive: true, force: true })
    }
  })
})
