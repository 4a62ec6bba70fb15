import assert from 'node:assert/strict'
import { describe, it, mock } from 'node:test'
import { printRelay } from './report.js'

/** What printRelay prints with RELAY_DATA__WRITE_MAP set to `value` (undefined: unset) in the bench's environment. */
const relayLine = (value: string | undefined): string => {
  const saved = process.env.RELAY_DATA__WRITE_MAP
  if (value === undefined) delete process.env.RELAY_DATA__WRITE_MAP
  else process.env.RELAY_DATA__WRITE_MAP = value
  const log = mock.method(console, 'log', () => undefined)
  try {
    printRelay({ pid: 1, url: 'ws://127.0.0.1:1', dataDir: '/dev/shm/msr-bench-x' }, 'bcrypto-native', 'warn', undefined)
    return log.mock.calls.map(call => String(call.arguments[0])).join('\n')
  } finally {
    log.mock.restore()
    if (saved === undefined) delete process.env.RELAY_DATA__WRITE_MAP
    else process.env.RELAY_DATA__WRITE_MAP = saved
  }
}

describe('the report names how the relay child writes its store', () => {
  it('says "written through the map" when RELAY_DATA__WRITE_MAP=true reaches the child, and nothing otherwise', () => {
    assert.match(relayLine('true'), /data \/dev\/shm\/msr-bench-x \([^)]*\), written through the map \(RELAY_DATA__WRITE_MAP\), log level warn/)
    assert.doesNotMatch(relayLine(undefined), /written through the map/)
    assert.doesNotMatch(relayLine('false'), /written through the map/)
  })
})
