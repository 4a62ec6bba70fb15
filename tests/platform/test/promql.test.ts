// The PromQL evaluator of the monitoring tests against hand-computed answers: Prometheus's rate
// extrapolation and counter resets, histogram_quantile's interpolation, comparisons as filters, and/or/on,
// absent and vector.
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { evaluate, parsePromql, SampleStore } from './promql.js'

/** The value of the one-sample instant vector `expr` at `t`, or undefined when the vector is empty. */
const instant = (expr: string, store: SampleStore, t: number): number | undefined => {
  const v = evaluate(parsePromql(expr), store, t)
  if (v.kind !== 'vector') throw new Error(`${expr} is not a vector`)
  assert.ok(v.samples.length <= 1, `${expr}: one series at most, got ${JSON.stringify(v.samples)}`)
  return v.samples[0]?.value
}

describe('the evaluator (the subset of PromQL the kit uses)', () => {
  const store = new SampleStore()
  const T = 1_000_000_000
  for (let i = 0; i <= 10; i++)
    store.addScrape(
      [
        `c_total{k="a"} ${i * 15}`,
        `c_total{k="b"} ${i < 5 ? i : i - 5}`, // a counter reset at i = 5
        `g 7`,
        `h_bucket{le="1"} ${i * 2}`,
        `h_bucket{le="2"} ${i * 4}`,
        `h_bucket{le="+Inf"} ${i * 4}`,
      ].join('\n'),
      T + i * 15_000,
      { job: 'relay', instance: 'x' },
    )
  const at = T + 150_000
  const value = (expr: string) => instant(expr, store, at)

  it('rate and increase extrapolate like Prometheus, and count through a counter reset', () => {
    assert.equal(value('sum(rate(c_total{k="a"}[150s]))'), 1, 'one per second')
    assert.ok(Math.abs((value('sum(increase(c_total{k="a"}[2m]))') as number) - 120) < 1e-9)
    // 1, 2, 3, 4, 0, 1, …, 5 within the window: 4 before the reset, 5 after, less the first sample's 1, extrapolated.
    assert.ok(Math.abs((value('sum(increase(c_total{k="b"}[150s]))') as number) - (8 * 150) / 135) < 1e-9, 'the reset does not count as a decrease')
    assert.equal(value('sum(changes(c_total{k="b"}[150s]))'), 9)
  })

  it('histogram_quantile interpolates within the bucket; comparisons filter; and/or/on combine', () => {
    assert.equal(value('histogram_quantile(0.5, sum by (le) (rate(h_bucket[150s])))'), 1)
    assert.equal(value('histogram_quantile(0.75, sum by (le) (rate(h_bucket[150s])))'), 1.5)
    assert.equal(value('max(g) > 5'), 7)
    assert.equal(value('max(g) > 8'), undefined)
    assert.equal(value('max(g) > 5 and on() sum(rate(c_total[5m])) > 0'), 7)
    assert.equal(value('max(g) > 5 and on() sum(rate(c_total[5m])) > 100'), undefined)
    assert.equal(value('(sum(rate(nothing_total[5m])) or vector(0)) + 1'), 1)
    assert.equal(value('absent(nothing{job="relay"})'), 1)
    assert.equal(value('absent(g{job="relay"})'), undefined)
    assert.equal(value('count(max_over_time(c_total[5m])) > 0 + 1'), 2)
    assert.equal(value('1 - sum(rate(h_bucket{le="1"}[150s])) / sum(rate(h_bucket{le="+Inf"}[150s]))'), 0.5)
  })
})

describe('the parser', () => {
  it('refuses what the evaluator does not implement, and syntax errors, rather than guess', () => {
    assert.throws(() => parsePromql('sum(rate(x[5m])'), /syntax error/)
    assert.throws(() => parsePromql('rate(x[5m] offset 1h)'), /not supported|syntax error/)
    assert.throws(() => parsePromql('topk(3, x)'), /not supported/)
    assert.throws(() => parsePromql('x / on(a) group_left y'), /not supported/)
  })
})
