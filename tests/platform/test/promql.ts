// PromQL for the monitoring tests: expressions parsed with the Prometheus project's own grammar
// (@prometheus-io/lezer-promql, the parser of Prometheus's web UI) into a small tree, an evaluator of the
// subset infra/monitoring uses (selectors, rate/increase/changes/…_over_time/absent/vector/
// histogram_quantile, sum/max/min/count/avg by/without, arithmetic, comparisons and and/or/unless with
// on/ignoring) over samples scraped from the services, and the Prometheus text format parsed into samples.
// Rates follow Prometheus's extrapolation; histogram_quantile its bucket interpolation.
import { parser } from '@prometheus-io/lezer-promql'
import type { SyntaxNode } from '@lezer/common'

export type Matcher = { label: string; op: '=' | '!=' | '=~' | '!~'; value: string }
export type Expr =
  | { type: 'number'; value: number }
  | { type: 'selector'; name: string; matchers: Matcher[] }
  | { type: 'matrix'; selector: Extract<Expr, { type: 'selector' }>; rangeMs: number }
  | { type: 'call'; func: string; args: Expr[] }
  | { type: 'aggregate'; op: string; grouping?: { without: boolean; labels: string[] }; expr: Expr }
  | { type: 'binary'; op: string; bool: boolean; matching?: { on: boolean; labels: string[] }; left: Expr; right: Expr }
  | { type: 'unary'; expr: Expr }

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000, y: 31_536_000_000 }

/** A PromQL duration (`5m`, `1h30m`) in milliseconds. */
export const durationMs = (text: string): number => {
  let total = 0
  const rest = text.replace(/(\d+(?:\.\d+)?)(ms|s|m|h|d|w|y)/g, (_, n: string, unit: string) => ((total += Number(n) * (UNITS[unit] as number)), ''))
  if (rest !== '' || total === 0) throw new Error(`not a duration: ${text}`)
  return total
}

const kids = (node: SyntaxNode): SyntaxNode[] => {
  const out: SyntaxNode[] = []
  for (let c = node.firstChild; c; c = c.nextSibling) out.push(c)
  return out
}

const unquote = (literal: string): string => {
  if (literal.startsWith('`')) return literal.slice(1, -1)
  return JSON.parse(literal.startsWith("'") ? `"${literal.slice(1, -1).replace(/"/g, '\\"')}"` : literal) as string
}

/** Parses `text` into the tree below, or throws naming the first syntax error or unsupported construct. */
export const parsePromql = (text: string): Expr => {
  const tree = parser.parse(text)
  const src = (n: SyntaxNode) => text.slice(n.from, n.to)
  tree.iterate({
    enter: n => {
      if (n.type.isError) throw new Error(`PromQL syntax error at ${n.from} in: ${text}`)
    },
  })
  const expr = (node: SyntaxNode): Expr => {
    const c = kids(node)
    switch (node.name) {
      case 'PromQL':
      case 'ParenExpr':
        return expr(c.find(k => !['(', ')'].includes(k.name)) as SyntaxNode)
      case 'NumberDurationLiteral':
        return { type: 'number', value: Number(src(node)) }
      case 'VectorSelector':
        return selector(node)
      case 'MatrixSelector': {
        const range = c.find(k => k.name === 'DurationExpr') as SyntaxNode
        return { type: 'matrix', selector: selector(c[0] as SyntaxNode), rangeMs: durationMs(src(range)) }
      }
      case 'FunctionCall': {
        const func = src(c[0] as SyntaxNode)
        return { type: 'call', func, args: kids(c[1] as SyntaxNode).filter(k => ![',', '(', ')'].includes(k.name)).map(expr) }
      }
      case 'AggregateExpr': {
        const op = src(c[0] as SyntaxNode)
        const modifier = c.find(k => k.name === 'AggregateModifier')
        const body = kids(c.find(k => k.name === 'FunctionCallBody') as SyntaxNode).filter(k => ![',', '(', ')'].includes(k.name))
        if (body.length !== 1) throw new Error(`${op} with a parameter is not supported: ${text}`)
        const grouping = modifier && {
          without: kids(modifier)[0]?.name === 'Without',
          labels: kids(kids(modifier)[1] as SyntaxNode).map(src),
        }
        return { type: 'aggregate', op, ...(grouping && { grouping }), expr: expr(body[0] as SyntaxNode) }
      }
      case 'BinaryExpr': {
        const [left, opNode, ...rest] = c as [SyntaxNode, SyntaxNode, ...SyntaxNode[]]
        const bool = rest.some(k => k.name === 'BoolModifier')
        const clause = rest.find(k => k.name === 'MatchingModifierClause')
        const matching = clause && { on: kids(clause)[0]?.name === 'On', labels: kids(kids(clause)[1] as SyntaxNode).map(src) }
        if (clause && kids(clause).some(k => k.name === 'GroupLeft' || k.name === 'GroupRight')) throw new Error(`group_left/right not supported: ${text}`)
        return { type: 'binary', op: src(opNode).toLowerCase(), bool, ...(matching && { matching }), left: expr(left), right: expr(rest[rest.length - 1] as SyntaxNode) }
      }
      case 'UnaryExpr': {
        const inner = expr(c[1] as SyntaxNode)
        return src(c[0] as SyntaxNode) === '-' ? { type: 'unary', expr: inner } : inner
      }
      default:
        throw new Error(`${node.name} is not supported by this evaluator: ${src(node)}`)
    }
  }
  const selector = (node: SyntaxNode): Extract<Expr, { type: 'selector' }> => {
    const c = kids(node)
    const name = c.find(k => k.name === 'Identifier')
    const matchers: Matcher[] = []
    for (const m of kids(c.find(k => k.name === 'LabelMatchers') ?? node).filter(k => k.name === 'UnquotedLabelMatcher')) {
      const [label, op, value] = kids(m) as [SyntaxNode, SyntaxNode, SyntaxNode]
      matchers.push({ label: src(label), op: src(op) as Matcher['op'], value: unquote(src(value)) })
    }
    if (!name) throw new Error(`a selector without a metric name: ${src(node)}`)
    return { type: 'selector', name: src(name), matchers }
  }
  return expr(tree.topNode)
}

