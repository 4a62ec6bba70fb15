import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { describe, it } from 'node:test'
import { promisify } from 'node:util'

const run = promisify(execFile)
const register = new URL('./register.js', import.meta.url).href
// A script that makes one span and leaves by draining its event loop (the register module flushes on beforeExit).
const SCRIPT = "import('@opentelemetry/api').then(({ trace }) => trace.getTracer('t').startSpan('register-test-span').end())"

const node = (env: Record<string, string>) =>
  run(process.execPath, ['--import', register, '--input-type=module', '-e', SCRIPT], { env: { PATH: process.env['PATH'] ?? '', ...env } })

describe('--import @msr/telemetry/register', () => {
  it('prints and exports nothing when no exporter is configured', async () => {
    const { stdout, stderr } = await node({ MSR_DEFAULT_SERVICE_NAME: 'msr-test' })
    assert.equal(stdout, '')
    assert.equal(stderr, '')
  })

  it('starts the SDK from OTEL_* and flushes before the process ends', async () => {
    const { stdout } = await node({ OTEL_TRACES_EXPORTER: 'console', MSR_DEFAULT_SERVICE_NAME: 'msr-test' })
    assert.match(stdout, /register-test-span/)
    assert.match(stdout, /msr-test/)
  })

  it('exports to Cloud Trace with gcp, and without credentials says so at exit instead of crashing', async () => {
    const { stdout, stderr } = await node({ OTEL_TRACES_EXPORTER: 'gcp', GOOGLE_CLOUD_PROJECT: 'msr-test', METADATA_SERVER_DETECTION: 'none' })
    assert.equal(stdout, '')
    assert.match(stderr, /^msr-telemetry: the last spans were not exported: failed to create client: Could not load the default credentials/)
    assert.equal(stderr.trim().split('\n').length, 1)
  })
})
