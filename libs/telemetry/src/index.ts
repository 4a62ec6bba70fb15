// @msr/telemetry: Cloud Logging JSON logs, Prometheus metrics, constant-time secret comparison.
export { createLogger, traceFields, type Logger, type LoggerOptions } from './logger.js'
export { createMetrics, type Metrics, type MetricsOptions } from './metrics.js'
export { safeEqual } from './safe-equal.js'
