// @msr/telemetry: Cloud Logging JSON logs joined to traces, Prometheus metrics, OpenTelemetry tracing, constant-time secret comparison.
export { createLogger, type Logger, type LoggerOptions } from './logger.js'
export { createMetrics, type Metrics, type MetricsOptions } from './metrics.js'
export { safeEqual } from './safe-equal.js'
export { flushTracing, startTracing, tracingActive, tracingProblems, tracingWanted, type StopTracing, type TracingOptions } from './tracing.js'
export { documentedMetrics, type DocumentedMetric } from './metrics-doc.js'
export { contextFromAttributes, parseTraceCarrier, traceCarrierOf, type TraceCarrier } from './trace-context.js'
