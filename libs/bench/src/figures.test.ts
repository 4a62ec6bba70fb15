import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { figureTable, valueText } from './figures.js'

describe('figure table', () => {
  it('writes counts from 100 up with separators, smaller values with two decimals, and - for what was not measured', () => {
    assert.equal(valueText(14_452.4), '14,452')
    assert.equal(valueText(53.456), '53.46')
    assert.equal(valueText(7), '7')
    assert.equal(valueText(Number.NaN), '-')
  })

  it('aligns one row per figure under a title naming what was measured', () => {
    const lines = figureTable(
      [
        { figure: 'mixed (deposits + GET pages + acks)', value: 2595.2, unit: 'requests/s' },
        { figure: 'deposit latency p99', value: 21.06, unit: 'ms' },
      ],
      "the bench's mailbox API child, http://127.0.0.1:1",
    )
    assert.deepEqual(lines, [
      "Figures (the bench's mailbox API child, http://127.0.0.1:1)",
      '  figure                              | value | unit',
      '  ----------------------------------- | ----- | ----------',
      '  mixed (deposits + GET pages + acks) | 2,595 | requests/s',
      '  deposit latency p99                 | 21.06 | ms',
    ])
  })
})
