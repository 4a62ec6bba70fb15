// Prometheus metrics on a registry owned by the caller, so tests and services never share global state.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client'

/** Options for `createMetrics`: the name prefix (`msr_relay_`) and whether to collect process metrics. */
export type MetricsOptions = { prefix: string; defaultMetrics?: boolean }

/** A registry plus helpers that create metrics on it under the prefix. */
export type Metrics = {
  registry: Registry
  /** The Content-Type header for `render()`'s output. */
  contentType: string
  counter<L extends string = string>(name: string, help: string, labelNames?: readonly L[]): Counter<L>
  gauge<L extends string = string>(name: string, help: string, labelNames?: readonly L[]): Gauge<L>
  histogram<L extends string = string>(name: string, help: string, labelNames?: readonly L[], buckets?: number[]): Histogram<L>
  /** The registry in the Prometheus text format. */
  render(): Promise<string>
}

/** A fresh registry with prefixed metric helpers; process metrics (CPU, memory, event loop) unless disabled. */
export function createMetrics(opts: MetricsOptions): Metrics {
  const registry = new Registry()
  // Default metrics keep their standard names (process_cpu_seconds_total, ...) so stock dashboards work.
  if (opts.defaultMetrics ?? true) collectDefaultMetrics({ register: registry })
  const named = (name: string) => ({ name: opts.prefix + name, registers: [registry] })
  return {
    registry,
    contentType: registry.contentType,
    counter: (name, help, labelNames = []) => new Counter({ ...named(name), help, labelNames }),
    gauge: (name, help, labelNames = []) => new Gauge({ ...named(name), help, labelNames }),
    histogram: (name, help, labelNames = [], buckets) =>
      new Histogram({ ...named(name), help, labelNames, ...(buckets === undefined ? {} : { buckets }) }),
    render: () => registry.metrics(),
  }
}
