import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { createLogger } from './logger.js'

// A destination that keeps each JSON line, parsed.
function memoryStream() {
  const lines: Record<string, unknown>[] = []
  return { lines, write: (line: string) => { lines.push(JSON.parse(line) as Record<string, unknown>) } }
}

describe('createLogger', () => {
  it('writes Cloud Logging fields and none of pino\'s defaults', () => {
    const out = memoryStream()
    createLogger({ service: 'relay', destination: out }).info({ conn: 7 }, 'listening')
    const [entry] = out.lines
    assert.ok(entry)
    assert.equal(entry['severity'], 'INFO')
    assert.equal(entry['message'], 'listening')
    assert.deepEqual(entry['serviceContext'], { service: 'relay' })
    assert.equal(entry['conn'], 7)
    assert.match(String(entry['timestamp']), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/)
    for (const noise of ['level', 'msg', 'time', 'pid', 'hostname']) assert.equal(noise in entry, false, noise)
  })

  it('maps every pino level to a Cloud Logging severity', () => {
    const out = memoryStream()
    const log = createLogger({ service: 'relay', level: 'trace', destination: out })
    log.trace('t'); log.debug('d'); log.info('i'); log.warn('w'); log.error('e'); log.fatal('f')
    assert.deepEqual(out.lines.map(l => l['severity']), ['DEBUG', 'DEBUG', 'INFO', 'WARNING', 'ERROR', 'CRITICAL'])
  })

  it('honours the level option', () => {
    const out = memoryStream()
    const log = createLogger({ service: 'relay', level: 'warn', destination: out })
    log.info('hidden'); log.warn('shown')
    assert.deepEqual(out.lines.map(l => l['message']), ['shown'])
  })

  it('serializes errors under err with their stack, and gives Error Reporting a stack_trace', () => {
    const out = memoryStream()
    const log = createLogger({ service: 'relay', destination: out })
    log.error({ err: new Error('disk full') }, 'store failed')
    log.warn(new Error('slow'))
    const [failed, slow] = out.lines
    const err = failed?.['err'] as Record<string, unknown>
    assert.equal(err['type'], 'Error')
    assert.equal(err['message'], 'disk full')
    assert.match(String(err['stack']), /^Error: disk full\n\s+at /)
    assert.equal(failed?.['stack_trace'], err['stack'])
    assert.equal(slow?.['message'], 'slow')
    assert.equal(slow && 'stack_trace' in slow, false)
  })

  it('keeps bindings of child loggers', () => {
    const out = memoryStream()
    createLogger({ service: 'relay', destination: out }).child({ subscription: 'abc' }).info('req')
    assert.equal(out.lines[0]?.['subscription'], 'abc')
  })
})
