// The relay fuzzer as a tool: `npm run fuzz -w services/relay` (or node services/relay/dist/bench/fuzz.js
// [--seed N] [--frames N] [--hardened | --permissive] [--max-seconds N] [--max-growth-mib N] [--cli PATH]).
// 10,000 frames per configuration by default; what is sent and checked: relay-fuzzer.ts. Exit 1 on any failure.
import { resolve } from 'node:path'
import { count, parseFuzzArgs, runMain } from '@msr/bench'
import { CLI, DEFAULT_MAX_GROWTH_MIB, fuzzRelay, type SetupName } from './relay-fuzzer.js'

const main = async (): Promise<number> => {
  const args = parseFuzzArgs(process.argv.slice(2), 'frames', 10_000, ['hardened', 'permissive'], ['max-growth-mib'])
  const growth = args.values['max-growth-mib']
  const setups = (['permissive', 'hardened'] as const).filter(s => (args.flags.hardened || args.flags.permissive ? args.flags[s] : true))
  console.log(`relay fuzzer: seed ${args.seed} (rerun: node services/relay/dist/bench/fuzz.js --seed ${args.seed} --frames ${args.count})`)
  const results = await fuzzRelay({
    seed: args.seed,
    frames: args.count,
    maxSeconds: args.maxSeconds,
    cli: args.cli ? resolve(args.cli) : CLI,
    maxGrowthMiB: growth === undefined ? DEFAULT_MAX_GROWTH_MIB : count('max-growth-mib', growth),
    setups: setups as SetupName[],
  })
  return results.some(r => r.failures.length > 0) ? 1 : 0
}

runMain(main)
