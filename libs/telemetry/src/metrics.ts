// Prometheus metrics on a registry owned by the caller, so tests and services never share global state.
import { constants, PerformanceObserver } from 'node:perf_hooks'
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
  if (opts.defaultMetrics ?? true) {
    collectDefaultMetrics({ register: registry })
    countEveryCollection(registry)
  }
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

const GC_DURATION = 'nodejs_gc_duration_seconds'
const GC_KINDS: Record<number, string> = {
  [constants.NODE_PERFORMANCE_GC_MAJOR]: 'major',
  [constants.NODE_PERFORMANCE_GC_MINOR]: 'minor',
  [constants.NODE_PERFORMANCE_GC_INCREMENTAL]: 'incremental',
  [constants.NODE_PERFORMANCE_GC_WEAKCB]: 'weakcb',
}

/** The GC histograms of the registries made here (weakly: a registry dropped takes its histogram along). */
const gcHistograms = new Set<WeakRef<Histogram<'kind'>>>()
let gcObserver: PerformanceObserver | undefined

/**
 * Replaces prom-client's nodejs_gc_duration_seconds (same name, help, label and buckets) with one that
 * observes every collection. prom-client 15.1.3 observes only the first entry of each PerformanceObserver
 * callback, and a callback carries every collection since the last: 21 of 595 young collections in a test,
 * none at all on a relay answering REQs. One observer per process feeds every registry's histogram.
 */
const countEveryCollection = (registry: Registry): void => {
  registry.removeSingleMetric(GC_DURATION)
  const histogram = new Histogram({
    name: GC_DURATION,
    help: 'Garbage collection duration by kind, one of major, minor, incremental or weakcb.',
    labelNames: ['kind'],
    buckets: [0.001, 0.01, 0.1, 1, 2, 5],
    registers: [registry],
  })
  gcHistograms.add(new WeakRef(histogram))
  gcObserver ??= observeCollections()
}

const observeCollections = (): PerformanceObserver => {
  const observer = new PerformanceObserver(list => {
    const entries = list.getEntries()
    for (const ref of gcHistograms) {
      const histogram = ref.deref()
      if (!histogram) {
        gcHistograms.delete(ref)
        continue
      }
      for (const entry of entries) histogram.observe({ kind: GC_KINDS[(entry as unknown as { detail: { kind: number } }).detail.kind] ?? 'other' }, entry.duration / 1000)
    }
  })
  observer.observe({ entryTypes: ['gc'] })
  return observer
}
