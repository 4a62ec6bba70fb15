import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { documentedMetrics } from './metrics-doc.js'

describe('documentedMetrics', () => {
  it('reads name, type and label names (values in parentheses left out) between the markers only', () => {
    const markdown = [
      '| `outside_total` | counter | | not in the section |',
      '<!-- svc-metrics:start -->',
      '| metric | type | labels | meaning |',
      '|---|---|---|---|',
      '| `svc_events_total` | counter | `outcome` (stored, `duplicate`), `kind` | events |',
      '| `svc_depth` | gauge | | queue depth |',
      '<!-- svc-metrics:end -->',
    ].join('\n')
    assert.deepEqual(
      documentedMetrics(markdown, 'svc-metrics'),
      new Map([
        ['svc_events_total', { type: 'counter', labels: ['kind', 'outcome'] }],
        ['svc_depth', { type: 'gauge', labels: [] }],
      ]),
    )
    assert.equal(documentedMetrics(markdown, 'other-metrics').size, 0)
  })
})
