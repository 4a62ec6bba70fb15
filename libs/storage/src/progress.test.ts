import assert from 'node:assert/strict'
import { describe, it, mock } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { createProgress, formatDuration } from './progress.js'

/** A stand-in for stderr: collects what is written; a terminal or not. */
const terminal = (isTTY: boolean) => {
  let written = ''
  const stream = {
    isTTY,
    columns: 100,
    write(chunk: string | Buffer, ...rest: unknown[]) {
      written += chunk.toString()
      const callback = rest.find(r => typeof r === 'function') as (() => void) | undefined
      callback?.()
      return true
    },
    on: () => stream,
    once: () => stream,
    emit: () => false,
    removeListener: () => stream,
  }
  return { stream: stream as unknown as NodeJS.WriteStream, written: () => written }
}

/**
 * Runs `body` with process.stdout.write watched; returns what was written there carrying `label`. (Only those:
 * the test runner itself reports on this process's stdout.)
 */
const stdoutDuring = async (label: string, body: () => Promise<void>): Promise<string[]> => {
  const seen: string[] = []
  const write = process.stdout.write.bind(process.stdout)
  const spy = mock.method(process.stdout, 'write', (chunk: string | Buffer, ...rest: never[]) => {
    if (chunk.toString().includes(label)) seen.push(chunk.toString())
    return write(chunk, ...rest)
  })
  try {
    await body()
    return seen
  } finally {
    spy.mock.restore()
  }
}

describe('progress', () => {
  it('off a terminal writes a line with count and rate every interval, and a final line at stop', async () => {
    const err = terminal(false)
    const onStdout = await stdoutDuring('zq-export', async () => {
      const progress = createProgress({ label: 'zq-export', unit: 'events', stream: err.stream, intervalMs: 40 })
      for (let i = 0; i < 5; i++) {
        progress.add(1000)
        await sleep(25)
      }
      progress.stop()
      progress.stop() // once only
      progress.add(5) // ignored in output after stop
      await sleep(60)
    })
    assert.deepEqual(onStdout, [], 'nothing to stdout')
    const lines = err.written().trimEnd().split('\n')
    assert.ok(lines.length >= 3, err.written())
    for (const line of lines.slice(0, -1)) assert.match(line, /^zq-export: \d+ events \(\d+\/s\)$/)
    assert.match(lines.at(-1)!, /^zq-export: done, 5000 events in \d+s \(\d+\/s\)$/)
    assert.ok(lines.slice(0, -1).some(l => !l.includes('(0/s)')), 'a non-zero rate')
  })

  it('off a terminal with a total shows percent and ETA', async () => {
    const err = terminal(false)
    const progress = createProgress({ label: 'import', unit: 'lines', total: 10_000, stream: err.stream, intervalMs: 30 })
    progress.add(2500)
    await sleep(45)
    progress.setTotal(5000)
    progress.add(2500)
    progress.stop()
    const lines = err.written().trimEnd().split('\n')
    assert.match(lines[0]!, /^import: 2500\/10000 lines \(25%, \d+\/s, ETA (\d+s|\d+m\d\ds|\?)\)$/)
    assert.equal(lines.at(-1)!.replace(/in \d+s \(\d+\/s\)/, 'in Ts (R/s)'), 'import: done, 5000/5000 lines in Ts (R/s)')
  })

  it('on a terminal draws a bar with count, rate and ETA on the given stream only', async () => {
    const err = terminal(true)
    const onStdout = await stdoutDuring('zq-import', async () => {
      const progress = createProgress({ label: 'zq-import', unit: 'lines', total: 1000, stream: err.stream })
      progress.add(400)
      await sleep(600)
      progress.stop()
    })
    assert.deepEqual(onStdout, [])
    assert.match(err.written(), /zq-import .* 40% \| 400\/1000 lines \| \d+\/s \| ETA \S+/)
    const unknown = terminal(true)
    const open = createProgress({ label: 'export', unit: 'events', stream: unknown.stream })
    open.add(7)
    open.stop()
    assert.match(unknown.written(), /export: 7 events \| \d+\/s \| \d+s/)
  })

  it('formats durations', () => {
    assert.deepEqual([0, 47, 65, 3599, 7380, Infinity].map(formatDuration), ['0s', '47s', '1m05s', '59m59s', '2h03m', '?'])
  })
})
