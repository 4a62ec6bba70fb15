/**
 * Streams into and out of one Cloud Storage object with the official client. Small objects go up in one
 * multipart request that declares their CRC32C and MD5; anything reaching `chunkBytes` goes up as a chunked
 * resumable upload, which the client can resume after a failed chunk. Downloads are checked by the client
 * against the object's CRC32C.
 */
import { createHash } from 'node:crypto'
import { Writable } from 'node:stream'
import { setTimeout as sleep } from 'node:timers/promises'
import type { ApiError, Bucket, File, Storage } from '@google-cloud/storage'
import { crc32cBase64 } from './crc32c.js'

/** Cloud Storage wants resumable chunks in multiples of 256 KiB; its guide recommends at least 8 MiB. */
export const CHUNK_GRANULE = 256 * 1024
export const DEFAULT_CHUNK_BYTES = 8 * 1024 * 1024

/** One object to write; `ifGenerationMatch` 0 means "only if it does not exist yet". */
export interface UploadTarget {
  file: File
  ifGenerationMatch?: number | string
  chunkBytes: number
}

const contentTypeOf = (name: string): string | undefined => (/\.jsonl$/i.test(name) ? 'application/x-ndjson' : undefined) // else the client's own lookup

const codeOf = (err: unknown): unknown => (err as { code?: unknown } | null)?.code

/** The client's retry delay before retry number `attempt` (1, 2, …): multiplier^(attempt-1) seconds plus up to a second of jitter, capped. */
const retryDelayMs = (retry: Required<Pick<Storage['retryOptions'], 'retryDelayMultiplier' | 'maxRetryDelay'>>, attempt: number): number =>
  Math.min(retry.retryDelayMultiplier ** (attempt - 1) * 1000 + Math.random() * 1000, retry.maxRetryDelay * 1000)

const uploadOnce = (file: File, data: Buffer, metadata: Record<string, string>, ifGenerationMatch?: number | string): Promise<void> =>
  new Promise((resolve, reject) => {
    const preconditionOpts = ifGenerationMatch === undefined ? undefined : { ifGenerationMatch }
    file
      .createWriteStream({ resumable: false, metadata, preconditionOpts, validation: 'crc32c' })
      .on('error', reject)
      .on('finish', resolve)
      .end(data)
  })

/** True when the object now holds exactly these bytes: an earlier attempt landed but its answer was lost. */
const holds = async (file: File, metadata: Record<string, string>): Promise<boolean> => {
  const [current] = await file.getMetadata()
  return current.crc32c === metadata.crc32c && current.md5Hash === metadata.md5Hash
}

/**
 * One multipart request, retried on the client's retryable errors when a precondition makes that safe.
 * Done here rather than with `file.save()`, which turns retries off on the shared client for good whenever
 * it is called without a precondition.
 */
export const uploadSmall = async (target: UploadTarget, data: Buffer): Promise<void> => {
  const { file, ifGenerationMatch } = target
  const metadata: Record<string, string> = { crc32c: crc32cBase64(data), md5Hash: createHash('md5').update(data).digest('base64') }
  const contentType = contentTypeOf(file.name)
  if (contentType) metadata.contentType = contentType
  const retry = file.storage.retryOptions
  const attempts = ifGenerationMatch !== undefined && retry.autoRetry ? 1 + (retry.maxRetries ?? 3) : 1
  for (let attempt = 1; ; attempt++) {
    try {
      return await uploadOnce(file, data, metadata, ifGenerationMatch)
    } catch (err) {
      if (attempt > 1 && codeOf(err) === 412 && (await holds(file, metadata).catch(() => false))) return
      if (attempt >= attempts || !retry.retryableErrorFn?.(err as ApiError)) throw err
      await sleep(retryDelayMs({ retryDelayMultiplier: retry.retryDelayMultiplier ?? 2, maxRetryDelay: retry.maxRetryDelay ?? 64 }, attempt))
    }
  }
}

/** A chunked resumable upload; the client retries a failed chunk only when a precondition is set. */
const startResumable = (target: UploadTarget): Writable => {
  const { file, ifGenerationMatch, chunkBytes } = target
  const contentType = contentTypeOf(file.name)
  return file.createWriteStream({
    resumable: true,
    chunkSize: chunkBytes,
    validation: 'crc32c',
    metadata: contentType ? { contentType } : {},
    preconditionOpts: ifGenerationMatch === undefined ? undefined : { ifGenerationMatch },
  })
}

const writeInto = (stream: Writable, chunk: Buffer, done: () => void): void => {
  if (stream.write(chunk)) done()
  else stream.once('drain', done)
}

/**
 * A writable that finishes only once the object is stored and its CRC32C confirmed. Data is held until
 * `chunkBytes` arrive: a smaller object then goes up in one request; a larger one starts a resumable upload.
 * Destroying it abandons the upload: nothing is created under the object's name.
 */
export const createUploadStream = (target: UploadTarget): Writable => {
  if (target.chunkBytes <= 0 || target.chunkBytes % CHUNK_GRANULE !== 0)
    throw new RangeError(`upload chunk size must be a positive multiple of ${CHUNK_GRANULE} bytes, not ${target.chunkBytes}`)
  let held: Buffer[] = []
  let heldBytes = 0
  let upload: Writable | undefined
  const sink: Writable = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      if (upload) return writeInto(upload, chunk, callback)
      held.push(chunk)
      heldBytes += chunk.length
      if (heldBytes < target.chunkBytes) return callback()
      upload = startResumable(target).on('error', err => sink.destroy(err))
      const first = Buffer.concat(held, heldBytes)
      held = []
      writeInto(upload, first, callback)
    },
    final(callback) {
      if (!upload) return void uploadSmall(target, Buffer.concat(held, heldBytes)).then(() => callback(), callback)
      upload.once('finish', () => callback()).end() // an error destroys the sink through the listener above
    },
    destroy(err, callback) {
      upload?.destroy(err ?? new Error('upload abandoned'))
      held = []
      callback(err)
    },
  })
  return sink
}

/** Size and generation now, and a read stream pinned to that generation (so `bytes` matches what is read). */
export const openObject = async (bucket: Bucket, name: string): Promise<{ stream: NodeJS.ReadableStream; bytes: number }> => {
  const [metadata] = await bucket.file(name).getMetadata()
  const file = bucket.file(name, metadata.generation === undefined ? {} : { generation: metadata.generation })
  return { stream: file.createReadStream({ validation: 'crc32c' }), bytes: Number(metadata.size) }
}

/** The object's generation (a decimal int64), 0 when it does not exist, undefined when we may not read it (write-only role). */
export const generationOf = async (file: File): Promise<string | 0 | undefined> => {
  try {
    const [metadata] = await file.getMetadata()
    return String(metadata.generation)
  } catch (err) {
    if (codeOf(err) === 404) return 0
    if (codeOf(err) === 403) return undefined
    throw err
  }
}
