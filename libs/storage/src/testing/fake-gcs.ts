/**
 * An in-test Cloud Storage server on a loopback port speaking the JSON API calls that `@google-cloud/storage`
 * 7.22 makes for the operations of this lib, so tests drive the real client. It is strict on purpose: an
 * unknown route answers 501 and an unknown query parameter 400, naming what was sent, so a change in what
 * the client sends fails loudly instead of passing against a lenient fake.
 */
import { createHash, randomBytes } from 'node:crypto'
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { Storage, StorageOptions as ClientOptions } from '@google-cloud/storage'
import { crc32cBase64 } from '../crc32c.js'
import { storageLibrary } from '../storage-library.js'
import { HttpError, parseContentRange, parseMultipart, parseRange, RESUMABLE_GRANULE } from './fake-gcs-http.js'

/** An object as tests see it. */
export interface FakeObjectInfo {
  name: string
  generation: string
  size: number
}

export interface FakeRequest {
  method: string
  /** Decoded path, e.g. `/storage/v1/b/bkt/o/snapshots/a.jsonl.gz`. */
  path: string
  query: Record<string, string>
  headers: IncomingHttpHeaders
}

export interface FakeGcs {
  /** `http://127.0.0.1:PORT`, for `new Storage({ apiEndpoint })`. */
  endpoint: string
  /** A real client for this server: no credentials, no metadata lookups, fast retry backoff; `options` override. */
  storage(options?: ClientOptions): Storage
  createBucket(name: string): void
  /** Live objects of a bucket, sorted by name. */
  objects(bucket: string): FakeObjectInfo[]
  /** Every request received, in order (including those answered by failNext). */
  requests: FakeRequest[]
  /** The next `n` requests answer `status` (default 503) without any effect. */
  failNext(n: number, status?: number): void
  /** The next `n` media downloads flip one byte of the body but send the true hashes, as a bad network would. */
  corruptDownloads(n?: number): void
  /** The next `n` completed uploads store one byte flipped (a corrupted transfer): a declared hash then fails (400), else the stored hash differs. */
  corruptUploads(n?: number): void
  /** The bytes of a live object. */
  read(bucket: string, name: string): Buffer | undefined
  /** Stores an object directly (no request), as if uploaded earlier. */
  putObject(bucket: string, name: string, data: Buffer | string, contentType?: string): void
  /** Resumable sessions begun and not completed or cancelled. */
  openSessions(): number
  stop(): Promise<void>
}

interface StoredObject {
  bucket: string
  name: string
  data: Buffer
  generation: string
  contentType: string
  contentEncoding?: string
  crc32c: string
  md5Hash: string
  created: Date
}

interface Session {
  id: string
  bucket: string
  name: string
  metadata: Record<string, unknown>
  contentType: string
  declaredSize?: number
  preconditions: Record<string, string>
  chunks: Buffer[]
  received: number
  finished?: StoredObject
  failed?: HttpError
  cancelled?: boolean
}

type Query = Record<string, string>
type Handler = (req: IncomingMessage, res: ServerResponse, query: Query, params: string[]) => Promise<void>

/** Parameters any call may carry; each route adds its own. Anything else is refused. */
const COMMON = ['alt', 'userProject', 'prettyPrint', 'fields', 'projection']

const md5 = (data: Buffer): string => createHash('md5').update(data).digest('base64')

const readBody = (req: IncomingMessage): Promise<Buffer> =>
  new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => resolve(Buffer.concat(chunks)))
    req.on('error', reject)
    req.on('aborted', () => reject(new Error('request aborted')))
  })

