// `--replication` end to end: the compiled bench (dist/bench/bench.js) as a child process, a small quick run on
// the Pub/Sub emulator (one relay without replication, one replica, three replicas). Checks the figures are in
// the table and the JSON, and that every accepted event reached every relay; skipped, saying why, without the
// emulator. A small run on a shared machine: this checks the scenario works, not its figures.
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { fileURLToPath } from 'node:url'
import { findEmulator } from '@msr/hints/emulator'

const BENCH = fileURLToPath(new URL('./bench.js', import.meta.url))
/** Under `npm test`'s 180 s per test: the bench gets SIGTERM (it stops its relays and the emulator) and its output is shown. */
const RUN_MS = 170_000
const found = findEmulator()

interface Figure {
  figure: string
  value: number | null
  unit: string
}

interface RunJson {
  label: string
  relays: number
  accepted: number
  everywhere: number
  notYetReplicated: number
  ingest: { sent: number; rejected: number }
  coverage: Array<{ live: number; servedByReq: number; missing: number }>
}

/** Runs the bench to its end; resolves with its exit code and output. */
const runBench = (args: string[], timeoutMs: number): Promise<{ code: number | null; stdout: string; stderr: string }> =>
  new Promise((resolve, reject) => {
    const env = { ...process.env, BENCH_QUICK: '', BENCH_URL: '', BENCH_ONLY: '', BENCH_TRACING: '' }
    const child = spawn(process.execPath, [BENCH, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()))
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
    const timer = setTimeout(() => (child.kill('SIGTERM'), reject(new Error(`bench did not finish in ${timeoutMs} ms:\n${stdout}\n${stderr}`))), timeoutMs)
    child.once('exit', code => (clearTimeout(timer), resolve({ code, stdout, stderr })))
  })

describe('relay bench --replication', { skip: 'missing' in found ? found.missing : false }, () => {
  it('measures no replication, one replica and three: OK/s, EVENT→OK, CPU, visibility; every accepted event on every relay', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'msr-bench-replication-'))
    try {
      const json = join(dir, 'out.json')
      const run = await runBench(['--replication', '--quick', '--events', '1200', '--connections', '6', '--json', json], RUN_MS)
      const output = `${run.stdout}\n${run.stderr}`
      assert.equal(run.code, 0, `exit code\n${output}`)
      const body = JSON.parse(await readFile(json, 'utf8')) as { figures: Figure[]; replication: { runs: RunJson[] } }
      const runs = body.replication.runs
      assert.deepEqual(runs.map(r => [r.label, r.relays]), [['no replication', 1], ['1 replica', 1], ['3 replicas', 3]])
      for (const r of runs) {
        assert.equal(r.ingest.sent, 1200)
        assert.equal(r.ingest.rejected, r.notYetReplicated, `${r.label}: only "not yet replicated" refusals\n${output}`)
        assert.ok(r.accepted > 0, `${r.label}: nothing accepted`)
        assert.equal(r.everywhere, r.accepted, `${r.label}: accepted events on every relay\n${output}`)
        assert.equal(r.coverage.length, r.relays)
        for (const [i, c] of r.coverage.entries()) {
          assert.equal(c.missing, 0, `${r.label}: relay ${i} is missing accepted events\n${output}`)
          assert.equal(c.live + c.servedByReq, r.accepted, `${r.label}: relay ${i} holds every accepted event`)
        }
      }
      const value = (name: string): number => {
        const f = body.figures.find(x => x.figure === name)
        assert.ok(f, `figure "${name}" in ${body.figures.map(x => x.figure).join(', ')}`)
        assert.ok(run.stdout.includes(`  ${name} `), `"${name}" in the printed table`)
        return f.value ?? NaN
      }
      for (const label of ['no replication', '1 replica', '3 replicas']) {
        assert.ok(value(`${label}: OK/s`) > 0)
        for (const name of ['EVENT→OK p50', 'EVENT→OK p99', 'relay CPU per 1k OK', 'emulator CPU']) assert.ok(Number.isFinite(value(`${label}: ${name}`)), `${label}: ${name}`)
        assert.equal(value(`${label}: accepted events missing`), 0)
      }
      for (const i of [0, 1, 2]) assert.ok(value(`3 replicas: relay CPU, replica ${i}`) > 0)
      assert.ok(value('3 replicas: emulator CPU') > 0, 'the emulator worked for the replicas')
      assert.ok(value('3 replicas: visibility p50') > 0 && value('3 replicas: visibility p99') >= value('3 replicas: visibility p50'))
      assert.equal(value('3 replicas: accepted events on every replica'), runs[2]?.accepted)
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })
})
