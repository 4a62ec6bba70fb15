// The metrics tables README keeps per service, read back so that a test can hold them against /metrics.

/** One documented metric: its Prometheus type and its label names, sorted. */
export interface DocumentedMetric {
  type: string
  labels: string[]
}

/**
 * The table between `<!-- <section>:start -->` and `<!-- <section>:end -->` in `markdown`: rows of
 * `| \`name\` | type | \`label\` (values…), … | meaning |`, as name → type and label names.
 */
export const documentedMetrics = (markdown: string, section: string): Map<string, DocumentedMetric> => {
  const table = markdown.split(`<!-- ${section}:start -->`)[1]?.split(`<!-- ${section}:end -->`)[0] ?? ''
  const rows = table.split('\n').map(line => line.trim().split('|').map(cell => cell.trim()))
  const metrics = new Map<string, DocumentedMetric>()
  for (const [, name = '', type = '', labels = ''] of rows.filter(cells => cells[1]?.startsWith('`'))) {
    const named = [...labels.replace(/\([^)]*\)/g, '').matchAll(/`(\w+)`/g)].map(([, label]) => label as string)
    metrics.set(name.replaceAll('`', ''), { type, labels: named.sort() })
  }
  return metrics
}
