// OpenTelemetry tracing, started only when an exporter is configured: without one the API stays a no-op.
import { register } from 'node:module'
import type { IncomingMessage } from 'node:http'

/** What `startTracing` needs; `env` holds the standard OTEL_* variables, which the SDK reads itself. */
export type TracingOptions = { serviceName?: string | undefined; env: Readonly<Record<string, string | undefined>> }

/** Flushes the spans still buffered and stops exporting; safe to call more than once. */
export type StopTracing = () => Promise<void>

/** `gcp` is ours: Google Cloud Trace through its exporter and Application Default Credentials. The rest are the SDK's. */
const EXPORTERS = ['otlp', 'console', 'zipkin', 'gcp', 'none']
const PROTOCOLS = ['http/protobuf', 'http/json', 'grpc']
/** The packages the automatic instrumentations patch; the ESM loader hook intercepts these only. */
const INSTRUMENTED_PACKAGES = ['express', 'pg', 'pg-pool']
/** Incoming requests that make no span: probes and scrapes, which would drown the traces that matter. */
const UNTRACED_PATHS = new Set(['/healthz', '/readyz', '/metrics'])

const exportersIn = (env: TracingOptions['env']): string[] =>
  (env['OTEL_TRACES_EXPORTER'] ?? '').split(',').map(s => s.trim()).filter(s => s !== '')

/** Whether the environment asks for traces: `OTEL_TRACES_EXPORTER` naming a known exporter, and not `none`. */
export const tracingWanted = (env: TracingOptions['env']): boolean => {
  const known = exportersIn(env).filter(name => EXPORTERS.includes(name))
  return known.length > 0 && !known.includes('none') && env['OTEL_SDK_DISABLED']?.trim().toLowerCase() !== 'true'
}

/**
 * What in the OTEL_* variables the SDK would quietly ignore (it logs nothing by default): an exporter
 * or protocol it does not know, or `gcp` beside another exporter. One line each, naming the variable.
 */
export const tracingProblems = (env: TracingOptions['env']): string[] => {
  const problems: string[] = []
  const exporters = exportersIn(env)
  for (const name of exporters)
    if (!EXPORTERS.includes(name)) problems.push(`OTEL_TRACES_EXPORTER: "${name}" is not one of ${EXPORTERS.join(', ')}; no spans go there`)
  const mode = env['MSR_TRACE_CONTEXT']?.trim()
  if (mode && mode !== 'sync' && mode !== 'async') problems.push(`MSR_TRACE_CONTEXT: "${mode}" is not one of sync, async; async is used`)
  if (exporters.includes('gcp') && exporters.length > 1) problems.push('OTEL_TRACES_EXPORTER: "gcp" stands alone; the other exporters named beside it get no spans')
  for (const key of ['OTEL_EXPORTER_OTLP_PROTOCOL', 'OTEL_EXPORTER_OTLP_TRACES_PROTOCOL']) {
    const value = env[key]?.trim()
    if (value && !PROTOCOLS.includes(value)) problems.push(`${key}: "${value}" is not one of ${PROTOCOLS.join(', ')}`)
  }
  return problems
}

/**
 * Starts the NodeSDK for traces only (metrics stay with prom-client, logs with pino), or nothing at all
 * when no trace exporter is configured. Exporter, endpoint, protocol and sampler come from the SDK's own
 * reading of OTEL_TRACES_EXPORTER, OTEL_EXPORTER_OTLP_*, OTEL_TRACES_SAMPLER(_ARG); `gcp` exports to Cloud
 * Trace. With tracing on:
 * - incoming HTTP requests (http, express) and PostgreSQL queries (pg) get spans of their own;
 * - a request's `traceparent`, or Cloud Run's `X-Cloud-Trace-Context`, is its parent (W3C wins when both
 *   are there), and W3C is sent on outgoing requests;
 * - `MSR_TRACE_CONTEXT=sync` (the relay's launchers set it) keeps the active context within synchronous
 *   calls only (sync-context.ts), instead of following every promise.
 * The SDK is imported only then: loading it is most of what tracing would cost a process that does not trace.
 * Call it before the instrumented packages are imported (the `--import` register module does).
 */
