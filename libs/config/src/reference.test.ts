import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import * as z from 'zod'
import { configReference } from './reference.js'
import { sampleSchema } from './sample-schema.js'

describe('configReference', () => {
  const doc = configReference(sampleSchema, { envPrefix: 'RELAY_' })

  it('has a heading per section in schema order, nested tables and arrays of tables included', () => {
    const headings = doc.split('\n').filter(l => l.startsWith('### '))
    assert.deepEqual(headings, [
      '### Top-level keys', '### [network]', '### [auth.req]', '### [limitation]', '### [rate_limiter]', '### [[rate_limiter.event]]',
    ])
  })

  it('documents each key with type, default, description and env var', () => {
    const lines = doc.split('\n')
    assert.ok(lines.includes('| key | type | default | description | env var |'))
    assert.ok(lines.includes('| `log_level` | one of "debug", "info", "warn", "error" | `"info"` | Minimum level to log | `RELAY_LOG_LEVEL` |'))
    assert.ok(lines.includes('| `port` | integer (1..65535) | `8080` | TCP port to listen on | `RELAY_NETWORK__PORT` |'))
    assert.ok(lines.includes('| `idle_timeout` | duration (0..24d) | `"30s"` | Close idle connections after this long | `RELAY_NETWORK__IDLE_TIMEOUT` |'))
    assert.ok(lines.includes('| `ip_whitelist` | array of string | `[]` | Addresses allowed to subscribe | `RELAY_AUTH__REQ__IP_WHITELIST` |'))
    assert.ok(lines.includes('| `max_limit` | integer (> 0) | `500` | Largest REQ limit honoured | `RELAY_LIMITATION__MAX_LIMIT` |'))
    assert.ok(lines.includes('| `relay_name` | string |  | Name shown in NIP-11 | `RELAY_LIMITATION__RELAY_NAME` |'))
    assert.ok(lines.includes('| `event` | array of tables | `[]` | Per-connection event rate limits | `RELAY_RATE_LIMITER__EVENT` |'))
  })

  it('lists the keys of each table in an array of tables, which have no env var of their own', () => {
    const lines = doc.split('\n')
    assert.ok(lines.includes('| `per_second` | number (> 0) | **required** | Events allowed per second |  |'))
    assert.ok(lines.includes('| `kinds` | array of integer |  | Kinds this limit applies to |  |'))
  })

  it('puts a section description under its heading', () => {
    assert.match(doc, /### \[network\]\n\nThe listening socket\n\n\| key/)
  })

  it('omits the env column without a prefix', () => {
    const plain = configReference(sampleSchema)
    assert.ok(plain.split('\n').includes('| key | type | default | description |'))
    assert.doesNotMatch(plain, /RELAY_/)
  })

  it('names unions, literals, records and descriptions given through .meta()', () => {
    const schema = z.strictObject({
      mode: z.union([z.literal('off'), z.number()]).default('off').meta({ description: 'Off or a level' }),
      tags: z.record(z.string(), z.boolean()).optional(),
      pipe: z.string().describe('a | b'),
    })
    const lines = configReference(schema).split('\n')
    assert.ok(lines.includes('| `mode` | "off" or number | `"off"` | Off or a level |'))
    assert.ok(lines.includes('| `tags` | table of boolean |  |  |'))
    assert.ok(lines.includes('| `pipe` | string | **required** | a \\| b |'))
  })
})
