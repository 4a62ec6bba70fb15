import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import type { CheckedEvent } from '@msr/nostr'
import { signed, unsigned, type Ready } from '../testing/fixtures.js'
import { isInvalid, verifySignature } from './validate.js'
import { VerifierPool, type Verdict } from '@msr/workers'

const flip = (hex: string, at: number): string => hex.slice(0, at) + (hex[at] === '0' ? '1' : '0') + hex.slice(at + 1)

/** The same event with one signature digit changed (still well-formed, so only the curve math can tell). */
const tampered = (r: Ready, at: number): CheckedEvent => {
  const sig = flip(r.event.sig, at)
  return { event: { ...r.event, sig }, json: r.json.replace(r.event.sig, sig) }
}

const valid = Array.from({ length: 12 }, (_, i) => signed(1 + (i % 3), { content: `valid ${i}`, tags: [['t', String(i)]] }))
const mixed: Array<[CheckedEvent, Verdict]> = valid.flatMap((r, i): Array<[CheckedEvent, Verdict]> => [
  [r, 'valid'],
  [tampered(r, (i * 11) % 128), 'invalid'],
  [unsigned({ pubkey: r.event.pubkey, created_at: 1, kind: 1, tags: [], content: String(i) }), 'invalid'],
])

/** Resolves with the promise's value, or 'hung' if it takes longer than `ms`. */
const within = async <T>(promise: Promise<T>, ms = 15_000): Promise<T | 'hung'> => {
  let timer: NodeJS.Timeout | undefined
  const hung = new Promise<'hung'>(resolve => (timer = setTimeout(() => resolve('hung'), ms)))
  try {
    return await Promise.race([promise, hung])
  } finally {
    clearTimeout(timer)
  }
}

for (const prefer of ['native', 'wasm'] as const) {
  describe(`VerifierPool (${prefer})`, () => {
    it('resolves a mixed batch of valid and invalid signatures, each correctly', async () => {
      const pool = await VerifierPool.start(1, prefer)
      try {
        assert.equal(pool.backend, prefer === 'native' ? 'bcrypto-native' : 'nostr-wasm')
        const verdicts = await Promise.all(mixed.map(([checked]) => pool.verify(checked)))
        assert.deepEqual(verdicts, mixed.map(([, verdict]) => verdict))
        // One at a time, across event-loop turns, too.
        for (const [checked, verdict] of mixed.slice(0, 6)) assert.equal(await pool.verify(checked), verdict)
      } finally {
        await pool.close()
      }
    })

    it('spreads a burst over several workers and still answers each event', async () => {
      const pool = await VerifierPool.start(2, prefer)
      try {
        const burst = Array.from({ length: 10 }, () => mixed).flat()
        const verdicts = await Promise.all(burst.map(([checked]) => pool.verify(checked)))
        assert.deepEqual(verdicts, burst.map(([, verdict]) => verdict))
      } finally {
        await pool.close()
      }
    })
  })
}

describe('verifySignature', () => {
  it('produces a verified event for a good signature and invalid: bad signature otherwise', async () => {
    const pool = await VerifierPool.start(1)
    try {
      const good = await verifySignature(pool, valid[0] as Ready)
      assert.ok(!isInvalid(good))
      assert.equal(good.json.toString('utf8'), valid[0]?.json)
      const bad = tampered(valid[1] as Ready, 5)
      assert.deepEqual(await verifySignature(pool, bad), { eventId: bad.event.id, reason: 'invalid: bad signature' })
    } finally {
      await pool.close()
    }
  })
})

/** Polls until no worker thread is left running, or gives up after `ms`. */
const workersGone = async (ms = 15_000): Promise<boolean> => {
  for (const start = Date.now(); Date.now() - start < ms; await new Promise(resolve => setTimeout(resolve, 50)))
    if (!process.getActiveResourcesInfo().includes('MessagePort')) return true
  return false
}

// Malformed JSON makes a wasm-backend worker throw and exit: the way to kill a worker from outside.
const crashing = (r: Ready): CheckedEvent => ({ event: r.event, json: '{not json' })

describe('VerifierPool: a worker that dies', () => {
  it('fails what it held with error and answers later requests from its replacement', async () => {
    const pool = await VerifierPool.start(1, 'wasm')
    try {
      assert.equal(await within(pool.verify(crashing(valid[0] as Ready))), 'error')
      // Asked while the replacement is still starting: must wait for it, not go to the dead worker.
      assert.equal(await within(pool.verify(valid[1] as Ready)), 'valid')
      assert.equal(await within(pool.verify(tampered(valid[2] as Ready, 9))), 'invalid')
    } finally {
      await pool.close()
    }
  })

  it('close() during the replacement leaves no worker running', async () => {
    const pool = await VerifierPool.start(1, 'wasm')
    assert.equal(await within(pool.verify(crashing(valid[0] as Ready))), 'error')
    await pool.close()
    assert.ok(await workersGone(), 'a replacement worker outlived close()')
  })
})

describe('VerifierPool.close', () => {
  it('settles verifications queued just before close, and nothing hangs', async () => {
    const pool = await VerifierPool.start(1)
    const queued = mixed.map(([checked]) => pool.verify(checked))
    await pool.close()
    const verdicts = await within(Promise.all(queued))
    assert.notEqual(verdicts, 'hung', 'a verification queued before close() never resolved')
    assert.deepEqual(verdicts, queued.map(() => 'error'))
  })

  it('settles verifications in flight at close with a verdict or error', async () => {
    const pool = await VerifierPool.start(1)
    const inFlight = mixed.map(([checked]) => pool.verify(checked))
    await new Promise(resolve => setImmediate(resolve)) // let the batch reach the worker
    await pool.close()
    const verdicts = await within(Promise.all(inFlight))
    assert.notEqual(verdicts, 'hung')
    if (verdicts !== 'hung') for (const [i, v] of verdicts.entries()) assert.ok(v === 'error' || v === mixed[i]?.[1], `${i}: ${v}`)
  })

  it("answers 'error' for a verification asked after close", async () => {
    const pool = await VerifierPool.start(1)
    await pool.close()
    assert.equal(await within(pool.verify(valid[0] as Ready)), 'error')
  })
})
