// The long replication kill-cycle run: `npm run soak:replication` from the repository root (it builds first),
// or node services/relay/dist/bench/soak-replication.js. Three relay CLI replicas on the Pub/Sub emulator;
// SOAK_CYCLES times (default 100) one of them (the snapshot writer too, cut off the bus first until it has
// snapshotted events only it holds) is SIGKILLed mid-ingest, its data directory deleted and an
// empty replacement bootstrapped from the newest snapshot plus a seek of its subscription; then the emulator
// is frozen for SOAK_PAUSE_MS (default 30000) while clients publish ("refuse": OK false "error: …"), and
// everything must reach every replica once it answers (test/replication-cycles.ts says what is checked).
// Settings by environment: SOAK_CYCLES, SOAK_SEED (default: from the clock, printed), SOAK_PAUSE_MS,
// SOAK_KILL_MIN_MS (200), SOAK_KILL_MAX_MS (800). Prints one summary line; exit 1 when an acknowledged event
// was missing anywhere, a deleted or replaced one came back, the fingerprints differed, an OK true came
// during the outage or its events did not drain; a progress line every 10 cycles on stderr.
import { envInteger as setting, runMain } from '@msr/bench'
import { runReplicationCycles, summary } from '../test/replication-cycles.js'

runMain(async () => {
  const seed = setting('SOAK_SEED', Date.now() % 2 ** 31)
  const started = Date.now()
  const report = await runReplicationCycles({
    cycles: setting('SOAK_CYCLES', 100),
    seed,
    pauseMs: setting('SOAK_PAUSE_MS', 30_000),
    killAfterMs: [setting('SOAK_KILL_MIN_MS', 200), setting('SOAK_KILL_MAX_MS', 800)],
    onCheck: r => {
      if (r.cycles % 10 === 0) process.stderr.write(`soak: ${r.cycles} cycles, ${r.sent} sent, losses ${r.losses}, fingerprint mismatches ${r.fingerprintMismatches}\n`)
    },
  })
  process.stdout.write(`${summary(report, seed)}; ${((Date.now() - started) / 1000).toFixed(0)} s\n`)
  for (const problem of report.problems) process.stdout.write(`  ${problem}\n`)
  const outage = report.outage
  const outageFaults = outage ? outage.okTrueDuringPause + outage.notDrained + (outage.refusedWithError === outage.sent ? 0 : 1) : 0
  return report.losses + report.resurrected + report.stale + report.fingerprintMismatches + outageFaults === 0 ? 0 : 1
})
