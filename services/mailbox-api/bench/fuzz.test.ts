// The mailbox API fuzzer's short run in `npm test`: 2,500 seeded hostile requests over every /api/v1 route
// (bodies, query strings, headers, NIP-98 tokens, raw sockets) against the compiled API as a child process on
// its embedded PostgreSQL, failing on anything the fuzzer counts as a failure: a crash, a 5xx, an answer not
// well-formed, wrong credentials accepted, a refused deposit, group or hint found in the tables, or memory
// growth past the bound (mailbox-fuzzer.ts). `npm run fuzz -w services/mailbox-api` is the 10,000-request run.
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { CLI, DEFAULT_MAX_GROWTH_MIB, fuzzMailbox } from './mailbox-fuzzer.js'

const REQUESTS = 2500
const SEED = 1616

describe('mailbox API fuzzer (short run)', () => {
  it(`${REQUESTS} hostile requests: no crash, no 5xx, every answer well-formed, nothing refused stored, memory within ${DEFAULT_MAX_GROWTH_MIB} MiB`, async () => {
    const result = await fuzzMailbox({ seed: SEED, requests: REQUESTS, maxSeconds: 120, cli: CLI, maxGrowthMiB: DEFAULT_MAX_GROWTH_MIB })
    assert.deepEqual(result.failures, [], `seed ${SEED}: rerun with node services/mailbox-api/dist/bench/fuzz.js --seed ${SEED} --requests ${REQUESTS}`)
    assert.equal(result.requests, REQUESTS)
  })
})
