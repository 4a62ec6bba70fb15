// The process-level last resort of `msr-relay serve`: a rejection nobody handles and an exception thrown
// to the top are logged (CRITICAL) and counted, and the process keeps running. Checked in a process of
// its own, since the test runner installs handlers of its own in this one.
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { describe, it } from 'node:test'
import { withTimeout } from './harness.js'

const guards = new URL('../src/process-guards.js', import.meta.url).href
const telemetry = import.meta.resolve('@msr/telemetry')

const script = `
import { installProcessGuards } from ${JSON.stringify(guards)}
import { createLogger } from ${JSON.stringify(telemetry)}
const counted = []
installProcessGuards(createLogger({ service: 'guard-test', level: 'info' }), escape => counted.push(escape))
Promise.reject(new Error('nobody handles this rejection'))
setTimeout(() => { throw new Error('thrown to the top') }, 10)
setTimeout(() => { console.log(JSON.stringify({ alive: true, counted })); process.exit(0) }, 200)
`

const run = (): Promise<{ code: number | null; lines: Record<string, unknown>[] }> =>
  new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    child.stdout.on('data', chunk => (out += String(chunk)))
    child.once('error', reject)
    child.once('exit', code => resolve({ code, lines: out.trim().split('\n').map(line => JSON.parse(line) as Record<string, unknown>) }))
  })

describe('process guards', () => {
  it('log and count an unhandled rejection and an uncaught exception, and the process keeps running', async () => {
    const { code, lines } = await withTimeout(run(), 'the guarded process')
    assert.equal(code, 0)
    // In either order: on a busy machine the timer's exception can come before the rejection is reported.
    const escapes = lines.filter(l => l.escape !== undefined).sort((a, b) => String(a.escape).localeCompare(String(b.escape)))
    assert.deepEqual(
      escapes.map(l => [l.escape, l.severity]),
      [
        ['uncaught_exception', 'CRITICAL'],
        ['unhandled_rejection', 'CRITICAL'],
      ],
    )
    assert.match(JSON.stringify(escapes[0]?.err), /thrown to the top/)
    assert.match(JSON.stringify(escapes[1]?.err), /nobody handles this rejection/)
    const last = lines.at(-1) as { alive?: boolean; counted?: string[] }
    assert.equal(last.alive, true)
    assert.deepEqual([...(last.counted ?? [])].sort(), ['uncaught_exception', 'unhandled_rejection'])
  })
})
