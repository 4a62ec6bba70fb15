// The relay bench's `--url`: the compiled bench (dist/bench/bench.js) as a child process against relays this
// test starts in-process, as a user would point it at their own relay: a plain one, and one that requires
// NIP-42 AUTH and rate-limits kind 1. Small runs (a few hundred events): this checks the mode works, not figures.
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { readFile, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { fileURLToPath } from 'node:url'
import { freePort, startTestRelay, tempDir, type TestRelay } from './harness.js'

const BENCH = fileURLToPath(new URL('../bench/bench.js', import.meta.url))

interface Figure {
  figure: string
  value: number | null
  unit: string
}

interface BenchJson {
  relay: { url: string; started: boolean; auth?: { challenges: number; accepted: number; refused: number } }
  figures: Figure[]
  results: {
    ingestWarmup?: { sent: number; stored: number; rejected: number }
    ingest?: { stored: number; rateLimited: number; rejected: number }
    load?: { stored: number }
    reqsBaseline?: { connections: number; all: { n: number } }
    reqs?: { connections: number; all: { n: number }; generatorGc: { count: number; overlapping: number; slowest: number; slowestOverlapping: number } }
    fanoutSaturation?: { publishers: number; expected: number; delivered: number; missing: number; duplicates: number; outOfOrder: number; stray: number }
    machine?: { workMicros: number; roundTripMicros: { p50: number; p90: number } }
    relayGc?: Record<string, { young: { count: number; ms: number; over10ms: number }; markCompact: { count: number }; incremental: { ms: number } }>
  }
}

/** Runs the bench to its end; resolves with its exit code and output. */
const runBench = (args: string[], timeoutMs = 60_000): Promise<{ code: number | null; stdout: string; stderr: string }> =>
  new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BENCH, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, BENCH_URL: '', BENCH_QUICK: '' } })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()))
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
    const timer = setTimeout(() => (child.kill('SIGKILL'), reject(new Error(`bench did not finish in ${timeoutMs} ms:\n${stdout}\n${stderr}`))), timeoutMs)
    child.once('exit', code => (clearTimeout(timer), resolve({ code, stdout, stderr })))
  })

const SMALL = ['--quick', '--only', 'ingest,req', '--ingest-warmup', '40', '--events', '300', '--store', '600', '--reqs', '50', '--baseline-reqs', '35', '--warmup', '10']

/** `args` with the value after `flag` replaced. */
const withOption = (args: readonly string[], flag: string, value: string): string[] => args.map((a, i) => (args[i - 1] === flag ? value : a))

const figure = (json: BenchJson, name: string): number => {
  const f = json.figures.find(x => x.figure === name)
  assert.ok(f, `figure "${name}" in ${JSON.stringify(json.figures)}`)
  return f.value ?? NaN
}

