// A stand-in OTLP/HTTP trace collector for the tracing bench: accepts POST /v1/traces on a free loopback port,
// answers 200 at once, and counts requests, bytes and spans. Nothing is kept.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'

/** What the sink received since it started (or since the last `reset`). */
export interface SinkCounts {
  requests: number
  /** Request bodies, as sent (the exporter does not compress unless OTEL_EXPORTER_OTLP_COMPRESSION says so). */
  bytes: number
  /** Spans in the bodies (protobuf and JSON both decoded far enough to count them); undefined if a body could not be read. */
  spans: number | undefined
  /** Requests that were not POST /v1/traces (answered 404). */
  rejected: number
}

/** A running sink. */
export interface OtlpSink {
  /** `http://127.0.0.1:PORT`: the value of OTEL_EXPORTER_OTLP_ENDPOINT (the exporter appends /v1/traces). */
  endpoint: string
  counts(): SinkCounts
  /** Starts counting from zero (between runs). */
  reset(): void
  stop(): Promise<void>
}

/** Reads a protobuf varint at `at`; returns [value, next offset]. Values above 2^53 lose precision (not used here). */
const varint = (buf: Buffer, at: number): [number, number] => {
  let value = 0
  let scale = 1
  for (let i = at; i < buf.length; i++) {
    const byte = buf[i] as number
    value += (byte & 0x7f) * scale
    if (byte < 0x80) return [value, i + 1]
    scale *= 128
  }
  throw new Error('truncated varint')
}

/** Calls `onField(field, from, to)` for each length-delimited field of the message in buf[from, to); skips the others. */
const eachBytesField = (buf: Buffer, from: number, to: number, onField: (field: number, start: number, end: number) => void): void => {
  let at = from
  while (at < to) {
    const [key, next] = varint(buf, at)
    at = next
    const field = Math.floor(key / 8)
    switch (key & 7) {
      case 0:
        at = varint(buf, at)[1]
        break
      case 1:
        at += 8
        break
      case 2: {
        const [length, start] = varint(buf, at)
        at = start + length
        if (at > to) throw new Error('truncated field')
        onField(field, start, at)
        break
      }
      case 5:
        at += 4
        break
      default:
        throw new Error(`wire type ${key & 7}`)
    }
  }
}

/**
 * Spans in an ExportTraceServiceRequest (protobuf): resource_spans = 1 → scope_spans = 2 → spans = 2.
 * Only the nesting is walked; nothing inside a span is decoded.
 */
export const countProtobufSpans = (body: Buffer): number => {
  let spans = 0
  eachBytesField(body, 0, body.length, (f, s, e) => {
    if (f !== 1) return
    eachBytesField(body, s, e, (f2, s2, e2) => {
      if (f2 !== 2) return
      eachBytesField(body, s2, e2, f3 => {
        if (f3 === 2) spans++
      })
    })
  })
  return spans
}

interface JsonRequest {
  resourceSpans?: Array<{ scopeSpans?: Array<{ spans?: unknown[] }> }>
}

/** Spans in an ExportTraceServiceRequest (JSON). */
export const countJsonSpans = (body: Buffer): number =>
  ((JSON.parse(body.toString('utf8')) as JsonRequest).resourceSpans ?? [])
    .flatMap(r => r.scopeSpans ?? [])
    .reduce((sum, s) => sum + (s.spans?.length ?? 0), 0)

const isJson = (req: IncomingMessage): boolean => (req.headers['content-type'] ?? '').includes('json')

/** Starts the sink on a free loopback port. */
export const startOtlpSink = async (): Promise<OtlpSink> => {
  let counts: SinkCounts = { requests: 0, bytes: 0, spans: 0, rejected: 0 }
  const onRequest = (req: IncomingMessage, res: ServerResponse): void => {
    if (req.method !== 'POST' || (req.url ?? '').split('?')[0] !== '/v1/traces') {
      counts.rejected++
      req.resume()
      return void res.writeHead(404).end()
    }
    const chunks: Buffer[] = []
    req.on('data', (chunk: Buffer) => chunks.push(chunk))
    req.on('end', () => {
      const body = Buffer.concat(chunks)
      counts.requests++
      counts.bytes += body.length
      const gzip = req.headers['content-encoding'] === 'gzip'
      try {
        if (counts.spans !== undefined) counts.spans = gzip ? undefined : counts.spans + (isJson(req) ? countJsonSpans(body) : countProtobufSpans(body))
      } catch {
        counts.spans = undefined
      }
      // An empty ExportTraceServiceResponse: no bytes in protobuf, `{}` in JSON (an empty body would not parse).
      const json = isJson(req)
      const answer = json ? '{}' : ''
      res.writeHead(200, { 'content-type': json ? 'application/json' : 'application/x-protobuf', 'content-length': Buffer.byteLength(answer) }).end(answer)
    })
  }
  const server = createServer(onRequest)
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => resolve())
  })
  const { port } = server.address() as AddressInfo
  return {
    endpoint: `http://127.0.0.1:${port}`,
    counts: () => ({ ...counts }),
    reset: () => void (counts = { requests: 0, bytes: 0, spans: 0, rejected: 0 }),
    stop: () =>
      new Promise<void>(resolve => {
        server.close(() => resolve())
        server.closeAllConnections()
      }),
  }
}
