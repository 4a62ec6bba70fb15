// scripts/bench.mjs (`npm run bench`) with stand-in benches: what each is run with, and the one JSON file.
import assert from 'node:assert/strict'
import { execFile, spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdir, readFile, readdir, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { after, before, describe, it } from 'node:test'
import { removeDir, ROOT, tempDir } from './platform.js'

const execFileAsync = promisify(execFile)
const SCRIPT = join(ROOT, 'scripts/bench.mjs')

// A stand-in bench: appends {name, args, cwd} to calls.jsonl, writes {bench: name} to its --json file, exits with EXIT_<NAME>.
const standIn = (name: string, calls: string) => `
import { appendFileSync, writeFileSync } from 'node:fs'
const args = process.argv.slice(2)
appendFileSync(${JSON.stringify(calls)}, JSON.stringify({ name: ${JSON.stringify(name)}, args, cwd: process.cwd() }) + '\\n')
const at = args.indexOf('--json')
if (at >= 0) writeFileSync(args[at + 1], JSON.stringify({ bench: ${JSON.stringify(name)} }))
process.exitCode = Number(process.env.EXIT_${name.toUpperCase()} ?? 0)
if (process.env.HANG_${name.toUpperCase()}) {
  const note = signal => appendFileSync(${JSON.stringify(calls)}, JSON.stringify({ name: ${JSON.stringify(name)}, signal }) + '\\n')
  process.on('SIGINT', () => note('SIGINT'))
  process.on('SIGTERM', () => (note('SIGTERM'), process.exit(143)))
  setInterval(() => undefined, 1000)
}
`

interface Call {
  name: string
  args?: string[]
  cwd?: string
  signal?: string
}

describe('scripts/bench.mjs (npm run bench)', () => {
  let root: string
  let user: string
  let calls: string
  before(async () => {
    root = await tempDir()
    user = join(root, 'where-npm-ran')
    calls = join(root, 'calls.jsonl')
    await mkdir(user)
    for (const [name, dir] of [['relay', 'services/relay'], ['mailbox', 'services/mailbox-api']] as const) {
      await mkdir(join(root, dir, 'dist/bench'), { recursive: true })
      await writeFile(join(root, dir, 'dist/bench/bench.js'), standIn(name, calls))
    }
  })
  after(async () => {
    await removeDir(root)
  })

  const launch = async (args: string[], exits: { relay?: number; mailbox?: number } = {}): Promise<{ code: number; calls: Call[]; stderr: string }> => {
    await writeFile(calls, '')
    const env = { ...process.env, MSR_BENCH_ROOT: root, INIT_CWD: user, EXIT_RELAY: String(exits.relay ?? 0), EXIT_MAILBOX: String(exits.mailbox ?? 0) }
    const result = await execFileAsync(process.execPath, [SCRIPT, ...args], { env }).then(
      r => ({ code: 0, stderr: r.stderr }),
      (e: { code: number; stderr: string }) => ({ code: e.code, stderr: e.stderr }),
    )
    const text = await readFile(calls, 'utf8')
    return { ...result, calls: text.split('\n').filter(Boolean).map(line => JSON.parse(line) as Call) }
  }

  it('runs the relay bench, then the mailbox bench, each with the same options, where npm was run', async () => {
    const { code, calls } = await launch(['--quick', '--store-dir', 'data'])
    assert.equal(code, 0)
    assert.deepEqual(calls, [
      { name: 'relay', args: ['--quick', '--store-dir', 'data'], cwd: user },
      { name: 'mailbox', args: ['--quick', '--store-dir', 'data'], cwd: user },
    ])
  })

  it('--json FILE: one file holding both results, relative to where npm was run; the benches write theirs apart', async () => {
    const leftBefore = (await readdir(tmpdir())).filter(n => n.startsWith('msr-bench-json-')).length
    for (const args of [['--json', 'out.json', '--quick'], ['--quick', '--json=out.json']]) {
      const { code, calls } = await launch(args)
      assert.equal(code, 0, args.join(' '))
      assert.deepEqual(JSON.parse(await readFile(join(user, 'out.json'), 'utf8')), { relay: { bench: 'relay' }, mailbox: { bench: 'mailbox' } })
      const files = calls.map(c => (c.args ?? [])[(c.args ?? []).indexOf('--json') + 1] as string)
      assert.equal(new Set(files).size, 2, 'each bench its own file')
      for (const [i, c] of calls.entries()) {
        assert.deepEqual(c.args, ['--quick', '--json', files[i]])
        assert.ok(!existsSync(files[i] as string), 'the temp files are removed')
      }
    }
    assert.equal((await readdir(tmpdir())).filter(n => n.startsWith('msr-bench-json-')).length, leftBefore, 'no temp dir left')
  })

  it('stops after a usage error of the relay bench (exit 2), but runs the mailbox bench after a failed run (exit 1)', async () => {
    const usage = await launch(['--only', 'nonsense'], { relay: 2 })
    assert.equal(usage.code, 2)
    assert.deepEqual(usage.calls.map(c => c.name), ['relay'])
    const failed = await launch(['--json', 'failed.json'], { relay: 1 })
    assert.equal(failed.code, 1)
    assert.deepEqual(failed.calls.map(c => c.name), ['relay', 'mailbox'])
    assert.deepEqual(JSON.parse(await readFile(join(user, 'failed.json'), 'utf8')), { relay: { bench: 'relay' }, mailbox: { bench: 'mailbox' } })
    const mailboxFailed = await launch([], { mailbox: 1 })
    assert.equal(mailboxFailed.code, 1)
  })

  it('refuses --json without a file name (exit 2) and runs nothing', async () => {
    for (const args of [['--json'], ['--json', '--quick'], ['--json=']]) {
      const { code, calls, stderr } = await launch(args)
      assert.equal(code, 2, args.join(' '))
      assert.match(stderr, /^bench: --json needs a file name/)
      assert.deepEqual(calls, [])
    }
  })

  it('passes SIGTERM on to the bench running and ends with its code; a SIGINT of its own it leaves to the terminal', async () => {
    await writeFile(calls, '')
    const env = { ...process.env, MSR_BENCH_ROOT: root, INIT_CWD: user, HANG_RELAY: '1' }
    const launcher = spawn(process.execPath, [SCRIPT], { env, stdio: 'ignore' })
    const exited = new Promise<number | null>(resolve => launcher.on('exit', code => resolve(code)))
    const lines = async () => (await readFile(calls, 'utf8')).split('\n').filter(Boolean).map(line => JSON.parse(line) as Call)
    const until = async (done: (c: Call[]) => boolean) => {
      for (let i = 0; i < 200 && !done(await lines()); i++) await new Promise(resolve => setTimeout(resolve, 25))
    }
    await until(c => c.length > 0)
    launcher.kill('SIGINT')
    await new Promise(resolve => setTimeout(resolve, 300))
    assert.equal(launcher.exitCode, null, 'a SIGINT sent to the launcher alone does not end it')
    launcher.kill('SIGTERM')
    assert.equal(await exited, 143)
    assert.deepEqual(await lines(), [{ name: 'relay', args: [], cwd: user }, { name: 'relay', signal: 'SIGTERM' }], 'no SIGINT passed on, no mailbox bench after')
  })
})
