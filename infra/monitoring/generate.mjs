#!/usr/bin/env node
// The local monitoring files, generated from infra/monitoring/*.yaml (the one source of truth, which
// infra/terraform/monitoring.tf reads too): Prometheus's alerting rules (infra/local/prometheus/rules.yml)
// and Grafana's dashboards (infra/local/grafana/dashboards/*.json). Tests import the functions below; the
// platform test fails when the committed files differ from what this writes.
//
// usage: node infra/monitoring/generate.mjs           write the files
//        node infra/monitoring/generate.mjs --check   exit 1 when a file is out of date
import { readFileSync, writeFileSync, mkdirSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parse, stringify } from 'yaml'

export const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const HERE = join(ROOT, 'infra/monitoring')
export const RULES_FILE = 'infra/local/prometheus/rules.yml'
export const DASHBOARD_DIR = 'infra/local/grafana/dashboards'

/** The three source files, parsed: `{ alerts, dashboards, slos }` (slos with window, burn_alert, burn_rates). */
export const loadKit = () => ({
  alerts: parse(readFileSync(join(HERE, 'alerts.yaml'), 'utf8')).alerts,
  dashboards: parse(readFileSync(join(HERE, 'dashboards.yaml'), 'utf8')).dashboards,
  slos: parse(readFileSync(join(HERE, 'slos.yaml'), 'utf8')),
})

/** An alert's expression with its threshold (the default unless given), as every backend evaluates it. */
export const alertExpr = (alert, threshold = alert.threshold) => alert.expr.replaceAll('$threshold', String(threshold))

/** An SLO's error ratio over `window` (a PromQL duration). */
export const errorRatio = (slo, window) => slo.error_ratio.replaceAll('$window', window)

/** The burn-rate alert expression of `slo` for one of the burn rates (`target` overrides the SLO's). */
export const burnExpr = (kit, slo, rate, target = slo.target) =>
  kit.slos.burn_alert
    .replaceAll('$error_ratio_long', errorRatio(slo, rate.long))
    .replaceAll('$error_ratio_short', errorRatio(slo, rate.short))
    .replaceAll('$factor', String(rate.factor))
    .replaceAll('$target', String(target))

/** The Prometheus alert name of an SLO's burn-rate alert (alert names are metric-name shaped). */
export const burnAlertName = (slo, rate) => `SLOBurn_${slo.name.replaceAll('-', '_')}_${rate.name}`

/** The alert's runbook link, relative to the repository. */
export const runbookPath = anchor => `docs/runbook.md#${anchor}`

/** Prometheus's rule file: the alerts that read the services' metrics, and every SLO's burn-rate alerts. */
export const prometheusRules = kit => ({
  groups: [
    {
      name: 'msr-incidents',
      rules: kit.alerts
        .filter(a => !a.cloud_only)
        .map(a => ({
          alert: a.name,
          expr: alertExpr(a),
          for: a.for,
          labels: { service: a.service, severity: 'page' },
          annotations: { summary: a.summary, runbook: runbookPath(a.runbook) },
        })),
    },
    {
      name: 'msr-slo-burn-rates',
      rules: kit.slos.slos.flatMap(slo =>
        kit.slos.burn_rates.map(rate => ({
          alert: burnAlertName(slo, rate),
          expr: burnExpr(kit, slo, rate),
          labels: { service: slo.service, severity: rate.severity, slo: slo.name },
          annotations: {
            summary: `${slo.title}: the error budget (${+(1 - slo.target).toFixed(6)} of ${kit.slos.window}) burns over ${rate.factor}x (${rate.long} and ${rate.short}).`,
            runbook: 'docs/slo.md',
          },
        })),
      ),
    },
  ],
})

/** One Grafana time-series panel at grid position `i` (two per row). */
const grafanaPanel = (panel, i) => ({
  id: i + 1,
  type: 'timeseries',
  title: panel.title,
  description: panel.description,
  datasource: { type: 'prometheus', uid: 'prometheus' },
  gridPos: { h: 8, w: 12, x: (i % 2) * 12, y: Math.floor(i / 2) * 8 },
  fieldConfig: { defaults: { unit: panel.unit }, overrides: [] },
  options: { legend: { displayMode: 'list', placement: 'bottom' }, tooltip: { mode: 'multi' } },
  targets: panel.queries.map((q, j) => ({ refId: String.fromCharCode(65 + j), expr: q.expr, legendFormat: q.legend })),
})

/** A Grafana dashboard document. */
const grafanaDashboard = (uid, title, panels) => ({
  uid: `msr-${uid}`,
  title,
  tags: ['msr'],
  timezone: 'utc',
  schemaVersion: 39,
  version: 1,
  editable: false,
  refresh: '30s',
  time: { from: 'now-1h', to: 'now' },
  panels: panels.map(grafanaPanel),
})

/** The SLO dashboard's panels: each SLO's error ratio over 1 h against its budget (1 - target). */
const sloPanels = kit =>
  kit.slos.slos.map(slo => ({
    title: slo.title,
    description: `${slo.description} Target ${slo.target * 100} % over ${kit.slos.window}; the line is the share of bad events over the last hour, the budget is 1 - target (docs/slo.md).`,
    unit: 'percentunit',
    queries: [
      { expr: errorRatio(slo, '1h'), legend: 'error ratio (1h)' },
      { expr: `vector(1 - ${slo.target})`, legend: 'budget' },
    ],
  }))

/** Grafana's dashboards by file name: one per dashboard of dashboards.yaml (cloud-only panels left out), and the SLOs. */
export const grafanaDashboards = kit => ({
  ...Object.fromEntries(
    kit.dashboards.map(d => [`${d.name}.json`, grafanaDashboard(d.name, d.title, d.panels.filter(p => !p.cloud_only))]),
  ),
  'slo.json': grafanaDashboard('slo', 'msr SLOs', sloPanels(kit)),
})

/** Every generated file: path (from the repository root) → content. */
export const generatedFiles = (kit = loadKit()) => ({
  [RULES_FILE]: `# Generated by infra/monitoring/generate.mjs from infra/monitoring/*.yaml: edit those, then run it.\n${stringify(prometheusRules(kit), { lineWidth: 0 })}`,
  ...Object.fromEntries(Object.entries(grafanaDashboards(kit)).map(([file, doc]) => [`${DASHBOARD_DIR}/${file}`, `${JSON.stringify(doc, null, 2)}\n`])),
})

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const check = process.argv.includes('--check')
  const stale = []
  for (const [path, content] of Object.entries(generatedFiles())) {
    const file = join(ROOT, path)
    let current
    try {
      current = readFileSync(file, 'utf8')
    } catch {
      current = undefined
    }
    if (current === content) continue
    if (check) stale.push(path)
    else {
      mkdirSync(dirname(file), { recursive: true })
      writeFileSync(file, content)
      console.log(`wrote ${path}`)
    }
  }
  if (stale.length > 0) {
    console.error(`out of date (run node infra/monitoring/generate.mjs): ${stale.join(', ')}`)
    process.exit(1)
  }
}
