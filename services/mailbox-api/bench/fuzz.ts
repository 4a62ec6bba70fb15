// The mailbox API fuzzer as a tool: `npm run fuzz -w services/mailbox-api` (or node
// services/mailbox-api/dist/bench/fuzz.js [--seed N] [--requests N] [--max-seconds N] [--max-growth-mib N]
// [--cli PATH]). 10,000 requests by default; what is sent and checked: mailbox-fuzzer.ts. Exit 1 on any failure.
import { resolve } from 'node:path'
import { count, parseFuzzArgs, runMain } from '@msr/bench'
import { CLI, DEFAULT_MAX_GROWTH_MIB, fuzzMailbox } from './mailbox-fuzzer.js'

const main = async (): Promise<number> => {
  const args = parseFuzzArgs(process.argv.slice(2), 'requests', 10_000, [], ['max-growth-mib'])
  const growth = args.values['max-growth-mib']
  console.log(`mailbox API fuzzer: seed ${args.seed} (rerun: node services/mailbox-api/dist/bench/fuzz.js --seed ${args.seed} --requests ${args.count})`)
  const result = await fuzzMailbox({
    seed: args.seed,
    requests: args.count,
    maxSeconds: args.maxSeconds,
    cli: args.cli ? resolve(args.cli) : CLI,
    maxGrowthMiB: growth === undefined ? DEFAULT_MAX_GROWTH_MIB : count('max-growth-mib', growth),
  })
  return result.failures.length > 0 ? 1 : 0
}

runMain(main)