/** Every selector in `e`. */
export const selectors = (e: Expr): Extract<Expr, { type: 'selector' }>[] => {
  switch (e.type) {
    case 'selector':
      return [e]
    case 'matrix':
      return [e.selector]
    case 'call':
      return e.args.flatMap(selectors)
    case 'aggregate':
    case 'unary':
      return selectors(e.expr)
    case 'binary':
      return [...selectors(e.left), ...selectors(e.right)]
    default:
      return []
  }
}

// ---------------------------------------------------------------------------------------------
// Samples

export type Labels = Record<string, string>
export type Series = { labels: Labels; points: [number, number][] }

/** Scraped samples over time, as Prometheus stores them: one series per label set. */
export class SampleStore {
  readonly series = new Map<string, Series>()

  /** Adds one scrape (Prometheus text format) taken at `t` (ms), with the target labels Prometheus adds. */
  addScrape(text: string, t: number, target: Labels): void {
    for (const { name, labels, value } of parseExposition(text)) {
      const all = { __name__: name, ...labels, ...target }
      const key = JSON.stringify(Object.entries(all).sort())
      let s = this.series.get(key)
      if (!s) this.series.set(key, (s = { labels: all, points: [] }))
      s.points.push([t, value])
    }
  }
}

/** The samples of a Prometheus text-format exposition (comments skipped). */
export const parseExposition = (text: string): { name: string; labels: Labels; value: number }[] => {
  const out: { name: string; labels: Labels; value: number }[] = []
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line)
    if (!m) throw new Error(`not a sample line: ${line}`)
    const labels: Labels = {}
    for (const [, k, v] of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[k as string] = JSON.parse(`"${v}"`) as string
    out.push({ name: m[1] as string, labels, value: m[3] === '+Inf' ? Infinity : m[3] === '-Inf' ? -Infinity : Number(m[3]) })
  }
  return out
}

/** Metric families of an exposition: name → type, the label names its samples carry, and their `le` values. */
export const inventory = (text: string): Map<string, { type: string; labels: Set<string>; le: Set<string> }> => {
  const families = new Map<string, { type: string; labels: Set<string>; le: Set<string> }>()
  for (const [, name, type] of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) families.set(name as string, { type: type as string, labels: new Set(), le: new Set() })
  for (const sample of parseExposition(text)) {
    const family = families.get(sample.name) ?? families.get(sample.name.replace(/_(bucket|sum|count)$/, ''))
    if (!family) continue
    for (const label of Object.keys(sample.labels)) if (label !== 'le' && label !== 'quantile') family.labels.add(label)
    if (sample.labels.le !== undefined) family.le.add(sample.labels.le)
  }
  return families
}