describe('relay bench --url', () => {
  let dir: string
  let plain: TestRelay
  let guarded: TestRelay
  let guardedUrl: string

  before(async () => {
    dir = await tempDir('msr-bench-url-')
    // The relay tag of NIP-42 must name the relay's public URL, and the bench signs it with the URL it is given.
    const port = await freePort()
    guardedUrl = `ws://127.0.0.1:${port}`
    ;[plain, guarded] = await Promise.all([
      startTestRelay(),
      startTestRelay({
        'network.port': port,
        'network.public_url': guardedUrl,
        'auth.enabled': true,
        'auth.required': true,
        'rate_limiter.event': [{ name: 'notes', description: 'bench test', period: '1m', limit: 100, kinds: [1] }],
      }),
    ])
  })

  after(async () => {
    await Promise.all([plain?.close(), guarded?.close()])
    await rm(dir, { recursive: true, force: true })
  })

  it('runs ingest and REQ against a running relay, prints the table and writes the figures as JSON', async () => {
    const json = join(dir, 'plain.json')
    const run = await runBench(['--url', plain.url, ...SMALL, '--json', json])
    assert.equal(run.code, 0, `exit code\n${run.stdout}\n${run.stderr}`)
    assert.match(run.stdout, /--url: not started by the bench/)
    assert.match(run.stdout, /relay not measured \(--url\)/)
    assert.match(run.stdout, /Figures \(ws:\/\/127\.0\.0\.1:\d+\)\n {2}figure +\| +value \| unit/)
    assert.match(run.stdout, /ingest OK\/s +\| +[\d,.]+ \| events\/s/)
    assert.match(run.stdout, /REQ p99 \(limit 500\) +\| +[\d,.]+ \| ms/)
    const body = JSON.parse(await readFile(json, 'utf8')) as BenchJson
    assert.equal(body.relay.started, false)
    assert.ok(figure(body, 'ingest OK/s') > 0)
    assert.equal(body.results.ingest?.stored, 300)
    // The warm-up goes first, on its own line and figure; the timed figures are the 300 events after it.
    assert.match(run.stdout, /warm-up +40 events first, not in the figures below: [\d.]+ s, EVENT→OK p50 [\d.]+ ms +p90 [\d.]+ ms +p99 [\d.]+ ms/)
    assert.deepEqual([body.results.ingestWarmup?.sent, body.results.ingestWarmup?.stored, body.results.ingestWarmup?.rejected], [40, 40, 0])
    assert.ok(figure(body, 'ingest warm-up OK latency p99 (fresh relay)') > 0)
    const stored = [body.results.ingestWarmup, body.results.ingest, body.results.load].reduce((sum, r) => sum + (r?.stored ?? 0), 0)
    assert.ok(run.stdout.includes(`REQs on ${stored} events stored by this run`), 'the store counts the warm-up, the ingest and the load')
    assert.ok(figure(body, 'REQ events per REQ (mean)') > 0, 'the REQs find the events the bench published')
    assert.equal(figure(body, 'ingest rate-limited'), 0)
    // The generator's own collections, laid over the REQs it timed.
    assert.match(run.stdout, /generator GC +\d+ collections in the generator \([\d.]+ ms, longest [\d.]+ ms\); [\d,]+ REQs waited across one, \d+ of the \d+ slowest/)
    // The 1-connection pass times --baseline-reqs REQs, the concurrent pass --reqs.
    assert.deepEqual([body.results.reqsBaseline?.connections, body.results.reqsBaseline?.all.n], [1, 35])
    assert.deepEqual([body.results.reqs?.connections, body.results.reqs?.all.n], [4, 50])
    const gc = body.results.reqs?.generatorGc
    const n = body.results.reqs?.all.n ?? 0
    assert.ok(gc && n > 0, JSON.stringify(gc))
    assert.ok(gc.overlapping <= n && gc.slowest === Math.max(1, Math.ceil(n / 100)) && gc.slowestOverlapping <= gc.slowest, JSON.stringify(gc))
    // The machine's speed, read before the scenarios: in the header, the JSON and the table's last rows.
    assert.match(run.stdout, /\n {2}speed +JavaScript work [\d.]+ µs per unit .*; loopback TCP round trip to another process p50 [\d.]+ µs, p90 [\d.]+ µs/)
    const speed = body.results.machine
    assert.ok(speed && speed.workMicros > 0 && speed.roundTripMicros.p50 > 0 && speed.roundTripMicros.p90 >= speed.roundTripMicros.p50, JSON.stringify(speed))
    assert.deepEqual(body.figures.slice(-2), [
      { figure: 'machine: JavaScript work unit', value: speed.workMicros, unit: 'µs' },
      { figure: 'machine: loopback round trip p50', value: speed.roundTripMicros.p50, unit: 'µs' },
    ])
    // The relay's own collections are read from its /metrics only when the bench started it.
    assert.doesNotMatch(run.stdout, /relay GC/)
    assert.equal(body.results.relayGc, undefined)
  })

  it('authenticates (NIP-42) when the relay requires it and counts rate-limited events apart, still exiting 0', async () => {
    const json = join(dir, 'guarded.json')
    const run = await runBench(['--url', guardedUrl, ...SMALL, '--json', json])
    assert.equal(run.code, 0, `exit code\n${run.stdout}\n${run.stderr}`)
    const body = JSON.parse(await readFile(json, 'utf8')) as BenchJson
    const auth = body.relay.auth
    assert.ok(auth && auth.challenges > 0 && auth.accepted === auth.challenges && auth.refused === 0, JSON.stringify(auth))
    assert.equal(body.results.ingest?.rejected, 0, 'no auth-required or other rejections')
    assert.ok(figure(body, 'ingest rate-limited') > 0, 'the kind-1 rule limited some events')
    assert.ok(figure(body, 'ingest OK/s') > 0)
    assert.match(run.stdout, /ingest rate-limited +\| +[\d,]+ \| events/)
    assert.match(run.stdout, /NIP-42 +\d+ challenges answered/)
  })

  it('measures fan-out at saturation: several publishers, every delivery checked off and in each publisher\'s order', async () => {
    const json = join(dir, 'saturation.json')
    const run = await runBench([
      '--url', plain.url, '--quick', '--only', 'fanout', '--no-separate', '--subscribers', '20', '--subs-per-connection', '5',
      '--fanout-events', '40', '--publishers', '3', '--saturation-events', '300', '--saturation-window', '10', '--json', json,
    ])
    assert.equal(run.code, 0, `exit code\n${run.stdout}\n${run.stderr}`)
    assert.match(run.stdout, /3\. Fan-out at saturation .*300 events from 3 publishers/)
    const body = JSON.parse(await readFile(json, 'utf8')) as BenchJson
    const r = body.results.fanoutSaturation
    assert.ok(r, 'the saturation round ran')
    assert.deepEqual([r.publishers, r.expected, r.delivered, r.missing, r.duplicates, r.outOfOrder, r.stray], [3, 6000, 6000, 0, 0, 0, 0])
    assert.ok(figure(body, 'fan-out deliveries/s (saturation)') > 0)
    assert.ok(figure(body, 'publish→deliver p99 (saturation)') >= figure(body, 'publish→deliver p50 (saturation)'))
    assert.equal(figure(body, 'fan-out out of order (saturation)'), 0)
    assert.equal(figure(body, 'fan-out slow-reader disconnects (saturation)'), 0)
  })

  it("on its own relay child, reports the relay event loop's collections per phase (from its /metrics) and in the JSON", async () => {
    const json = join(dir, 'child.json')
    // 400 one-connection REQs make the relay allocate about 100 MB (some 250 KB each), several times its young
    // generation, so its event loop must collect it; SMALL's other phases allocate too little to be sure of one.
    const run = await runBench([...withOption(SMALL, '--baseline-reqs', '400'), '--json', json])
    assert.equal(run.code, 0, `exit code\n${run.stdout}\n${run.stderr}`)
    const rows = run.stdout.match(/\n {2}relay GC +young \d+ \([\d.]+ ms, \d+ over 10 ms\), mark-compact \d+ \([\d.]+ ms, \d+ over 10 ms\), incremental marking [\d.]+ ms \(event loop, from \/metrics\)/g)
    const body = JSON.parse(await readFile(json, 'utf8')) as BenchJson
    const phases = Object.keys(body.results.relayGc ?? {})
    assert.deepEqual(phases, ['1. ingest', 'store load', '2. REQ latency, 1 connection(s)', '2. REQ latency, 4 connection(s)'])
    assert.equal(rows?.length, phases.length, run.stdout)
    const young = Object.values(body.results.relayGc ?? {}).reduce((sum, gc) => sum + gc.young.count, 0)
    assert.ok(young > 0, `the relay collected its young generation at least once in ${JSON.stringify(body.results.relayGc)}`)
  })

  it('refuses --url with --cpu-prof (or --profile) and --tracing: exit 2, saying why', async () => {
    for (const flag of ['--profile', '--cpu-prof', '--tracing']) {
      const run = await runBench(['--url', 'ws://127.0.0.1:9', flag])
      assert.equal(run.code, 2, `${flag}: ${run.stderr}`)
      assert.match(run.stderr, /--url .* cannot be combined with/)
    }
  })
})
