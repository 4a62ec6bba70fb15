// The long crash-cycle run of the reliability campaign: `npm run soak` from the repository root (it builds
// first), or node services/relay/dist/bench/soak.js. The relay CLI is SIGKILLed SOAK_CYCLES times (default
// 100) during mixed ingest and snapshots, restarted on the same data directory and checked each time
// (test/crash-cycles.ts says what is checked). Settings by environment: SOAK_CYCLES, SOAK_SEED (default:
// from the clock, printed, so a failing run can be repeated), SOAK_CLIENTS (3), SOAK_KILL_MIN_MS (50) and
// SOAK_KILL_MAX_MS (500). Prints one summary line; exit 1 when anything acknowledged was lost, anything
// deleted or replaced came back, or a hint never arrived; a progress line every 10 cycles on stderr.
import { envInteger as setting, runMain } from '@msr/bench'
import { runCrashCycles, summary } from '../test/crash-cycles.js'

runMain(async () => {
  const seed = setting('SOAK_SEED', Date.now() % 2 ** 31)
  const started = Date.now()
  const report = await runCrashCycles({
    cycles: setting('SOAK_CYCLES', 100),
    seed,
    clients: setting('SOAK_CLIENTS', 3),
    killAfterMs: [setting('SOAK_KILL_MIN_MS', 50), setting('SOAK_KILL_MAX_MS', 500)],
    onCheck: r => {
      if (r.cycles % 10 === 0) process.stderr.write(`soak: ${r.cycles} cycles, ${r.sent} sent, losses ${r.losses}, resurrected ${r.resurrected}, stale ${r.stale}\n`)
    },
  })
  process.stdout.write(`${summary(report, seed)}; ${((Date.now() - started) / 1000).toFixed(0)} s\n`)
  for (const problem of report.problems) process.stdout.write(`  ${problem}\n`)
  return report.losses + report.resurrected + report.stale + report.hintsMissing + report.restoreFaults === 0 ? 0 : 1
})