export async function startTracing(opts: TracingOptions & { warn?: (line: string) => void }): Promise<StopTracing> {
  const warn = opts.warn ?? ((line: string) => void process.stderr.write(`msr-telemetry: ${line}\n`))
  for (const problem of tracingProblems(opts.env)) warn(problem)
  if (!tracingWanted(opts.env)) return async () => undefined
  // ESM imports of express and pg reach the instrumentations only through this loader hook.
  register('import-in-the-middle/hook.mjs', import.meta.url, { data: { include: INSTRUMENTED_PACKAGES } })
  const [{ NodeSDK, tracing }, { CompositePropagator, W3CBaggagePropagator, W3CTraceContextPropagator }, { CloudTraceContextPropagator }, http, express, pg] = await Promise.all([
    import('@opentelemetry/sdk-node'),
    import('@opentelemetry/core'),
    import('./cloud-trace-context.js'),
    import('@opentelemetry/instrumentation-http'),
    import('@opentelemetry/instrumentation-express'),
    import('@opentelemetry/instrumentation-pg'),
  ])
  const syncContext = opts.env['MSR_TRACE_CONTEXT']?.trim() === 'sync'
  const contextManager = syncContext ? new (await import('./sync-context.js')).SyncContextManager() : undefined
  const spanProcessors = exportersIn(opts.env).includes('gcp') ? [new tracing.BatchSpanProcessor(await cloudTraceExporter(opts.env))] : undefined
  const sdk = new NodeSDK({
    ...(opts.serviceName !== undefined && { serviceName: opts.serviceName }),
    ...(spanProcessors && { spanProcessors }),
    ...(contextManager && { contextManager }),
    metricReaders: [],
    logRecordProcessors: [],
    // Later propagators win on extract: the W3C header over Cloud Run's own.
    textMapPropagator: new CompositePropagator({ propagators: [new CloudTraceContextPropagator(), new W3CTraceContextPropagator(), new W3CBaggagePropagator()] }),
    instrumentations: [
      new http.HttpInstrumentation({ ignoreIncomingRequestHook: untraced }),
      new express.ExpressInstrumentation(),
      new pg.PgInstrumentation({ requireParentSpan: true }),
    ],
  })
  sdk.start()
  let stopping: Promise<void> | undefined
  // An exporter that cannot deliver (no credentials, endpoint down) fails the flush: said once, never thrown at exit.
  active = () => (stopping ??= sdk.shutdown().catch((error: unknown) => warn(`the last spans were not exported: ${error instanceof Error ? error.message : String(error)}`)))
  return active
}

/** Probes and scrapes: `/healthz`, `/readyz`, `/metrics` (query string ignored). */
const untraced = (request: IncomingMessage): boolean => UNTRACED_PATHS.has((request.url ?? '').split('?')[0] ?? '')

/** Google Cloud Trace, with the credentials and project of Application Default Credentials (GOOGLE_CLOUD_PROJECT if set). */
const cloudTraceExporter = async (env: TracingOptions['env']) => {
  const { TraceExporter } = await import('@google-cloud/opentelemetry-cloud-trace-exporter')
  const projectId = env['GOOGLE_CLOUD_PROJECT']?.trim()
  return new TraceExporter(projectId ? { projectId } : {})
}

let active: StopTracing | undefined

/**
 * Flushes and stops the tracing this process started (through `@msr/telemetry/register`), if any: the
 * CLIs call it before `process.exit`, which `beforeExit` never sees.
 */
export const flushTracing = (): Promise<void> => active?.() ?? Promise.resolve()

/** Whether this process started the SDK (client libraries with OpenTelemetry support of their own turn it on then). */
export const tracingActive = (): boolean => active !== undefined
