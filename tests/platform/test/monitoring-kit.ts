// infra/monitoring (SLOs, alerts, dashboards) as the monitoring tests read it: the generator's functions,
// every PromQL expression the kit holds with where it comes from, and the check of an expression against
// what the services export (metric names, label names, histogram bucket boundaries, job names).
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { parsePromql, selectors, type Expr } from './promql.js'
import { ROOT } from './platform.js'

export type Matcher = { label: string; op: string; value: string }
export type Alert = { name: string; service: string; runbook: string; summary: string; expr: string; threshold: number; for: string; cloud_only?: boolean; replication?: boolean }
export type Panel = { title: string; description: string; unit: string; cloud_only?: boolean; queries: { expr: string; legend: string }[] }
export type Slo = {
  name: string
  title: string
  description: string
  service: string
  target: number
  error_ratio: string
  cloud: { ratio?: Record<'bad' | 'total', { metric: string; matchers: Matcher[] }>; latency?: { metric: string; le: number; matchers: Matcher[] } }
}
export type BurnRate = { name: string; severity: string; long: string; short: string; factor: number }
export type Kit = {
  alerts: Alert[]
  dashboards: { name: string; title: string; panels: Panel[] }[]
  slos: { window: string; burn_alert: string; burn_rates: BurnRate[]; slos: Slo[] }
}

/** infra/monitoring/generate.mjs, typed. */
export interface Generator {
  loadKit(): Kit
  alertExpr(alert: Alert, threshold?: number): string
  errorRatio(slo: Slo, window: string): string
  burnExpr(kit: Kit, slo: Slo, rate: BurnRate, target?: number): string
  burnAlertName(slo: Slo, rate: BurnRate): string
  generatedFiles(kit?: Kit): Record<string, string>
  RULES_FILE: string
  DASHBOARD_DIR: string
}

export const loadGenerator = async (): Promise<Generator> => (await import(pathToFileURL(join(ROOT, 'infra/monitoring/generate.mjs')).href)) as Generator

/** One expression of the kit: where it is used, its text, whether it reads Google Cloud metrics, and the labels a legend names. */
export type KitExpr = { where: string; expr: string; cloudOnly: boolean; legendLabels: string[] }

/** Every PromQL expression of the kit, thresholds and windows filled in as the backends use them. */
export const kitExpressions = (gen: Generator, kit: Kit): KitExpr[] => [
  ...kit.alerts.map(a => ({ where: `alert ${a.name}`, expr: gen.alertExpr(a), cloudOnly: !!a.cloud_only, legendLabels: [] })),
  ...kit.slos.slos.flatMap(slo => [
    { where: `SLO ${slo.name} error ratio`, expr: gen.errorRatio(slo, '1h'), cloudOnly: false, legendLabels: [] },
    ...kit.slos.burn_rates.map(rate => ({ where: `SLO ${slo.name} ${rate.name} burn`, expr: gen.burnExpr(kit, slo, rate), cloudOnly: false, legendLabels: [] })),
  ]),
  ...kit.dashboards.flatMap(d =>
    d.panels.flatMap(p =>
      p.queries.map(q => ({
        where: `dashboard ${d.name} panel "${p.title}"`,
        expr: q.expr,
        cloudOnly: !!p.cloud_only,
        legendLabels: [...q.legend.matchAll(/\{\{(\w+)\}\}/g)].map(m => m[1] as string),
      })),
    ),
  ),
]

/** What the services export: family name → type, label names, `le` values (histograms). */
export type Exported = Map<string, { type: string; labels: Set<string>; le: Set<string> }>

/** Labels the scraper adds (Prometheus locally, the Managed Service for Prometheus sidecar on Google Cloud), and the jobs. */
export const TARGET_LABELS = ['job', 'instance']
export const JOBS = ['relay', 'mailbox']
/** Google Cloud's own metrics as PromQL names them (Cloud Monitoring), allowed only in cloud-only entries. */
const CLOUD_METRIC = /^[a-z]+_googleapis_com:/

