// Messages of one connection take effect in the order they were sent: a REQ, COUNT, CLOSE or EVENT
// pipelined right behind an AUTH is judged as authenticated (the AUTH's signature is checked on a worker
// meanwhile), and an EVENT sent before the AUTH as unauthenticated; a REQ or COUNT pipelined behind EVENTs
// finds what they stored and not what they deleted. Checked with raw frames and with
// nostr-tools' SimplePool (`automaticallyAuth`), a real client, on the hardened configuration
// (auth.required), repeated so that a race would show.
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { SimplePool, useWebSocketImplementation } from 'nostr-tools/pool'
import { finalizeEvent, type EventTemplate } from 'nostr-tools/pure'
import WebSocket from 'ws'
import { authEvent, freePort, newSigner, sign, startTestRelay, TestClient, withTimeout, type RelayMessage, type Signer, type TestRelay } from './harness.js'

useWebSocketImplementation(WebSocket)

const ROUNDS = 25
let relay: TestRelay
let url: string

before(async () => {
  const port = await freePort()
  url = `ws://127.0.0.1:${port}`
  relay = await startTestRelay({ 'network.port': port, 'auth.enabled': true, 'auth.required': true, 'network.public_url': url })
})
after(() => relay.close())

const kindOf = (verb: string, id: string) => (m: RelayMessage) => m[0] === verb && m[1] === id
const answerTo = (id: string) => (m: RelayMessage) => (m[0] === 'EOSE' || m[0] === 'CLOSED' || m[0] === 'COUNT') && m[1] === id

describe('AUTH pipelined with what follows it (raw frames, auth.required)', () => {
  it(`REQ, COUNT and EVENT sent right behind AUTH are all judged authenticated (${ROUNDS} connections)`, async () => {
    for (let round = 0; round < ROUNDS; round++) {
      const signer = newSigner()
      const client = await TestClient.connect(url)
      try {
        const auth = authEvent(signer, await client.challenge(), url)
        const note = sign(signer, { content: `round ${round}` })
        // One burst: nothing waits for the AUTH's OK.
        client.send(['AUTH', auth])
        client.send(['REQ', 'r', { authors: [signer.pubkey] }])
        client.send(['COUNT', 'c', { authors: [signer.pubkey] }])
        client.send(['EVENT', note])
        const authOk = await client.next(kindOf('OK', auth.id))
        assert.deepEqual(authOk.slice(2), [true, ''], `round ${round}: AUTH`)
        const req = await client.next(answerTo('r'))
        assert.equal(req[0], 'EOSE', `round ${round}: REQ answered ${JSON.stringify(req)}`)
        const count = await client.next(answerTo('c'))
        assert.equal(count[0], 'COUNT', `round ${round}: COUNT answered ${JSON.stringify(count)}`)
        const ok = await client.next(kindOf('OK', note.id))
        assert.deepEqual(ok.slice(2), [true, ''], `round ${round}: EVENT`)
        client.send(['CLOSE', 'r'])
      } finally {
        await client.close()
      }
    }
  })

  it('an EVENT sent before the AUTH is judged as sent: unauthenticated, as a slower client would see it', async () => {
    for (let round = 0; round < 10; round++) {
      const signer = newSigner()
      const client = await TestClient.connect(url)
      try {
        const note = sign(signer, { content: `before ${round}` })
        const auth = authEvent(signer, await client.challenge(), url)
        client.send(['EVENT', note])
        client.send(['AUTH', auth])
        const ok = await client.next(kindOf('OK', note.id))
        assert.equal(ok[2], false, `round ${round}: ${JSON.stringify(ok)}`)
        assert.match(String(ok[3]), /^auth-required: /)
        assert.deepEqual((await client.next(kindOf('OK', auth.id))).slice(2), [true, ''])
      } finally {
        await client.close()
      }
    }
  })

  it('a refused AUTH leaves what follows it unauthenticated', async () => {
    const signer = newSigner()
    const client = await TestClient.connect(url)
    try {
      const bad = authEvent(signer, 'not the challenge', url)
      client.send(['AUTH', bad])
      client.send(['REQ', 'r', { authors: [signer.pubkey] }])
      const reply = await client.next(answerTo('r'))
      assert.equal(reply[0], 'CLOSED')
      assert.match(String(reply[2]), /^auth-required: /)
    } finally {
      await client.close()
    }
  })

  it('a second AUTH in the burst holds what follows it too, in order', async () => {
    const first = newSigner()
    const second = newSigner()
    const client = await TestClient.connect(url)
    try {
      const challenge = await client.challenge()
      // A private kind for `second`: only readable once the second AUTH is decided.
      const dm = sign(first, { kind: 446, tags: [['p', second.pubkey]] })
      client.send(['AUTH', authEvent(first, challenge, url)])
      client.send(['EVENT', dm])
      client.send(['AUTH', authEvent(second, challenge, url)])
      client.send(['REQ', 'dm', { kinds: [446], '#p': [second.pubkey] }])
      assert.deepEqual((await client.next(kindOf('OK', dm.id))).slice(2), [true, ''])
      // Stored before the REQ's read or committed just after it: in the backfill or live, once either way.
      const stored = await client.collectUntilEose('dm')
      const got = stored.length > 0 ? stored : [await client.nextEvent('dm')]
      assert.deepEqual(
        got.map(e => e.id),
        [dm.id],
      )
    } finally {
      await client.close()
    }
  })
})

