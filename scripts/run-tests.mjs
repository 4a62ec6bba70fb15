#!/usr/bin/env node
// `npm test`: node's test runner over the given paths, then a guard that fails the run if any process
// a test started is still alive. Every process of the run inherits MSR_TEST_RUN=<id> in its environment
// (children of children too, unless a test clears the environment); after the runner exits, /proc is
// searched for that mark. Leftovers get a grace period to finish stopping, then are named, killed and
// the run fails. Linux only (/proc); elsewhere the guard says it is skipped.
//
// usage: node scripts/run-tests.mjs [node --test options and paths…]
import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { existsSync } from 'node:fs'
import { readdir, readFile } from 'node:fs/promises'
import { setTimeout as sleep } from 'node:timers/promises'

const MARK = 'MSR_TEST_RUN'
const GRACE_MS = Number(process.env.MSR_TEST_GUARD_GRACE_MS ?? 5000)

/** Processes whose environment carries `MARK=id`, with their command lines. */
const marked = async id => {
  const wanted = `${MARK}=${id}`
  const found = []
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue
    try {
      const environ = await readFile(`/proc/${entry}/environ`, 'utf8')
      if (!environ.split('\0').includes(wanted)) continue
      const cmdline = (await readFile(`/proc/${entry}/cmdline`, 'utf8')).split('\0').join(' ').trim()
      found.push({ pid: Number(entry), cmdline })
    } catch {
      // gone meanwhile, or not ours to read
    }
  }
  return found
}

/** Waits up to the grace period for marked processes to end; returns those still alive. */
const leftovers = async id => {
  const end = Date.now() + GRACE_MS
  for (;;) {
    const alive = await marked(id)
    if (alive.length === 0 || Date.now() >= end) return alive
    await sleep(100)
  }
}

const main = async () => {
  const id = randomBytes(8).toString('hex')
  const runner = spawn(process.execPath, ['--test', ...process.argv.slice(2)], { stdio: 'inherit', env: { ...process.env, [MARK]: id } })
  const forward = signal => runner.kill(signal)
  process.on('SIGINT', forward)
  process.on('SIGTERM', forward)
  const code = await new Promise(resolve => runner.once('exit', (status, signal) => resolve(status ?? (signal ? 1 : 0))))
  if (!existsSync('/proc/self/environ')) {
    process.stderr.write('test guard: no /proc here; leftover processes not checked\n')
    return code
  }
  const alive = await leftovers(id)
  if (alive.length === 0) return code
  process.stderr.write(`test guard: FAILED: ${alive.length} process(es) started by the tests outlived them (killed now):\n`)
  for (const { pid, cmdline } of alive) {
    process.stderr.write(`  pid ${pid}: ${cmdline.slice(0, 300)}\n`)
    try {
      process.kill(pid, 'SIGKILL')
    } catch {
      // already gone
    }
  }
  return 1
}

process.exitCode = await main()
