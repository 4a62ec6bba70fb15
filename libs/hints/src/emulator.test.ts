import assert from 'node:assert/strict'
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, afterEach, describe, it } from 'node:test'
import { findEmulator, startEmulator } from './emulator.js'

// Fake emulators (no Java needed) to check how the harness finds, waits for and stops one.
const dir = mkdtempSync(join(tmpdir(), 'fake-emulator-'))
const pidFile = join(dir, 'pid')
const script = (name: string, body: string): string => {
  const path = join(dir, name)
  writeFileSync(path, body)
  chmodSync(path, 0o755)
  return path
}
const answersOk = script(
  'answers-ok',
  `#!/usr/bin/env node
require('fs').writeFileSync(process.env.FAKE_PID_FILE, String(process.pid))
const port = Number(process.argv.find(a => a.startsWith('--port=')).slice(7))
require('http').createServer((req, res) => res.end('Ok')).listen(port, '127.0.0.1')
`,
)
const exitsAtOnce = script('exits-at-once', '#!/bin/sh\necho "java.net.BindException: Address already in use" >&2\nexit 3\n')
const neverAnswers = script('never-answers', '#!/bin/sh\necho $$ > "$FAKE_PID_FILE"\necho "starting up" >&2\nexec sleep 60\n')
const notExecutable = join(dir, 'not-executable')
writeFileSync(notExecutable, '')

const saved = process.env.PUBSUB_EMULATOR_BIN
process.env.FAKE_PID_FILE = pidFile
afterEach(() => {
  if (saved === undefined) delete process.env.PUBSUB_EMULATOR_BIN
  else process.env.PUBSUB_EMULATOR_BIN = saved
})
after(() => rmSync(dir, { recursive: true, force: true }))

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}
const fakePid = (): number => Number(readFileSync(pidFile, 'utf8'))

describe('findEmulator', () => {
  it('takes PUBSUB_EMULATOR_BIN first, and says so when it is not an executable', () => {
    process.env.PUBSUB_EMULATOR_BIN = answersOk
    assert.deepEqual(findEmulator(), { path: answersOk })
    process.env.PUBSUB_EMULATOR_BIN = notExecutable
    assert.deepEqual(findEmulator(), { missing: `PUBSUB_EMULATOR_BIN=${notExecutable} is not an executable file` })
  })
})

describe('startEmulator', () => {
  it('answers on a loopback port, and stop() ends the process (twice is harmless)', async () => {
    process.env.PUBSUB_EMULATOR_BIN = answersOk
    const emu = await startEmulator({ projectId: 'p1' })
    assert.match(emu.host, /^127\.0\.0\.1:\d+$/)
    assert.equal(emu.projectId, 'p1')
    assert.equal(await (await fetch(`http://${emu.host}/`)).text(), 'Ok')
    const pid = fakePid()
    await emu.stop()
    assert.equal(alive(pid), false)
    await emu.stop()
  })

  it('rejects with the output when the emulator exits before answering', async () => {
    process.env.PUBSUB_EMULATOR_BIN = exitsAtOnce
    await assert.rejects(startEmulator({ timeoutMs: 30_000 }), /exited \(3\) before answering on 127\.0\.0\.1:\d+:\nja.*Address already in use/)
  })

  it('rejects with the output after timeoutMs and leaves no process behind', async () => {
    process.env.PUBSUB_EMULATOR_BIN = neverAnswers
    await assert.rejects(startEmulator({ timeoutMs: 500 }), /did not answer on 127\.0\.0\.1:\d+ within 500 ms:\nstarting up/)
    assert.equal(alive(fakePid()), false)
  })
})