/** A nostr-tools pool that answers every challenge as `signer` (its `automaticallyAuth` option). */
const poolAs = (signer: Signer): SimplePool => {
  const pool = new SimplePool({ enablePing: false })
  pool.automaticallyAuth = () => async (template: EventTemplate) => finalizeEvent(template, signer.secretKey)
  return pool
}

/** Waits until nostr-tools' relay object has the challenge (it sends its AUTH at that moment). */
const challenged = async (pool: SimplePool): Promise<void> => {
  const connection = await pool.ensureRelay(url)
  const deadline = Date.now() + 10_000
  while (!(connection as unknown as { challenge?: string }).challenge) {
    if (Date.now() > deadline) throw new Error('no NIP-42 challenge reached nostr-tools')
    await new Promise(resolve => setTimeout(resolve, 5))
  }
}

describe('EVENTs pipelined with a REQ or COUNT behind them', () => {
  it(`the REQ and COUNT come after the EVENTs' OKs, find what they stored and not what they deleted (${ROUNDS} rounds)`, async () => {
    for (let round = 0; round < ROUNDS; round++) {
      const signer = newSigner()
      const client = await TestClient.connect(url)
      try {
        await client.authOk(signer, { relay: url })
        const doomed = sign(signer, { content: `to delete, round ${round}` })
        await client.publishOk(doomed)
        const note = sign(signer, { content: `round ${round}` })
        const deletion = sign(signer, { kind: 5, tags: [['e', doomed.id]] })
        // One burst: nothing waits for the EVENTs' OKs.
        client.send(['EVENT', note])
        client.send(['EVENT', deletion])
        client.send(['REQ', 'r', { authors: [signer.pubkey] }])
        client.send(['COUNT', 'c', { authors: [signer.pubkey] }])
        const seen: RelayMessage[] = []
        while (!seen.some(answerTo('r')) || !seen.some(answerTo('c'))) seen.push(await client.next())
        const at = (predicate: (m: RelayMessage) => boolean) => seen.findIndex(predicate)
        const answers = [at(kindOf('OK', note.id)), at(kindOf('OK', deletion.id))]
        assert.ok(answers.every(i => i >= 0 && i < at(kindOf('EVENT', 'r')) && i < at(answerTo('c'))), `round ${round}: ${JSON.stringify(seen.map(m => m.slice(0, 2)))}`)
        assert.deepEqual(seen.filter(m => m[0] === 'OK').map(m => m[2]), [true, true], `round ${round}: OKs`)
        const found = seen.filter(kindOf('EVENT', 'r')).map(m => (m[2] as { id: string }).id)
        assert.deepEqual(found.sort(), [note.id, deletion.id].sort(), `round ${round}: REQ`)
        assert.equal(seen[at(answerTo('r'))]?.[0], 'EOSE')
        assert.deepEqual(seen[at(answerTo('c'))]?.slice(2), [{ count: 2 }], `round ${round}: COUNT`)
      } finally {
        await client.close()
      }
    }
  })
})

describe("nostr-tools' SimplePool with automaticallyAuth (auth.required)", () => {
  it(`subscribes right after its automatic AUTH and gets EOSE, never auth-required (${ROUNDS} pools)`, async () => {
    for (let round = 0; round < ROUNDS; round++) {
      const me = newSigner()
      const pool = poolAs(me)
      try {
        await challenged(pool)
        // The AUTH is on its way; the REQ goes right behind it.
        const result = await withTimeout(
          new Promise<{ eose: boolean; closed?: string[] }>(resolve => {
            const sub = pool.subscribe([url], { kinds: [446], '#p': [me.pubkey] }, {
              oneose: () => (sub.close(), resolve({ eose: true })),
              onclose: reasons => resolve({ eose: false, closed: reasons.map(r => r.reason) }),
            })
          }),
          `round ${round}: the subscription's EOSE`,
        )
        assert.deepEqual(result, { eose: true }, `round ${round}: ${JSON.stringify(result)}`)
      } finally {
        pool.destroy()
      }
    }
  })

  it('publishes right after its automatic AUTH, then reads its private DM as the recipient', async () => {
    for (let round = 0; round < 10; round++) {
      const sender = newSigner()
      const recipient = newSigner()
      const senderPool = poolAs(sender)
      const recipientPool = poolAs(recipient)
      try {
        await challenged(senderPool)
        const dm = sign(sender, { kind: 446, tags: [['p', recipient.pubkey]], content: `opaque ${round}` })
        await Promise.all(senderPool.publish([url], dm))
        await challenged(recipientPool)
        const got = await recipientPool.querySync([url], { kinds: [446], '#p': [recipient.pubkey] }, { maxWait: 10_000 })
        assert.deepEqual(
          got.map(e => e.id),
          [dm.id],
          `round ${round}`,
        )
      } finally {
        senderPool.destroy()
        recipientPool.destroy()
      }
    }
  })
})