// ---------------------------------------------------------------------------------------------
// Evaluation

type Sample = { labels: Labels; value: number }
type Value = { kind: 'scalar'; value: number } | { kind: 'vector'; samples: Sample[] } | { kind: 'matrix'; series: Series[] }

const LOOKBACK_MS = 5 * 60_000

const matches = (labels: Labels, m: Matcher): boolean => {
  const v = labels[m.label] ?? ''
  if (m.op === '=') return v === m.value
  if (m.op === '!=') return v !== m.value
  const full = new RegExp(`^(?:${m.value})$`).test(v)
  return m.op === '=~' ? full : !full
}

const without = (labels: Labels, drop: string[]): Labels => Object.fromEntries(Object.entries(labels).filter(([k]) => !drop.includes(k)))
const only = (labels: Labels, keep: string[]): Labels => Object.fromEntries(Object.entries(labels).filter(([k]) => keep.includes(k)))
const key = (labels: Labels): string => JSON.stringify(Object.entries(labels).sort())

/** Prometheus's extrapolated rate/increase over the points of one series in (start, end]. */
const extrapolated = (points: [number, number][], start: number, end: number, isRate: boolean): number | undefined => {
  if (points.length < 2) return undefined
  const [firstT, firstV] = points[0] as [number, number]
  const [lastT, lastV] = points[points.length - 1] as [number, number]
  let result = lastV - firstV
  for (let i = 1; i < points.length; i++) if ((points[i] as [number, number])[1] < (points[i - 1] as [number, number])[1]) result += (points[i - 1] as [number, number])[1]
  const sampled = (lastT - firstT) / 1000
  const average = sampled / (points.length - 1)
  let toStart = (firstT - start) / 1000
  const toEnd = (end - lastT) / 1000
  if (result > 0 && firstV >= 0) toStart = Math.min(toStart, sampled * (firstV / result))
  const threshold = average * 1.1
  let interval = sampled
  interval += toStart < threshold ? toStart : average / 2
  interval += toEnd < threshold ? toEnd : average / 2
  result *= interval / sampled
  return isRate ? result / ((end - start) / 1000) : result
}

/** Prometheus's bucketQuantile over one group of (le, cumulative count) buckets. */
const bucketQuantile = (q: number, buckets: [number, number][]): number => {
  buckets.sort((a, b) => a[0] - b[0])
  if (buckets.length < 2 || (buckets[buckets.length - 1] as [number, number])[0] !== Infinity) return NaN
  for (let i = 1; i < buckets.length; i++) (buckets[i] as [number, number])[1] = Math.max((buckets[i] as [number, number])[1], (buckets[i - 1] as [number, number])[1])
  const total = (buckets[buckets.length - 1] as [number, number])[1]
  if (total === 0) return NaN
  if (q < 0) return -Infinity
  if (q > 1) return Infinity
  let rank = q * total
  const b = buckets.findIndex(([, count]) => count >= rank)
  if (b === buckets.length - 1) return (buckets[buckets.length - 2] as [number, number])[0]
  if (b === 0 && (buckets[0] as [number, number])[0] <= 0) return (buckets[0] as [number, number])[0]
  let start = 0
  let count = (buckets[b] as [number, number])[1]
  if (b > 0) {
    start = (buckets[b - 1] as [number, number])[0]
    count -= (buckets[b - 1] as [number, number])[1]
    rank -= (buckets[b - 1] as [number, number])[1]
  }
  return start + ((buckets[b] as [number, number])[0] - start) * (rank / count)
}

const arithmetic: Record<string, (a: number, b: number) => number> = {
  '+': (a, b) => a + b,
  '-': (a, b) => a - b,
  '*': (a, b) => a * b,
  '/': (a, b) => a / b,
  '%': (a, b) => a % b,
  '^': (a, b) => a ** b,
}
const comparison: Record<string, (a: number, b: number) => boolean> = {
  '>': (a, b) => a > b,
  '<': (a, b) => a < b,
  '>=': (a, b) => a >= b,
  '<=': (a, b) => a <= b,
  '==': (a, b) => a === b,
  '!=': (a, b) => a !== b,
}

