// OpenTelemetry tracing, started only when an exporter is configured: without one the API stays a no-op.

/** What `startTracing` needs; `env` holds the standard OTEL_* variables, which the SDK reads itself. */
export type TracingOptions = { serviceName?: string | undefined; env: Readonly<Record<string, string | undefined>> }

/** Flushes the spans still buffered and stops exporting; safe to call more than once. */
export type StopTracing = () => Promise<void>

const EXPORTERS = ['otlp', 'console', 'zipkin', 'none']
const PROTOCOLS = ['http/protobuf', 'http/json', 'grpc']

/** Whether the environment asks for traces: `OTEL_TRACES_EXPORTER` naming a known exporter, and not `none`. */
export const tracingWanted = (env: TracingOptions['env']): boolean => {
  const exporters = (env['OTEL_TRACES_EXPORTER'] ?? '').split(',').map(s => s.trim()).filter(s => s !== '')
  const known = exporters.filter(name => EXPORTERS.includes(name))
  return known.length > 0 && !known.includes('none') && env['OTEL_SDK_DISABLED']?.trim().toLowerCase() !== 'true'
}

/**
 * What in the OTEL_* variables the SDK would quietly ignore (it logs nothing by default): an exporter
 * or protocol it does not know. One line each, naming the variable and what it accepts.
 */
export const tracingProblems = (env: TracingOptions['env']): string[] => {
  const problems: string[] = []
  for (const name of (env['OTEL_TRACES_EXPORTER'] ?? '').split(',').map(s => s.trim()).filter(s => s !== ''))
    if (!EXPORTERS.includes(name)) problems.push(`OTEL_TRACES_EXPORTER: "${name}" is not one of ${EXPORTERS.join(', ')}; no spans go there`)
  for (const key of ['OTEL_EXPORTER_OTLP_PROTOCOL', 'OTEL_EXPORTER_OTLP_TRACES_PROTOCOL']) {
    const value = env[key]?.trim()
    if (value && !PROTOCOLS.includes(value)) problems.push(`${key}: "${value}" is not one of ${PROTOCOLS.join(', ')}`)
  }
  return problems
}

/**
 * Starts the NodeSDK for traces only (metrics stay with prom-client, logs with pino), or nothing at all
 * when no trace exporter is configured. Exporter, endpoint, protocol and sampler come from the SDK's own
 * reading of OTEL_TRACES_EXPORTER, OTEL_EXPORTER_OTLP_*, OTEL_TRACES_SAMPLER(_ARG). The SDK is imported only
 * then: loading its exporters is most of what tracing would cost a process that does not trace.
 */
export async function startTracing(opts: TracingOptions & { warn?: (line: string) => void }): Promise<StopTracing> {
  const warn = opts.warn ?? ((line: string) => void process.stderr.write(`msr-telemetry: ${line}\n`))
  for (const problem of tracingProblems(opts.env)) warn(problem)
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
