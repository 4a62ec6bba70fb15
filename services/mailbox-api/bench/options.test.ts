import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { fileURLToPath } from 'node:url'
import { UsageError } from '@msr/bench'
import { cpuCount, parseBenchOptions } from './options.js'

describe('bench options: CPU pinning', () => {
  it('takes taskset lists from flags or MAILBOX_BENCH_* variables, and leaves both unpinned by default', () => {
    assert.deepEqual(pick(parseBenchOptions(['--api-cpus', '0-1', '--generator-cpus', '2,3'], {})), { apiCpus: '0-1', generatorCpus: '2,3' })
    assert.deepEqual(pick(parseBenchOptions([], { MAILBOX_BENCH_API_CPUS: '1', MAILBOX_BENCH_GENERATOR_CPUS: '0' })), { apiCpus: '1', generatorCpus: '0' })
    assert.deepEqual(pick(parseBenchOptions([], {})), { apiCpus: undefined, generatorCpus: undefined })
  })

  it('refuses what taskset would not read, naming the flag', () => {
    for (const bad of ['a', '1-', '0;1', '-1'])
      assert.throws(() => parseBenchOptions([`--api-cpus=${bad}`], {}), /--api-cpus must be a CPU list/)
  })

  it('counts the CPUs a list names (the cores the capacity projection uses), each once', () => {
    assert.equal(cpuCount('0'), 1)
    assert.equal(cpuCount('2-3'), 2)
    assert.equal(cpuCount('0,2-3'), 3)
    assert.equal(cpuCount('0-3,1'), 4)
  })
})

const pick = (o: { apiCpus: string | undefined; generatorCpus: string | undefined }) => ({ apiCpus: o.apiCpus, generatorCpus: o.generatorCpus })

describe('bench options: --store-dir', () => {
  it('takes an existing directory from the flag or BENCH_STORE_DIR (the relay bench reads the same), and the OS temp dir by default', () => {
    const dir = mkdtempSync(join(tmpdir(), 'msr-bench-options-'))
    try {
      assert.equal(parseBenchOptions(['--store-dir', dir], {}).storeDir, dir)
      assert.equal(parseBenchOptions([], { BENCH_STORE_DIR: dir }).storeDir, dir)
      assert.equal(parseBenchOptions([], {}).storeDir, undefined)
      const file = join(dir, 'a-file')
      writeFileSync(file, '')
      for (const bad of [file, join(dir, 'missing')])
        assert.throws(() => parseBenchOptions(['--store-dir', bad], {}), /--store-dir expects an existing directory/)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})

describe('bench options: usage errors', () => {
  it('are UsageErrors naming the option, whether the flag is unknown, its value bad, or the combination refused', () => {
    for (const args of [['--no-such-flag'], ['--deposits', 'many'], ['--limit', '500'], ['--clients', '1'], ['--rate-limit', '9999999999'], ['stray']])
      assert.throws(() => parseBenchOptions(args, {}), (e: unknown) => e instanceof UsageError, args.join(' '))
  })

  it('end the bench with exit code 2 and one line saying what is wrong, before anything is started', () => {
    const bench = fileURLToPath(new URL('./bench.js', import.meta.url))
    const run = spawnSync(process.execPath, [bench, '--limit', '500'], { encoding: 'utf8', timeout: 60_000 })
    assert.equal(run.status, 2)
    assert.match(run.stderr, /^bench: --limit may be at most 100 \(the API refuses larger pages\)\n\(node services\/mailbox-api\/dist\/bench\/bench\.js --help lists the options\)\n$/)
    assert.equal(run.stdout, '')
  })
})
