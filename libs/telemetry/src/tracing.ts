// OpenTelemetry tracing, started only when an exporter is configured: without one the API stays a no-op.

/** What `startTracing` needs; `env` holds the standard OTEL_* variables, which the SDK reads itself. */
export type TracingOptions = { serviceName?: string | undefined; env: Readonly<Record<string, string | undefined>> }

/** Flushes the spans still buffered and stops exporting; safe to call more than once. */
export type StopTracing = () => Promise<void>

/** Whether the environment asks for traces: `OTEL_TRACES_EXPORTER` set to anything but `none`. */
export const tracingWanted = (env: TracingOptions['env']): boolean => {
  const exporters = (env['OTEL_TRACES_EXPORTER'] ?? '').split(',').map(s => s.trim()).filter(s => s !== '')
  return exporters.length > 0 && !exporters.includes('none') && env['OTEL_SDK_DISABLED']?.trim().toLowerCase() !== 'true'
}

/**
 * Starts the NodeSDK for traces only (metrics stay with prom-client, logs with pino), or nothing at all
 * when no trace exporter is configured. Exporter, endpoint, protocol and sampler come from the SDK's own
 * reading of OTEL_TRACES_EXPORTER, OTEL_EXPORTER_OTLP_*, OTEL_TRACES_SAMPLER(_ARG). The SDK is imported only
 * then: loading its exporters is most of what tracing would cost a process that does not trace.
 */
export async function startTracing(opts: TracingOptions): Promise<StopTracing> {
  if (!tracingWanted(opts.env)) return async () => undefined
  const { NodeSDK } = await import('@opentelemetry/sdk-node')
  const sdk = new NodeSDK({
    ...(opts.serviceName !== undefined && { serviceName: opts.serviceName }),
    metricReaders: [],
    logRecordProcessors: [],
  })
  sdk.start()
  let stopping: Promise<void> | undefined
  active = () => (stopping ??= sdk.shutdown())
  return active
}

let active: StopTracing | undefined

/**
 * Flushes and stops the tracing this process started (through `@msr/telemetry/register`), if any: the
 * CLIs call it before `process.exit`, which `beforeExit` never sees.
 */
export const flushTracing = (): Promise<void> => active?.() ?? Promise.resolve()
