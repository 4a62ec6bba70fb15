/** The HTTP details of the fake Cloud Storage server: its error type and the header and body formats it parses. */

/** An answer in Cloud Storage's JSON error format. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly reason = 'invalid',
  ) {
    super(message)
  }
}

/** Non-final chunks of a resumable upload must be multiples of 256 KiB. */
export const RESUMABLE_GRANULE = 256 * 1024

// A resumable PUT's Content-Range: "bytes */TOTAL" asks for status (or completes at TOTAL); "bytes A-B/TOTAL"
// is a chunk of known length; "bytes A-*/TOTAL" streams the rest of the object; no header sends it whole.
// TOTAL is "*" until the client knows it.
export type ContentRange = { kind: 'status'; total?: number } | { kind: 'chunk' | 'stream'; start: number; total?: number }

export const parseContentRange = (header: string | undefined, bodyLength: number): ContentRange => {
  if (header === undefined) return { kind: 'stream', start: 0 }
  const m = /^bytes (?:\*|(\d+)-(\d+|\*))\/(\*|\d+)$/.exec(header.trim())
  if (!m) throw new HttpError(400, `malformed Content-Range: ${header}`)
  const [, start, end, rawTotal] = m
  const total = rawTotal === '*' ? undefined : Number(rawTotal)
  if (start === undefined) return { kind: 'status', total }
  if (end === '*') return { kind: 'stream', start: Number(start), total }
  if (Number(end) - Number(start) + 1 !== bodyLength) throw new HttpError(400, `Content-Range ${header} announces ${Number(end) - Number(start) + 1} bytes, the body has ${bodyLength}`)
  return { kind: 'chunk', start: Number(start), total }
}

/** A download's `Range: bytes=a-b | a- | -n`, resolved against the object size. */
export const parseRange = (header: string | undefined, size: number): { start: number; end: number } | 'unsatisfiable' | undefined => {
  if (header === undefined) return undefined
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim())
  if (!m || (m[1] === '' && m[2] === '')) throw new HttpError(400, `the fake Cloud Storage supports one byte range, not: ${header}`)
  const [, a, b] = m
  if (a === '') {
    const n = Number(b)
    return n === 0 || size === 0 ? 'unsatisfiable' : { start: Math.max(0, size - n), end: size - 1 }
  }
  const start = Number(a)
  const end = b === '' ? size - 1 : Math.min(Number(b), size - 1)
  return start >= size || end < start ? 'unsatisfiable' : { start, end }
}

/** A `multipart/related` upload: JSON metadata, then the media (the format teeny-request sends). */
export const parseMultipart = (contentType: string | undefined, body: Buffer): { metadata: Record<string, unknown>; media: Buffer; mediaType?: string } => {
  const boundary = /boundary="?([^";]+)"?/.exec(contentType ?? '')?.[1]
  if (!contentType?.startsWith('multipart/related') || !boundary) throw new HttpError(400, `a multipart upload needs Content-Type multipart/related with a boundary, got ${contentType}`)
  const parts: { headers: string; content: Buffer }[] = []
  const delimiter = `--${boundary}`
  let pos = body.indexOf(delimiter)
  while (pos !== -1) {
    pos += delimiter.length
    if (body.subarray(pos, pos + 2).toString('latin1') === '--') break // the closing delimiter
    const headerEnd = body.indexOf('\r\n\r\n', pos)
    const next = headerEnd === -1 ? -1 : body.indexOf(`\r\n${delimiter}`, headerEnd + 4)
    if (next === -1) throw new HttpError(400, 'truncated multipart body')
    parts.push({ headers: body.subarray(pos, headerEnd).toString('latin1'), content: body.subarray(headerEnd + 4, next) })
    pos = next + 2
  }
  const [meta, media] = parts
  if (parts.length !== 2 || !meta || !media || !/content-type:\s*application\/json/i.test(meta.headers))
    throw new HttpError(400, `a multipart upload has two parts, JSON metadata then media; got ${parts.length}`)
  let metadata: Record<string, unknown>
  try {
    metadata = JSON.parse(meta.content.toString('utf8')) as Record<string, unknown>
  } catch {
    throw new HttpError(400, 'the multipart metadata part is not JSON', 'parseError')
  }
  return { metadata, media: media.content, mediaType: /content-type:\s*([^\r\n]+)/i.exec(media.headers)?.[1]?.trim() }
}