/** The family a selector's name reads and the labels its series carry, or a problem. */
const family = (exported: Exported, name: string): { labels: Set<string>; le?: Set<string> } | string => {
  const direct = exported.get(name)
  if (direct && direct.type !== 'histogram' && direct.type !== 'summary') return { labels: direct.labels }
  const suffix = /^(.*)_(bucket|sum|count)$/.exec(name)
  const base = suffix && exported.get(suffix[1] as string)
  if (base && (base.type === 'histogram' || (base.type === 'summary' && suffix[2] !== 'bucket')))
    return suffix[2] === 'bucket' ? { labels: new Set([...base.labels, 'le']), le: base.le } : { labels: base.labels }
  if (direct) return `${name} is a ${direct.type}: select ${name}_bucket, _sum or _count`
  return `metric ${name} is not exported by the services`
}

/** The labels the series of `e` carry (what `by`, `on` and legends may name), collecting problems on the way. */
const labelsOf = (e: Expr, exported: Exported, problems: string[]): Set<string> => {
  const union = (...sets: Set<string>[]) => new Set(sets.flatMap(s => [...s]))
  switch (e.type) {
    case 'number':
      return new Set()
    case 'selector':
    case 'matrix': {
      const s = e.type === 'matrix' ? e.selector : e
      const found = family(exported, s.name)
      if (typeof found === 'string') return problems.push(found), new Set()
      const available = union(found.labels, new Set(TARGET_LABELS))
      for (const m of s.matchers) {
        if (!available.has(m.label)) problems.push(`${s.name} has no label ${m.label} (it has ${[...available].sort().join(', ')})`)
        if (m.label === 'le' && m.op === '=' && !found.le?.has(m.value)) problems.push(`${s.name} has no bucket le="${m.value}" (it has ${[...(found.le ?? [])].join(', ')})`)
        if (m.label === 'job' && m.op === '=' && !JOBS.includes(m.value)) problems.push(`no job "${m.value}" is scraped (jobs: ${JOBS.join(', ')})`)
      }
      return available
    }
    case 'call': {
      if (e.func === 'vector') return new Set()
      const inner = e.args.map(a => labelsOf(a, exported, problems))
      const last = inner[inner.length - 1] ?? new Set<string>()
      if (e.func === 'histogram_quantile') {
        if (!last.has('le')) problems.push('histogram_quantile over series without le')
        return new Set([...last].filter(l => l !== 'le'))
      }
      return last
    }
    case 'aggregate': {
      const inner = labelsOf(e.expr, exported, problems)
      if (!e.grouping) return new Set()
      for (const l of e.grouping.labels) if (!inner.has(l)) problems.push(`${e.op} by (${l}): the series aggregated have no label ${l}`)
      return e.grouping.without ? new Set([...inner].filter(l => !e.grouping?.labels.includes(l))) : new Set(e.grouping.labels)
    }
    case 'unary':
      return labelsOf(e.expr, exported, problems)
    case 'binary': {
      const l = labelsOf(e.left, exported, problems)
      const r = labelsOf(e.right, exported, problems)
      if (e.matching) for (const x of e.matching.labels) if (!l.has(x) || !r.has(x)) problems.push(`on/ignoring (${x}): not a label of both sides`)
      return e.op === 'or' ? union(l, r) : l
    }
  }
}

/** Problems of one kit expression against what the services export: empty when every name and label exists. */
export const checkExpression = (k: KitExpr, exported: Exported): string[] => {
  let parsed: Expr
  try {
    parsed = parsePromql(k.expr)
  } catch (error) {
    return [`${k.where}: ${(error as Error).message}`]
  }
  const cloud = selectors(parsed).filter(s => CLOUD_METRIC.test(s.name))
  if (cloud.length > 0) return k.cloudOnly ? [] : [`${k.where}: reads Google Cloud's ${cloud[0]?.name} but is not marked cloud_only`]
  const problems: string[] = []
  const labels = labelsOf(parsed, exported, problems)
  for (const l of k.legendLabels) if (!labels.has(l)) problems.push(`legend names {{${l}}}, which the query's series do not carry`)
  return problems.map(p => `${k.where}: ${p}`)
}
