// scripts/run-tests.mjs (`npm test`): a run whose tests leave a process alive fails, naming it, and the
// process is killed; a run that cleans up passes with the runner's own exit code.
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { removeDir, ROOT, tempDir } from './platform.js'

const SCRIPT = join(ROOT, 'scripts/run-tests.mjs')

/** A test file that starts `sleep <seconds>` and, unless `leak`, stops it before it ends. */
const testFile = (seconds: number, leak: boolean) => `
import { spawn } from 'node:child_process'
import { test } from 'node:test'
test('starts a child', async () => {
  const child = spawn('sleep', ['${seconds}'], { stdio: 'ignore' })
  await new Promise(resolve => child.once('spawn', resolve))
  console.log('child-pid ' + child.pid)
  ${leak ? 'child.unref()' : "child.kill(); await new Promise(resolve => child.once('exit', resolve))"}
})
`

const runGuard = (file: string): Promise<{ code: number | null; out: string; err: string }> =>
  new Promise((resolve, reject) => {
    // Without this runner's NODE_TEST_CONTEXT, the inner runner reports as a top-level run would.
    const { NODE_TEST_CONTEXT: _context, ...env } = process.env
    const child = spawn(process.execPath, [SCRIPT, file], { env: { ...env, MSR_TEST_GUARD_GRACE_MS: '300' }, stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    let err = ''
    child.stdout.on('data', chunk => (out += String(chunk)))
    child.stderr.on('data', chunk => (err += String(chunk)))
    child.once('error', reject)
    child.once('exit', code => resolve({ code, out, err }))
  })

/** Running (a killed orphan may linger as a zombie where nothing reaps it: that is not alive). */
const alive = (pid: number): boolean => {
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'))
  } catch {
    return false
  }
}

describe('scripts/run-tests.mjs: the leftover-process guard', () => {
  let dir: string
  before(async () => {
    dir = await tempDir()
  })
  after(() => removeDir(dir))

  it('fails a run whose test leaves a child alive, names it and kills it', async () => {
    const file = join(dir, 'leak.test.mjs')
    await writeFile(file, testFile(47, true))
    const { code, out, err } = await runGuard(file)
    assert.match(out, /# pass 1/, 'the test itself passed')
    assert.equal(code, 1)
    assert.match(err, /test guard: FAILED: 1 process\(es\)/)
    assert.match(err, /sleep 47/)
    const pid = Number(/child-pid (\d+)/.exec(out)?.[1])
    for (let i = 0; i < 50 && alive(pid); i++) await new Promise(resolve => setTimeout(resolve, 20))
    assert.equal(alive(pid), false, 'the leftover was killed')
  })

  it('passes a run whose test stops what it started', async () => {
    const file = join(dir, 'clean.test.mjs')
    await writeFile(file, testFile(48, false))
    const { code, err } = await runGuard(file)
    assert.equal(code, 0, err)
    assert.doesNotMatch(err, /test guard/)
  })
})
