/**
 * Where an export goes or an import comes from: `-` (stdin/stdout), a file path, or `gs://bucket/object`.
 * Gzip follows the name (`.gz`); files appear only complete; uploads finish only once stored and checked.
 */
import { open } from 'node:fs/promises'
import { PassThrough, Transform, Writable, pipeline } from 'node:stream'
import { pipeline as pipelineAsync } from 'node:stream/promises'
import { createGunzip, createGzip } from 'node:zlib'
import type { Storage } from '@google-cloud/storage'
import { createAtomicFile, type Placement } from './atomic-file.js'
import { DEFAULT_CHUNK_BYTES, createUploadStream, generationOf, openObject } from './gcs-io.js'
import { storageLibrary } from './storage-library.js'

export { readLines } from './lines.js'

export type Location = { kind: 'stdio' } | { kind: 'file'; path: string } | { kind: 'gcs'; bucket: string; object: string }

/** What the I/O functions use instead of globals: tests inject the fake server's client and their own stdio. */
export interface StorageOptions {
  /** The Cloud Storage client; default one `new Storage()` shared by the process (application default credentials). */
  storage?: Storage
  /** Resumable uploads go in chunks of this many bytes (a multiple of 256 KiB, default 8 MiB); smaller objects go in one request. */
  uploadChunkBytes?: number
  /** `-` reads this instead of process.stdin. */
  stdin?: NodeJS.ReadableStream
  /** `-` writes this instead of process.stdout. */
  stdout?: NodeJS.WritableStream
}

/** `-` → stdio; `gs://bucket/object` → Cloud Storage; anything else → a file path. */
export const parseLocation = (value: string): Location => {
  if (value === '-') return { kind: 'stdio' }
  if (!value.startsWith('gs://')) return { kind: 'file', path: value }
  const rest = value.slice('gs://'.length)
  const slash = rest.indexOf('/')
  const bucket = slash === -1 ? rest : rest.slice(0, slash)
  const object = slash === -1 ? '' : rest.slice(slash + 1)
  if (!bucket || !object) throw new Error(`${value}: a Cloud Storage location needs a bucket and an object name, as in gs://my-bucket/exports/events.jsonl.gz`)
  return { kind: 'gcs', bucket, object }
}

/** Whether bytes at this location are gzip: its name ends in `.gz`. */
export const isGzip = (value: string): boolean => value.toLowerCase().endsWith('.gz')

let sharedStorage: Storage | undefined
/** The injected client, or one default client for the whole process. */
export const storageOf = (opts: StorageOptions): Storage => opts.storage ?? (sharedStorage ??= new (storageLibrary().Storage)())

/** What Cloud Storage said, when the client's own message is only gaxios's "Request failed with status code N". */
const serverMessage = (err: unknown): string | undefined => {
  let body = (err as { response?: { data?: unknown } } | null)?.response?.data
  if (typeof body === 'string') {
    try {
      body = JSON.parse(body)
    } catch {
      return undefined // not a JSON error: nothing to add
    }
  }
  const message = (body as { error?: { message?: unknown } } | null | undefined)?.error?.message
  return typeof message === 'string' ? message : undefined
}

/** An error whose message starts with the location it concerns (once), with the server's explanation if any. */
export const named = (location: string, err: unknown): Error => {
  const message = err instanceof Error ? err.message : String(err)
  if (message.startsWith(`${location}:`)) return err as Error
  const said = serverMessage(err)
  const code = (err as { code?: unknown } | null)?.code
  const detail = said && !message.includes(said) ? ` (${said})` : typeof code === 'number' && !message.includes(String(code)) ? ` (HTTP ${code})` : ''
  return new Error(`${location}: ${message}${detail}`, { cause: err })
}

/** Where stored bytes go once gzip (if any) is applied; `commit` makes them durable under the final name. */
export interface Sink {
  stream: Writable
  commit(): Promise<void>
  abort(): Promise<void>
}

const fileSink = async (path: string, placement: Placement): Promise<Sink> => {
  const file = await createAtomicFile(path, placement)
  return { stream: file.stream, commit: file.commit, abort: file.abort }
}

/** Writes through to stdout without ever ending it; finishing waits until stdout took every byte. */
const stdoutSink = (out: NodeJS.WritableStream): Sink => {
  const onError = (err: Error): void => void stream.destroy(err)
  const stream = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      if (out.write(chunk)) callback()
      else out.once('drain', () => callback())
    },
    final(callback) {
      out.write(Buffer.alloc(0), err => callback(err ?? undefined))
    },
  })
  out.on('error', onError)
  const release = async (): Promise<void> => void out.removeListener('error', onError)
  return { stream, commit: release, abort: release }
}

