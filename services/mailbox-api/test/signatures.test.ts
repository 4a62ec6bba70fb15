// NIP-98 signatures checked on worker threads (VERIFY_WORKERS=1 or more; the default, 0, checks them on the event loop).
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { finalizeEvent } from 'nostr-tools/pure'
import { checkEvent, type CheckedEvent, type NostrEvent } from '@msr/nostr'
import { pooledSignatures, type SignatureCheck } from '../src/auth/signatures.js'
import { buildTestApp, expectError, expectStatus, newSigner, qs, startPostgres, type TestPostgres } from './harness.js'

let pg: TestPostgres
let pooled: SignatureCheck

before(async () => {
  pg = await startPostgres()
  pooled = await pooledSignatures(1)
})

after(async () => {
  await pooled?.close()
  await pg?.close()
})

/** The event as the NIP-98 check hands it over (parsed, its JSON serialized). */
const checked = (event: NostrEvent): CheckedEvent => {
  const result = checkEvent(JSON.parse(JSON.stringify(event)))
  if (!result.ok) throw new Error(result.reason)
  return result.value
}

describe('signatures on worker threads', () => {
  it('answers valid and invalid, and says which backend runs', async () => {
    const alice = newSigner()
    const event = finalizeEvent({ kind: 27235, created_at: Math.floor(Date.now() / 1000), tags: [], content: '' }, alice.secretKey)
    assert.equal(await pooled.verify(checked(event)), 'valid')
    const other = finalizeEvent({ kind: 27235, created_at: event.created_at, tags: [], content: 'x' }, alice.secretKey)
    assert.equal(await pooled.verify(checked({ ...event, sig: other.sig })), 'invalid')
    assert.match(pooled.name, /\(1 worker thread\)$/)
  })

  it('authenticates API requests: 200 with a good signature, 401 AUTH_BAD_SIGNATURE with a bad one', async () => {
    const app = await buildTestApp(pg.pool, {}, { signatures: pooled })
    const bob = newSigner()
    const path = `/keypackages${qs({ recipient: bob.pubkey })}`
    expectStatus(await app.api.get(path, bob), 200)
    const forged = await app.api.get(path, bob, {
      afterSigning: e => {
        e.sig = `${e.sig.slice(0, 127)}${e.sig.endsWith('0') ? '1' : '0'}`
      },
    })
    expectError(forged, 401, 'AUTH_BAD_SIGNATURE')
  })

  it('answers 503 UNAVAILABLE, not 401, when no worker can check the signature', async () => {
    const closed = await pooledSignatures(1)
    await closed.close()
    const app = await buildTestApp(pg.pool, {}, { signatures: closed })
    const bob = newSigner()
    expectError(await app.api.get(`/keypackages${qs({ recipient: bob.pubkey })}`, bob), 503, 'UNAVAILABLE')
  })
})
