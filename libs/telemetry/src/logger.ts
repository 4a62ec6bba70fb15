// JSON log lines in the shape Google Cloud Logging parses: severity, message, timestamp, trace fields.
import { isSpanContextValid, trace, TraceFlags } from '@opentelemetry/api'
import { pino, type DestinationStream, type Logger as PinoLogger } from 'pino'

/** The logger the services pass around: a pino logger writing Cloud Logging JSON. */
export type Logger = PinoLogger

/**
 * Options for `createLogger`; `level` and `projectId` come from the service's config, never from the
 * environment here. Without `projectId`, trace fields carry the bare trace id.
 */
export type LoggerOptions = { service: string; level?: string; projectId?: string | undefined; destination?: DestinationStream }

// Cloud Logging knows these names; anything else would show as DEFAULT and defeat severity filters.
const SEVERITY: Record<string, string> = {
  trace: 'DEBUG', debug: 'DEBUG', info: 'INFO', warn: 'WARNING', error: 'ERROR', fatal: 'CRITICAL',
}
const ERROR_LEVEL = 50

/** A pino logger writing one Cloud Logging JSON object per line, tagged with the service name. */
export function createLogger(opts: LoggerOptions): Logger {
  return pino({
    level: opts.level ?? 'info',
    messageKey: 'message',
    errorKey: 'err',
    // `base` replaces pid and hostname, which Cloud Run already records as resource labels.
    base: { serviceContext: { service: opts.service } },
    timestamp: () => `,"timestamp":"${new Date().toISOString()}"`,
    formatters: { level: label => ({ severity: SEVERITY[label] ?? 'DEFAULT' }) },
    serializers: { err: pino.stdSerializers.err },
    mixin: (obj, level) => ({ ...activeSpanFields(opts.projectId), ...errorReportingFields(obj, level) }),
  }, opts.destination)
}

// With no SDK registered there is never an active span, and this is one lookup in the root context.
function activeSpanFields(projectId: string | undefined): object {
  const span = trace.getActiveSpan()
  if (span === undefined) return {}
  const spanContext = span.spanContext()
  if (!isSpanContextValid(spanContext)) return {}
  const { traceId, spanId, traceFlags } = spanContext
  return {
    'logging.googleapis.com/trace': projectId ? `projects/${projectId}/traces/${traceId}` : traceId,
    'logging.googleapis.com/spanId': spanId,
    'logging.googleapis.com/trace_sampled': (traceFlags & TraceFlags.SAMPLED) === TraceFlags.SAMPLED,
  }
}

// Error Reporting only groups an entry that carries its stack trace in a field it knows; `err.stack` is not one.
function errorReportingFields(obj: object, level: number): object {
  if (level < ERROR_LEVEL || !('err' in obj) || !(obj.err instanceof Error)) return {}
  return obj.err.stack === undefined ? {} : { stack_trace: obj.err.stack }
}
