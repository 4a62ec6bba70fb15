import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseBenchOptions, UsageError } from './options.js'

describe('bench options: --replication', () => {
  it('runs scenario 1 only, from the flag or BENCH_REPLICATION, with the ingest preset', () => {
    for (const options of [parseBenchOptions(['--replication', '--quick'], {}), parseBenchOptions([], { BENCH_REPLICATION: '1', BENCH_QUICK: '1' })]) {
      assert.deepEqual([options.replication, [...options.scenarios], options.events, options.connections, options.window], [true, ['ingest'], 5000, 20, 10])
    }
    assert.equal(parseBenchOptions([], {}).replication, false)
  })

  it('is refused with --url, --tracing, --cpu-prof and --only', () => {
    for (const args of [['--url', 'ws://127.0.0.1:1'], ['--tracing'], ['--cpu-prof'], ['--only', 'ingest']])
      assert.throws(() => parseBenchOptions(['--replication', ...args], {}), (e: unknown) => e instanceof UsageError && e.message.includes('--replication'), args.join(' '))
  })
})

describe('bench options: fan-out at saturation', () => {
  it('runs by default: 8 publishers, 20,000 events, window 50 (quick: 4 and 2,000)', () => {
    const full = parseBenchOptions([], {})
    assert.deepEqual([full.saturation, full.publishers, full.saturationEvents, full.saturationWindow, full.subscribers], [true, 8, 20_000, 50, 500])
    const quick = parseBenchOptions(['--quick'], {})
    assert.deepEqual([quick.saturation, quick.publishers, quick.saturationEvents, quick.saturationWindow], [true, 4, 2000, 50])
  })

  it('takes flags, then BENCH_* variables', () => {
    const flags = parseBenchOptions(['--publishers', '16', '--saturation-events', '40_000', '--saturation-window', '10', '--no-saturation'], {})
    assert.deepEqual([flags.saturation, flags.publishers, flags.saturationEvents, flags.saturationWindow], [false, 16, 40_000, 10])
    const env = parseBenchOptions([], { BENCH_PUBLISHERS: '3', BENCH_SATURATION_EVENTS: '900', BENCH_SATURATION_WINDOW: '5', BENCH_SATURATION: '0' })
    assert.deepEqual([env.saturation, env.publishers, env.saturationEvents, env.saturationWindow], [false, 3, 900, 5])
    assert.equal(parseBenchOptions(['--publishers', '2'], { BENCH_PUBLISHERS: '3' }).publishers, 2, 'the flag wins')
  })

  it('refuses a count that is not a positive integer, naming the flag', () => {
    for (const args of [['--publishers', '0'], ['--saturation-events', 'many'], ['--saturation-window', '-1']])
      assert.throws(() => parseBenchOptions(args, {}), (e: unknown) => e instanceof UsageError && e.message.includes(args[0] as string))
  })
})

describe('bench options: --store-dir', () => {
  it('takes the flag, then BENCH_STORE_DIR; unset by default (the OS temp dir)', () => {
    const here = tmpdir()
    assert.equal(parseBenchOptions(['--store-dir', here], {}).storeDir, here)
    assert.equal(parseBenchOptions([], { BENCH_STORE_DIR: here }).storeDir, here)
    assert.equal(parseBenchOptions([], {}).storeDir, undefined)
  })

  it('refuses a directory that does not exist, and --url (the bench starts no relay there)', () => {
    const missing = join(tmpdir(), 'msr-no-such-dir-for-the-bench')
    assert.throws(() => parseBenchOptions(['--store-dir', missing], {}), (e: unknown) => e instanceof UsageError && e.message.includes(missing))
    assert.throws(
      () => parseBenchOptions(['--store-dir', tmpdir(), '--url', 'ws://127.0.0.1:1'], {}),
      (e: unknown) => e instanceof UsageError && e.message.includes('--store-dir'),
    )
  })
})

describe('bench options: --ingest-warmup', () => {
  it('publishes 5,000 events first by default (quick: 500), from the flag, then BENCH_INGEST_WARMUP', () => {
    assert.equal(parseBenchOptions([], {}).ingestWarmup, 5000)
    assert.equal(parseBenchOptions(['--quick'], {}).ingestWarmup, 500)
    assert.equal(parseBenchOptions(['--ingest-warmup', '12_000'], {}).ingestWarmup, 12_000)
    assert.equal(parseBenchOptions([], { BENCH_INGEST_WARMUP: '700' }).ingestWarmup, 700)
    assert.equal(parseBenchOptions(['--ingest-warmup', '2'], { BENCH_INGEST_WARMUP: '700' }).ingestWarmup, 2, 'the flag wins')
  })

  it('takes 0 for none, and refuses what is not a count, naming the flag', () => {
    assert.equal(parseBenchOptions(['--ingest-warmup', '0'], {}).ingestWarmup, 0)
    assert.equal(parseBenchOptions([], { BENCH_INGEST_WARMUP: '0' }).ingestWarmup, 0)
    for (const raw of ['-1', '1.5', 'some'])
      assert.throws(
        () => parseBenchOptions([`--ingest-warmup=${raw}`], {}),
        (e: unknown) => e instanceof UsageError && e.message === `--ingest-warmup must be a non-negative integer, not "${raw}"`,
      )
    assert.throws(() => parseBenchOptions(['--events', '0'], {}), (e: unknown) => e instanceof UsageError && e.message.includes('--events must be a positive integer'), 'other counts still refuse 0')
  })
})

describe('bench options: --baseline-reqs', () => {
  it('times 7,000 REQs on one connection by default (about 1,000 per filter; quick: 400), apart from --reqs', () => {
    const full = parseBenchOptions([], {})
    assert.deepEqual([full.baselineReqs, full.reqs], [7000, 2000])
    assert.deepEqual([parseBenchOptions(['--quick'], {}).baselineReqs, parseBenchOptions(['--quick'], {}).reqs], [400, 400])
    assert.equal(parseBenchOptions(['--baseline-reqs', '900'], { BENCH_BASELINE_REQS: '30' }).baselineReqs, 900, 'the flag wins')
    assert.equal(parseBenchOptions([], { BENCH_BASELINE_REQS: '30' }).baselineReqs, 30)
    assert.throws(() => parseBenchOptions(['--baseline-reqs', '0'], {}), (e: unknown) => e instanceof UsageError && e.message.includes('--baseline-reqs'))
  })
})