/** Evaluates `e` at time `t` (ms) over `store`: an instant vector (or a scalar) as Prometheus would answer it. */
export const evaluate = (e: Expr, store: SampleStore, t: number): Value => {
  const vec = (x: Expr): Sample[] => {
    const v = evaluate(x, store, t)
    if (v.kind !== 'vector') throw new Error(`expected an instant vector, got a ${v.kind}`)
    return v.samples
  }
  switch (e.type) {
    case 'number':
      return { kind: 'scalar', value: e.value }
    case 'selector': {
      const samples: Sample[] = []
      for (const s of store.series.values()) {
        if (s.labels.__name__ !== e.name || !e.matchers.every(m => matches(s.labels, m))) continue
        const last = s.points.filter(([pt]) => pt <= t && pt > t - LOOKBACK_MS).pop()
        if (last) samples.push({ labels: s.labels, value: last[1] })
      }
      return { kind: 'vector', samples }
    }
    case 'matrix': {
      const series: Series[] = []
      for (const s of store.series.values()) {
        if (s.labels.__name__ !== e.selector.name || !e.selector.matchers.every(m => matches(s.labels, m))) continue
        const points = s.points.filter(([pt]) => pt <= t && pt > t - e.rangeMs)
        if (points.length > 0) series.push({ labels: s.labels, points })
      }
      return { kind: 'matrix', series }
    }
    case 'unary':
      return unaryMinus(evaluate(e.expr, store, t))
    case 'call':
      return call(e, store, t, vec)
    case 'aggregate':
      return { kind: 'vector', samples: aggregate(e, vec(e.expr)) }
    case 'binary':
      return binary(e, evaluate(e.left, store, t), evaluate(e.right, store, t))
  }
}

const unaryMinus = (v: Value): Value => {
  if (v.kind === 'scalar') return { kind: 'scalar', value: -v.value }
  if (v.kind === 'vector') return { kind: 'vector', samples: v.samples.map(s => ({ labels: without(s.labels, ['__name__']), value: -s.value })) }
  throw new Error('unary minus on a range vector')
}

const call = (e: Extract<Expr, { type: 'call' }>, store: SampleStore, t: number, vec: (x: Expr) => Sample[]): Value => {
  const range = (fn: (s: Series, rangeMs: number) => number | undefined): Value => {
    const arg = e.args[0]
    if (arg?.type !== 'matrix') throw new Error(`${e.func} takes a range vector`)
    const m = evaluate(arg, store, t) as Extract<Value, { kind: 'matrix' }>
    const samples: Sample[] = []
    for (const s of m.series) {
      const value = fn(s, arg.rangeMs)
      if (value !== undefined) samples.push({ labels: without(s.labels, ['__name__']), value })
    }
    return { kind: 'vector', samples }
  }
  switch (e.func) {
    case 'rate':
      return range((s, r) => extrapolated(s.points, t - r, t, true))
    case 'increase':
      return range((s, r) => extrapolated(s.points, t - r, t, false))
    case 'changes':
      return range(s => s.points.slice(1).filter(([, v], i) => v !== (s.points[i] as [number, number])[1]).length)
    case 'max_over_time':
      return range(s => Math.max(...s.points.map(([, v]) => v)))
    case 'min_over_time':
      return range(s => Math.min(...s.points.map(([, v]) => v)))
    case 'count_over_time':
      return range(s => s.points.length)
    case 'vector': {
      const arg = evaluate(e.args[0] as Expr, store, t)
      if (arg.kind !== 'scalar') throw new Error('vector() takes a scalar')
      return { kind: 'vector', samples: [{ labels: {}, value: arg.value }] }
    }
    case 'absent': {
      const arg = e.args[0] as Expr
      if (vec(arg).length > 0) return { kind: 'vector', samples: [] }
      const labels = arg.type === 'selector' ? Object.fromEntries(arg.matchers.filter(m => m.op === '=').map(m => [m.label, m.value])) : {}
      return { kind: 'vector', samples: [{ labels, value: 1 }] }
    }
    case 'histogram_quantile': {
      const q = evaluate(e.args[0] as Expr, store, t)
      if (q.kind !== 'scalar') throw new Error('histogram_quantile takes a scalar first')
      const groups = new Map<string, { labels: Labels; buckets: [number, number][] }>()
      for (const s of vec(e.args[1] as Expr)) {
        if (s.labels.le === undefined) continue
        const labels = without(s.labels, ['le', '__name__'])
        const g = groups.get(key(labels)) ?? { labels, buckets: [] }
        g.buckets.push([s.labels.le === '+Inf' ? Infinity : Number(s.labels.le), s.value])
        groups.set(key(labels), g)
      }
      return { kind: 'vector', samples: [...groups.values()].map(g => ({ labels: g.labels, value: bucketQuantile(q.value, g.buckets) })) }
    }
    default:
      throw new Error(`function ${e.func} is not supported by this evaluator`)
  }
}

