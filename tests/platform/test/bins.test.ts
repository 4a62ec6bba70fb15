// The commands README names are on the path right after `npm install`: npm links a workspace's bin only
// when its target exists at install time, so each target is a committed launcher, never a file of dist/.
import assert from 'node:assert/strict'
import { execFileSync, spawnSync } from 'node:child_process'
import { readFileSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { ROOT } from './platform.js'

const COMMANDS = [
  { workspace: 'services/relay', name: 'msr-relay', usage: /^usage: msr-relay /m },
  { workspace: 'services/mailbox-api', name: 'msr-mailbox', usage: /^usage: msr-mailbox /m },
]
const committed = new Set(execFileSync('git', ['ls-files'], { cwd: ROOT, encoding: 'utf8' }).split('\n'))

describe('the command-line launchers', () => {
  for (const { workspace, name, usage } of COMMANDS) {
    it(`${name} points at a committed, executable launcher that runs the CLI`, () => {
      const bin = (JSON.parse(readFileSync(join(ROOT, workspace, 'package.json'), 'utf8')) as { bin: Record<string, string> }).bin[name]
      assert.ok(bin, `${workspace}/package.json has no bin ${name}`)
      const path = join(workspace, bin)
      assert.ok(committed.has(path), `${path} is not in the repository (npm would link nothing at install)`)
      assert.equal(statSync(join(ROOT, path)).mode & 0o111, 0o111, `${path} is not executable`)
      const run = spawnSync(join(ROOT, path), ['--help'], { cwd: ROOT, encoding: 'utf8', timeout: 60_000 })
      assert.equal(run.status, 0, run.stderr)
      assert.match(run.stdout, usage)
    })
  }
})