const sendJson = (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void => {
  const text = JSON.stringify(body)
  res.writeHead(status, { 'content-type': 'application/json; charset=UTF-8', 'content-length': Buffer.byteLength(text), ...headers })
  res.end(text)
}

const sendError = (res: ServerResponse, err: HttpError): void =>
  sendJson(res, err.status, { error: { code: err.status, message: err.message, errors: [{ message: err.message, domain: 'global', reason: err.reason }] } })

/** Microsecond timestamps, strictly increasing, like real generations. */
const generations = () => {
  let last = 0n
  return (): string => {
    const now = BigInt(Date.now()) * 1000n
    last = now > last ? now : last + 1n
    return String(last)
  }
}

/** Checks `X-Goog-Hash: crc32c=…,md5=…` and metadata hashes the client declared against the received bytes. */
const checkDeclaredHashes = (data: Buffer, declared: { crc32c?: unknown; md5Hash?: unknown }): void => {
  const crc = crc32cBase64(data)
  const digest = md5(data)
  if (declared.crc32c !== undefined && declared.crc32c !== crc)
    throw new HttpError(400, `Provided CRC32C "${String(declared.crc32c)}" doesn't match calculated CRC32C "${crc}".`)
  if (declared.md5Hash !== undefined && declared.md5Hash !== digest)
    throw new HttpError(400, `Provided MD5 hash "${String(declared.md5Hash)}" doesn't match calculated MD5 hash "${digest}".`)
}

const hashHeader = (req: IncomingMessage): { crc32c?: string; md5Hash?: string } => {
  const header = req.headers['x-goog-hash']
  const out: { crc32c?: string; md5Hash?: string } = {}
  for (const pair of (Array.isArray(header) ? header.join(',') : (header ?? '')).split(',').filter(Boolean)) {
    const eq = pair.indexOf('=')
    const [type, value] = [pair.slice(0, eq).trim(), pair.slice(eq + 1).trim()]
    if (type === 'crc32c') out.crc32c = value
    else if (type === 'md5') out.md5Hash = value
    else throw new HttpError(400, `unknown hash type in X-Goog-Hash: ${type}`)
  }
  return out
}

const flipOneByte = (data: Buffer): Buffer => {
  const copy = Buffer.from(data)
  const at = copy.length >> 1
  if (copy.length > 0) copy[at] = copy[at]! ^ 0x01
  return copy
}

/** Starts the server on 127.0.0.1 with an ephemeral port. */
export const startFakeGcs = async (): Promise<FakeGcs> => {
  const buckets = new Map<string, Map<string, StoredObject>>()
  const sessions = new Map<string, Session>()
  const requests: FakeRequest[] = []
  const nextGeneration = generations()
  let failing: { n: number; status: number } = { n: 0, status: 503 }
  let corruptDownloads = 0
  let corruptUploads = 0
  let endpoint = ''

  const bucketOf = (name: string): Map<string, StoredObject> => {
    const bucket = buckets.get(name)
    if (!bucket) throw new HttpError(404, `The specified bucket does not exist: ${name}`, 'notFound')
    return bucket
  }
  /** The live object; a `generation` other than the live one is missing (no versions are kept). */
  const objectOf = (bucket: string, name: string, query: Query): StoredObject => {
    const object = bucketOf(bucket).get(name)
    if (!object || (query.generation !== undefined && query.generation !== object.generation))
      throw new HttpError(404, `No such object: ${bucket}/${name}`, 'notFound')
    return object
  }

  /** ifGenerationMatch (0 = must not exist) and ifMetagenerationMatch (always 1 here); others are refused by the allow-lists. */
  const checkPreconditions = (current: StoredObject | undefined, query: Query): void => {
    const want = query.ifGenerationMatch
    if (want !== undefined && (want === '0' ? current !== undefined : current?.generation !== want))
      throw new HttpError(412, `At least one of the pre-conditions you specified did not hold. (ifGenerationMatch=${want})`, 'conditionNotMet')
    const meta = query.ifMetagenerationMatch
    if (meta !== undefined && (current === undefined || meta !== '1'))
      throw new HttpError(412, `At least one of the pre-conditions you specified did not hold. (ifMetagenerationMatch=${meta})`, 'conditionNotMet')
  }

  const resource = (o: StoredObject): Record<string, unknown> => {
    const path = `b/${encodeURIComponent(o.bucket)}/o/${encodeURIComponent(o.name)}`
    const time = o.created.toISOString()
    return {
      kind: 'storage#object',
      id: `${o.bucket}/${o.name}/${o.generation}`,
      selfLink: `${endpoint}/storage/v1/${path}`,
      mediaLink: `${endpoint}/download/storage/v1/${path}?generation=${o.generation}&alt=media`,
      name: o.name,
      bucket: o.bucket,
      generation: o.generation,
      metageneration: '1',
      contentType: o.contentType,
      ...(o.contentEncoding && { contentEncoding: o.contentEncoding }),
      storageClass: 'STANDARD',
      size: String(o.data.length),
      md5Hash: o.md5Hash,
      crc32c: o.crc32c,
      etag: `C${o.generation.slice(-8)}=`,
      timeCreated: time,
      updated: time,
      timeStorageClassUpdated: time,
    }
  }

  type Meta = { contentType: string; contentEncoding?: string }
  const insert = (bucket: string, name: string, data: Buffer, meta: Meta): StoredObject => {
    const object: StoredObject = { bucket, name, data, generation: nextGeneration(), crc32c: crc32cBase64(data), md5Hash: md5(data), created: new Date(), ...meta }
    bucketOf(bucket).set(name, object)
    return object
  }

  /** Completes an upload: the corruption switch, then declared hashes, then preconditions, then a new generation. */
  const store = (bucket: string, name: string, data: Buffer, meta: Meta, query: Query, declared: { crc32c?: unknown; md5Hash?: unknown }): StoredObject => {
    if (corruptUploads > 0) {
      corruptUploads--
      data = flipOneByte(data)
    }
    checkDeclaredHashes(data, declared)
    checkPreconditions(bucketOf(bucket).get(name), query)
    return insert(bucket, name, data, meta)
  }

  const allow = (query: Query, names: string[]): void => {
    for (const key of Object.keys(query))
      if (!COMMON.includes(key) && !names.includes(key)) throw new HttpError(400, `the fake Cloud Storage does not support the query parameter ${key}=${query[key]}`)
    if (query.alt !== undefined && query.alt !== 'json' && query.alt !== 'media') throw new HttpError(400, `unsupported alt=${query.alt}`)
  }

  const getBucket: Handler = async (_req, res, query, [bucket]) => {
    allow(query, [])
    bucketOf(bucket!)
    sendJson(res, 200, { kind: 'storage#bucket', id: bucket, name: bucket, location: 'US', storageClass: 'STANDARD', metageneration: '1' })
  }

  const list: Handler = async (_req, res, query, [bucket]) => {
    allow(query, ['prefix', 'delimiter', 'pageToken', 'maxResults', 'startOffset', 'endOffset', 'versions'])
    if (query.versions === 'true') throw new HttpError(400, 'the fake Cloud Storage keeps no object versions (versions=true)')
    const prefix = query.prefix ?? ''
    const after = query.pageToken === undefined ? undefined : Buffer.from(query.pageToken, 'base64url').toString('utf8')
    const max = Math.min(Number(query.maxResults ?? 1000) || 1000, 1000)
    const names = [...bucketOf(bucket!).keys()]
      .filter(n => n.startsWith(prefix) && (after === undefined || n > after))
      .filter(n => (query.startOffset === undefined || n >= query.startOffset) && (query.endOffset === undefined || n < query.endOffset))
      .sort()
    const items: StoredObject[] = []
    const prefixes = new Set<string>()
    let last: string | undefined
    for (const name of names) {
      if (items.length + prefixes.size >= max) break
      const cut = query.delimiter ? name.indexOf(query.delimiter, prefix.length) : -1
      if (cut === -1) items.push(bucketOf(bucket!).get(name)!)
      else prefixes.add(name.slice(0, cut + query.delimiter!.length))
      last = name
    }
    const more = last !== undefined && names[names.length - 1] !== last
    sendJson(res, 200, {
      kind: 'storage#objects',
      ...(items.length > 0 && { items: items.map(resource) }),
      ...(prefixes.size > 0 && { prefixes: [...prefixes] }),
      ...(more && { nextPageToken: Buffer.from(last!, 'utf8').toString('base64url') }),
    })
  }

  const PRECONDITIONS = ['generation', 'ifGenerationMatch', 'ifMetagenerationMatch']

  const getObject: Handler = async (req, res, query, [bucket, name]) => {
    allow(query, PRECONDITIONS)
    const object = objectOf(bucket!, name!, query)
    checkPreconditions(object, query)
    if (query.alt === 'media') return download(req, res, object)
    sendJson(res, 200, resource(object))
  }

  const download = async (req: IncomingMessage, res: ServerResponse, object: StoredObject): Promise<void> => {
    const size = object.data.length
    const range = parseRange(req.headers.range, size)
    if (range === 'unsatisfiable') throw new HttpError(416, `The requested range cannot be satisfied: ${req.headers.range}`, 'requestedRangeNotSatisfiable')
    let body = range ? object.data.subarray(range.start, range.end + 1) : object.data
    if (corruptDownloads > 0) {
      corruptDownloads--
      body = flipOneByte(body)
    }
    res.writeHead(range ? 206 : 200, {
      'content-type': object.contentType,
      'content-length': body.length,
      ...(object.contentEncoding && { 'content-encoding': object.contentEncoding }),
      ...(range && { 'content-range': `bytes ${range.start}-${range.end}/${size}` }),
      'accept-ranges': 'bytes',
      etag: `"${object.md5Hash}"`,
      'last-modified': object.created.toUTCString(),
      'x-goog-hash': `crc32c=${object.crc32c},md5=${object.md5Hash}`,
      'x-goog-generation': object.generation,
      'x-goog-metageneration': '1',
      'x-goog-stored-content-encoding': object.contentEncoding ?? 'identity',
      'x-goog-stored-content-length': String(size),
    })
    res.end(body)
  }

  const deleteObject: Handler = async (_req, res, query, [bucket, name]) => {
    allow(query, PRECONDITIONS)
    const object = objectOf(bucket!, name!, query)
    checkPreconditions(object, query)
    bucketOf(bucket!).delete(name!)
    res.writeHead(204).end()
  }

  const UPLOAD_PARAMS = ['uploadType', 'name', 'ifGenerationMatch', 'ifMetagenerationMatch', 'upload_id']

  const upload: Handler = async (req, res, query, [bucket]) => {
    allow(query, UPLOAD_PARAMS)
    bucketOf(bucket!)
    const preconditions = Object.fromEntries(Object.entries(query).filter(([k]) => k.startsWith('if')))
    const body = await readBody(req)
    switch (query.uploadType) {
      case 'media': {
        if (!query.name) throw new HttpError(400, 'uploadType=media needs a name parameter', 'required')
        const contentType = req.headers['content-type'] ?? 'application/octet-stream'
        return sendJson(res, 200, resource(store(bucket!, query.name, body, { contentType }, preconditions, hashHeader(req))))
      }
      case 'multipart': {
        const { metadata, media, mediaType } = parseMultipart(req.headers['content-type'], body)
        const name = query.name ?? (metadata.name as string | undefined)
        if (!name) throw new HttpError(400, 'a multipart upload needs a name (parameter or metadata)', 'required')
        const contentType = (metadata.contentType as string | undefined) ?? mediaType ?? 'application/octet-stream'
        const contentEncoding = metadata.contentEncoding as string | undefined
        const declared = { crc32c: metadata.crc32c, md5Hash: metadata.md5Hash, ...hashHeader(req) }
        return sendJson(res, 200, resource(store(bucket!, name, media, { contentType, contentEncoding }, preconditions, declared)))
      }
      case 'resumable':
        return startSession(req, res, bucket!, query, preconditions, body)
      default:
        throw new HttpError(400, `the fake Cloud Storage does not support uploadType=${query.uploadType}`)
    }
  }

  const startSession = (req: IncomingMessage, res: ServerResponse, bucket: string, query: Query, preconditions: Query, body: Buffer): void => {
    let metadata: Record<string, unknown> = {}
    try {
      if (body.length > 0) metadata = JSON.parse(body.toString('utf8')) as Record<string, unknown>
    } catch {
      throw new HttpError(400, 'the resumable upload metadata is not JSON', 'parseError')
    }
    const name = query.name ?? (metadata.name as string | undefined)
    if (!name) throw new HttpError(400, 'a resumable upload needs a name (parameter or metadata)', 'required')
    checkPreconditions(bucketOf(bucket).get(name), preconditions)
    const id = randomBytes(12).toString('hex')
    const declared = req.headers['x-upload-content-length']
    const contentType = (req.headers['x-upload-content-type'] as string | undefined) ?? (metadata.contentType as string | undefined) ?? 'application/octet-stream'
    sessions.set(id, { id, bucket, name, metadata, contentType, declaredSize: declared === undefined ? undefined : Number(declared), preconditions, chunks: [], received: 0 })
    const location = `${endpoint}/upload/storage/v1/b/${encodeURIComponent(bucket)}/o?uploadType=resumable&name=${encodeURIComponent(name)}&upload_id=${id}`
    res.writeHead(200, { location, 'content-length': 0 }).end()
  }

  const sessionOf = (query: Query): Session => {
    const session = query.upload_id === undefined ? undefined : sessions.get(query.upload_id)
    if (!session || query.uploadType !== 'resumable') throw new HttpError(404, `no such resumable upload session: ${query.upload_id}`, 'notFound')
    return session
  }

  /** 308 with what has been received so far (no Range header before the first byte). */
  const incomplete = (res: ServerResponse, session: Session): void => {
    res.writeHead(308, { 'content-length': 0, ...(session.received > 0 && { range: `bytes=0-${session.received - 1}` }) }).end()
  }

  const finalize = (req: IncomingMessage, res: ServerResponse, session: Session): void => {
    const data = Buffer.concat(session.chunks, session.received)
    try {
      if (session.declaredSize !== undefined && session.declaredSize !== data.length)
        throw new HttpError(400, `X-Upload-Content-Length was ${session.declaredSize} but ${data.length} bytes arrived`)
      const declared = { crc32c: session.metadata.crc32c, md5Hash: session.metadata.md5Hash, ...hashHeader(req) }
      const meta = { contentType: session.contentType, contentEncoding: session.metadata.contentEncoding as string | undefined }
      session.finished = store(session.bucket, session.name, data, meta, session.preconditions, declared)
      session.chunks = []
      sendJson(res, 200, resource(session.finished))
    } catch (err) {
      if (err instanceof HttpError) session.failed = err
      throw err
    }
  }

  /** One PUT of a resumable session: a status query, a chunk, or the last chunk (see parseContentRange). */
  const putChunk: Handler = async (req, res, query) => {
    allow(query, UPLOAD_PARAMS)
    const session = sessionOf(query)
    const body = await readBody(req)
    if (session.cancelled) throw new HttpError(499, 'the upload session was cancelled', 'clientClosedRequest')
    if (session.failed) throw session.failed
    if (session.finished) return sendJson(res, 200, resource(session.finished))
    const range = parseContentRange(req.headers['content-range'], body.length)
    if (range.kind === 'status') {
      if (body.length > 0) throw new HttpError(400, `Content-Range ${req.headers['content-range']} with a ${body.length}-byte body`)
      if (range.total !== undefined && range.total === session.received) return finalize(req, res, session)
      return incomplete(res, session)
    }
    if (range.start !== session.received)
      throw new HttpError(400, `Content-Range starts at ${range.start} but ${session.received} bytes were received so far (${req.headers['content-range']})`)
    const end = session.received + body.length // exclusive
    const last = range.total !== undefined ? end === range.total : range.kind === 'stream' // a `start-*/*` request carries the rest
    if (range.total !== undefined && end > range.total) throw new HttpError(400, `Content-Range ${req.headers['content-range']} goes past the total size`)
    if (!last && body.length % RESUMABLE_GRANULE !== 0)
      throw new HttpError(400, `a non-final chunk must be a multiple of ${RESUMABLE_GRANULE} bytes, this one has ${body.length}`)
    session.chunks.push(body)
    session.received = end
    if (last) return finalize(req, res, session)
    incomplete(res, session)
  }

  const cancelSession: Handler = async (_req, res, query) => {
    allow(query, UPLOAD_PARAMS)
    const session = sessionOf(query)
    session.cancelled = true
    session.chunks = []
    res.writeHead(499, { 'content-length': 0 }).end()
  }

  /** Method + path pattern (segments; `:` captures, `*` captures the rest, for object names with slashes). */
  const routes: [string, string[], Handler][] = [
    ['GET', ['storage', 'v1', 'b', ':'], getBucket],
    ['GET', ['storage', 'v1', 'b', ':', 'o'], list],
    ['GET', ['storage', 'v1', 'b', ':', 'o', '*'], getObject],
    ['DELETE', ['storage', 'v1', 'b', ':', 'o', '*'], deleteObject],
    ['POST', ['upload', 'storage', 'v1', 'b', ':', 'o'], upload],
    ['PUT', ['upload', 'storage', 'v1', 'b', ':', 'o'], putChunk],
    ['DELETE', ['upload', 'storage', 'v1', 'b', ':', 'o'], cancelSession],
  ]

  const route = (method: string, segments: string[]): { handler: Handler; params: string[] } | undefined => {
    for (const [m, pattern, handler] of routes) {
      if (m !== method) continue
      const params: string[] = []
      const last = pattern[pattern.length - 1]
      const fits = last === '*' ? segments.length >= pattern.length : segments.length === pattern.length
      if (!fits) continue
      const ok = pattern.every((p, i) => {
        if (p === '*') return params.push(segments.slice(i).join('/')) > 0
        if (p === ':') return params.push(segments[i]!) > 0
        return p === segments[i]
      })
      if (ok) return { handler, params }
    }
    return undefined
  }

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', 'http://fake')
    const query = Object.fromEntries(url.searchParams) as Query
    const raw = url.pathname.split('/').filter(Boolean)
    const segments = raw.map(s => decodeURIComponent(s))
    const method = req.method ?? 'GET'
    requests.push({ method, path: `/${segments.join('/')}`, query, headers: req.headers })
    if (failing.n > 0) {
      failing.n--
      return sendError(res, new HttpError(failing.status, `injected failure (${failing.status})`, 'backendError'))
    }
    const found = route(method, segments)
    if (!found) throw new HttpError(501, `no such route in the fake Cloud Storage: ${method} ${url.pathname}`, 'notImplemented')
    await found.handler(req, res, query, found.params)
  }

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (res.headersSent) return void res.destroy()
      if (err instanceof HttpError) return sendError(res, err)
      sendError(res, new HttpError(500, `fake Cloud Storage failed: ${err instanceof Error ? err.message : String(err)}`, 'internalError'))
    })
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`

  return {
    endpoint,
    storage: (options = {}) =>
      new (storageLibrary().Storage)({
        apiEndpoint: endpoint, // a non-Google host: the client sends no credentials and looks none up
        projectId: 'test',
        ...options,
        // Production's retry policy with the backoff capped at 1 s so failure tests stay short. Not lower: a
        // resumable upload hands maxRetryDelay to async-retry as maxTimeout, below its 1 s minTimeout, and throws.
        retryOptions: { maxRetryDelay: 1, totalTimeout: 60, ...options.retryOptions },
      }),
    createBucket: name => void (buckets.has(name) || buckets.set(name, new Map())),
    objects: bucket =>
      [...bucketOf(bucket).values()].map(o => ({ name: o.name, generation: o.generation, size: o.data.length })).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)),
    requests,
    failNext: (n, status = 503) => void (failing = { n, status }),
    corruptDownloads: (n = 1) => void (corruptDownloads = n),
    corruptUploads: (n = 1) => void (corruptUploads = n),
    read: (bucket, name) => buckets.get(bucket)?.get(name)?.data,
    putObject: (bucket, name, data, contentType = 'application/octet-stream') => void insert(bucket, name, Buffer.from(data), { contentType }),
    openSessions: () => [...sessions.values()].filter(s => !s.finished && !s.cancelled && !s.failed).length,
    stop: () => {
      server.closeAllConnections()
      return new Promise(resolve => server.close(() => resolve()))
    },
  }
}