const aggregate = (e: Extract<Expr, { type: 'aggregate' }>, input: Sample[]): Sample[] => {
  const groups = new Map<string, { labels: Labels; values: number[] }>()
  for (const s of input) {
    const labels = !e.grouping ? {} : e.grouping.without ? without(s.labels, [...e.grouping.labels, '__name__']) : only(s.labels, e.grouping.labels)
    const g = groups.get(key(labels)) ?? { labels, values: [] }
    g.values.push(s.value)
    groups.set(key(labels), g)
  }
  const fold: Record<string, (v: number[]) => number> = {
    sum: v => v.reduce((a, b) => a + b, 0),
    max: v => Math.max(...v),
    min: v => Math.min(...v),
    count: v => v.length,
    avg: v => v.reduce((a, b) => a + b, 0) / v.length,
  }
  const f = fold[e.op]
  if (!f) throw new Error(`aggregation ${e.op} is not supported by this evaluator`)
  return [...groups.values()].map(g => ({ labels: g.labels, value: f(g.values) }))
}

const binary = (e: Extract<Expr, { type: 'binary' }>, l: Value, r: Value): Value => {
  if (l.kind === 'matrix' || r.kind === 'matrix') throw new Error('a binary operator on a range vector')
  const signature = (labels: Labels) =>
    key(e.matching ? (e.matching.on ? only(labels, e.matching.labels) : without(labels, [...e.matching.labels, '__name__'])) : without(labels, ['__name__']))
  if (['and', 'or', 'unless'].includes(e.op)) {
    if (l.kind !== 'vector' || r.kind !== 'vector') throw new Error(`${e.op} takes two instant vectors`)
    const right = new Set(r.samples.map(s => signature(s.labels)))
    const left = new Set(l.samples.map(s => signature(s.labels)))
    if (e.op === 'and') return { kind: 'vector', samples: l.samples.filter(s => right.has(signature(s.labels))) }
    if (e.op === 'unless') return { kind: 'vector', samples: l.samples.filter(s => !right.has(signature(s.labels))) }
    return { kind: 'vector', samples: [...l.samples, ...r.samples.filter(s => !left.has(signature(s.labels)))] }
  }
  const arith = arithmetic[e.op]
  const cmp = comparison[e.op]
  if (!arith && !cmp) throw new Error(`operator ${e.op} is not supported by this evaluator`)
  const apply = (a: number, b: number): number | undefined => (arith ? arith(a, b) : cmp?.(a, b) ? (e.bool ? 1 : a) : e.bool ? 0 : undefined)
  if (l.kind === 'scalar' && r.kind === 'scalar') {
    if (cmp && !e.bool) throw new Error('a comparison between scalars needs bool')
    return { kind: 'scalar', value: apply(l.value, r.value) as number }
  }
  const dropName = (labels: Labels) => (arith || e.bool ? without(labels, ['__name__']) : labels)
  if (l.kind === 'vector' && r.kind === 'scalar')
    return { kind: 'vector', samples: l.samples.flatMap(s => ((v = apply(s.value, r.value)) => (v === undefined ? [] : [{ labels: dropName(s.labels), value: v }]))()) }
  if (l.kind === 'scalar' && r.kind === 'vector')
    return {
      kind: 'vector',
      samples: r.samples.flatMap(s => ((v = apply(l.value, s.value)) => (v === undefined ? [] : [{ labels: dropName(s.labels), value: cmp && !e.bool ? s.value : v }]))()),
    }
  const lv = l as Extract<Value, { kind: 'vector' }>
  const rv = r as Extract<Value, { kind: 'vector' }>
  const right = new Map<string, Sample>()
  for (const s of rv.samples) {
    if (right.has(signature(s.labels))) throw new Error('many-to-one matching is not supported (group_left/right)')
    right.set(signature(s.labels), s)
  }
  const samples: Sample[] = []
  for (const s of lv.samples) {
    const other = right.get(signature(s.labels))
    if (!other) continue
    const v = apply(s.value, other.value)
    if (v === undefined) continue
    let labels = dropName(s.labels)
    if (e.matching) labels = e.matching.on ? only(labels, e.matching.labels) : without(labels, e.matching.labels)
    samples.push({ labels, value: v })
  }
  return { kind: 'vector', samples }
}
