// The relay fuzzer's short run in `npm test`: 2,000 seeded hostile frames in each configuration (permissive
// and hardened) against the compiled relay as a child process, failing on anything the fuzzer counts as a
// failure: a crash, an answer not well-formed or without a NIP-01 prefix, an `error:` answer, an event
// answered OK false found in the store, a wrong or missing answer to the probe connection doing round trips
// throughout, or memory growth past the bound (relay-fuzzer.ts). `npm run fuzz -w services/relay` is the
// 10,000-frame run.
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { CLI, DEFAULT_MAX_GROWTH_MIB, fuzzRelay, type SetupName } from './relay-fuzzer.js'

const FRAMES = 2000
const SEED = 1616

describe('relay fuzzer (short run)', () => {
  for (const setup of ['permissive', 'hardened'] as SetupName[]) {
    it(`${setup}: ${FRAMES} hostile frames, no crash, every answer well-formed, nothing refused stored, the probe undisturbed, memory within ${DEFAULT_MAX_GROWTH_MIB} MiB`, async () => {
      const [result] = await fuzzRelay({ seed: SEED, frames: FRAMES, maxSeconds: 120, cli: CLI, maxGrowthMiB: DEFAULT_MAX_GROWTH_MIB, setups: [setup] })
      assert.ok(result)
      assert.deepEqual(result.failures, [], `seed ${SEED}: rerun with node services/relay/dist/bench/fuzz.js --seed ${SEED} --frames ${FRAMES} --${setup}`)
      assert.equal(result.frames, FRAMES)
      assert.ok(result.probeRounds > 0, 'the probe made no round trip while the lanes fuzzed')
    })
  }
})