/** An upload to one object; a finished stream means stored and checked, so commit has nothing left to do. */
export const gcsSink = (storage: Storage, bucket: string, object: string, chunkBytes: number, ifGenerationMatch?: number | string): Sink => {
  const stream = createUploadStream({ file: storage.bucket(bucket).file(object), chunkBytes, ifGenerationMatch })
  return { stream, commit: async () => undefined, abort: async () => void stream.destroy() }
}

/** An OpenedWriter that can also be abandoned, and counts the bytes it stored (after gzip). */
export interface Writer extends OpenedWriter {
  abort(reason?: Error): Promise<void>
  storedBytes(): number
}

/** Plain bytes in, gzip when asked, into `sink`; done() ends, waits for the sink and commits it. */
export const writerInto = (sink: Sink, gzip: boolean, location: string): Writer => {
  let stored = 0
  const counter = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      stored += chunk.length
      callback(null, chunk)
    },
  })
  const head = gzip ? createGzip() : counter
  const flowing = gzip ? pipelineAsync(head, counter, sink.stream) : pipelineAsync(counter, sink.stream)
  flowing.catch(() => undefined) // observed by done() or abort()
  let outcome: Promise<void> | undefined
  const finish = async (): Promise<void> => {
    if (!head.writableEnded) head.end()
    try {
      await flowing
      await sink.commit()
    } catch (err) {
      await sink.abort()
      throw named(location, err)
    }
  }
  return {
    stream: head,
    done: () => (outcome ??= finish()),
    async abort(reason) {
      if (outcome) return void (await outcome.catch(() => undefined))
      outcome = Promise.reject(named(location, reason ?? new Error('aborted')))
      outcome.catch(() => undefined)
      head.destroy(reason ?? new Error('aborted'))
      await flowing.catch(() => undefined)
      await sink.abort()
    },
    storedBytes: () => stored,
  }
}

/** A stream to write plain bytes into, and how to finish it. */
export interface OpenedWriter {
  stream: NodeJS.WritableStream
  /** Ends the stream (if not yet ended) and resolves once the bytes are durable; rejects with an error naming the location. */
  done(): Promise<void>
}

/**
 * Opens a location for writing (gzip when its name ends in `.gz`). A file is written beside its final name
 * and renamed only in done(); a Cloud Storage object is created or replaced only when the upload completes,
 * guarded by the generation seen at open so a concurrent writer is detected and failed chunks can be retried.
 * The result also has `abort(reason?)`, which leaves nothing behind.
 */
export const openWriter = async (location: string, opts: StorageOptions = {}): Promise<Writer> => {
  const where = parseLocation(location)
  try {
    if (where.kind === 'stdio') return writerInto(stdoutSink(opts.stdout ?? process.stdout), false, location)
    if (where.kind === 'file') return writerInto(await fileSink(where.path, 'replace'), isGzip(where.path), location)
    const storage = storageOf(opts)
    const generation = await generationOf(storage.bucket(where.bucket).file(where.object))
    const sink = gcsSink(storage, where.bucket, where.object, opts.uploadChunkBytes ?? DEFAULT_CHUNK_BYTES, generation)
    return writerInto(sink, isGzip(where.object), location)
  } catch (err) {
    throw named(location, err)
  }
}

/** A stream of plain bytes, and the stored size when known (for progress). */
export interface OpenedReader {
  stream: NodeJS.ReadableStream
  bytes?: number
}

/** An OpenedReader that also tells how many stored bytes were read so far (comparable with `bytes`). */
export interface Reader extends OpenedReader {
  bytesRead(): number
}

const openStored = async (where: Location, opts: StorageOptions): Promise<{ stream: NodeJS.ReadableStream; bytes?: number }> => {
  if (where.kind === 'stdio') return { stream: opts.stdin ?? process.stdin }
  if (where.kind === 'gcs') return openObject(storageOf(opts).bucket(where.bucket), where.object)
  const handle = await open(where.path, 'r')
  try {
    const { size } = await handle.stat()
    return { stream: handle.createReadStream(), bytes: size }
  } catch (err) {
    await handle.close()
    throw err
  }
}

/**
 * Opens a location for reading plain bytes (gunzipped when its name ends in `.gz`). A missing file or object
 * rejects here; a stream error (including a download that fails its CRC32C check) names the location.
 */
export const openReader = async (location: string, opts: StorageOptions = {}): Promise<Reader> => {
  const where = parseLocation(location)
  const stored = await openStored(where, opts).catch(err => Promise.reject(named(location, err)))
  let read = 0
  const counter = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      read += chunk.length
      callback(null, chunk)
    },
  })
  // The last stage renames whatever error the pipeline destroys it with.
  const out = new PassThrough({ destroy: (err, callback) => callback(err && named(location, err)) })
  const settled = (): void => undefined // errors reach the reader through `out`
  if (isGzip(location)) pipeline(stored.stream, counter, createGunzip(), out, settled)
  else pipeline(stored.stream, counter, out, settled)
  return { stream: out, bytes: stored.bytes, bytesRead: () => read }
}
