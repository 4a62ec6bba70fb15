// A small OTLP/HTTP receiver for the tracing tests: accepts `POST /v1/traces` in the JSON encoding
// (OTEL_EXPORTER_OTLP_PROTOCOL=http/json) and keeps every span with its service name.
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'

/** A received span, flattened: ids in hex as OTLP/JSON carries them, attributes as plain values. */
export interface ReceivedSpan {
  service: string
  name: string
  traceId: string
  spanId: string
  parentSpanId: string | undefined
  kind: number
  attributes: Record<string, unknown>
  links: { traceId: string; spanId: string }[]
  status: number
}

type AnyValue = { stringValue?: string; intValue?: string | number; boolValue?: boolean; doubleValue?: number; arrayValue?: { values?: AnyValue[] } }
type KeyValue = { key: string; value: AnyValue }

const valueOf = (v: AnyValue): unknown =>
  v.stringValue ?? (v.intValue !== undefined ? Number(v.intValue) : undefined) ?? v.boolValue ?? v.doubleValue ?? v.arrayValue?.values?.map(valueOf)

const attributesOf = (list: KeyValue[] | undefined): Record<string, unknown> => Object.fromEntries((list ?? []).map(kv => [kv.key, valueOf(kv.value)]))

interface ExportRequest {
  resourceSpans?: {
    resource?: { attributes?: KeyValue[] }
    scopeSpans?: {
      spans?: {
        traceId: string
        spanId: string
        parentSpanId?: string
        name: string
        kind: number
        attributes?: KeyValue[]
        links?: { traceId: string; spanId: string }[]
        status?: { code?: number }
      }[]
    }[]
  }[]
}

export interface OtlpReceiver {
  endpoint: string
  spans: ReceivedSpan[]
  /** Request bodies that were not OTLP/JSON (content type or parse failure), for the failure message. */
  refused: string[]
  close(): Promise<void>
}

export const startOtlpReceiver = async (): Promise<OtlpReceiver> => {
  const spans: ReceivedSpan[] = []
  const refused: string[] = []
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8')
      if (req.method !== 'POST' || req.url !== '/v1/traces' || !String(req.headers['content-type']).startsWith('application/json')) {
        refused.push(`${req.method} ${req.url} ${String(req.headers['content-type'])}`)
        return void res.writeHead(415).end()
      }
      try {
        const request = JSON.parse(body) as ExportRequest
        for (const resource of request.resourceSpans ?? []) {
          const service = String(attributesOf(resource.resource?.attributes)['service.name'])
          for (const scope of resource.scopeSpans ?? [])
            for (const s of scope.spans ?? [])
              spans.push({
                service,
                name: s.name,
                traceId: s.traceId,
                spanId: s.spanId,
                parentSpanId: s.parentSpanId || undefined,
                kind: s.kind,
                attributes: attributesOf(s.attributes),
                links: (s.links ?? []).map(l => ({ traceId: l.traceId, spanId: l.spanId })),
                status: s.status?.code ?? 0,
              })
        }
      } catch (error) {
        refused.push(`unparsable body: ${String(error)}`)
        return void res.writeHead(400).end()
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}')
    })
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  return {
    endpoint: `http://127.0.0.1:${port}`,
    spans,
    refused,
    close: () =>
      new Promise(resolve => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
}

/** Whether `ancestor` is on the parent chain of `span` within one trace's spans. */
export const descendsFrom = (spans: readonly ReceivedSpan[], span: ReceivedSpan, ancestor: ReceivedSpan): boolean => {
  const byId = new Map(spans.filter(s => s.traceId === span.traceId).map(s => [s.spanId, s]))
  for (let at: ReceivedSpan | undefined = span; at; at = at.parentSpanId ? byId.get(at.parentSpanId) : undefined)
    if (at.parentSpanId === ancestor.spanId) return true
  return false
}

/** The chain of span names from `span` up to its trace's root (as far as the spans received reach). */
export const ancestry = (spans: readonly ReceivedSpan[], span: ReceivedSpan): string[] => {
  const byId = new Map(spans.filter(s => s.traceId === span.traceId).map(s => [s.spanId, s]))
  const names: string[] = []
  for (let at: ReceivedSpan | undefined = span; at; at = at.parentSpanId ? byId.get(at.parentSpanId) : undefined) names.push(`${at.service}:${at.name}`)
  return names
}
