/**
 * A place holding snapshots (JSONL, gzip by default): a local directory or `gs://bucket/prefix`. Several
 * writers may share one place (two Cloud Run revisions during a rollout): every snapshot gets a fresh
 * time-ordered name and is created without ever replacing anything, and only complete ones are listed.
 */
import { randomBytes } from 'node:crypto'
import { mkdirSync } from 'node:fs'
import { readdir, stat, unlink } from 'node:fs/promises'
import { join } from 'node:path'
import { pipeline } from 'node:stream/promises'
import type { Bucket, DeleteFileOptions } from '@google-cloud/storage'
import { createAtomicFile, isTempName } from './atomic-file.js'
import { DEFAULT_CHUNK_BYTES } from './gcs-io.js'
import { gcsSink, named, openReader, storageOf, writerInto, type Sink, type StorageOptions } from './location.js'

/**
 * `full`: every event; `delta`: only what was stored after the full snapshot its writer had (written
 * where a full one would not fit in time, e.g. at shutdown). A restore takes the newest full snapshot
 * and the deltas newer than it.
 */
export type SnapshotKind = 'full' | 'delta'

export interface SnapshotInfo {
  name: string
  createdAt: Date
  /** Stored size (compressed when gzip). */
  bytes: number
  kind: SnapshotKind
}

export interface SnapshotStore {
  readonly target: string
  /** Stores a complete snapshot under a new unique name (never overwrites); the name sorts by time: `snapshot-<UTC yyyymmddThhmmssmmmZ>-<8 hex>[.delta].jsonl.gz`. */
  put(source: NodeJS.ReadableStream | AsyncIterable<Buffer | string>, opts?: { gzip?: boolean; kind?: SnapshotKind }): Promise<SnapshotInfo>
  /** Complete snapshots, newest first (temporary and partial files never listed). */
  list(): Promise<SnapshotInfo[]>
  /** Plain (gunzipped) bytes of one snapshot. */
  get(name: string): Promise<NodeJS.ReadableStream>
  /** Missing is not an error. */
  delete(name: string): Promise<void>
  /**
   * Keeps the newest `keep` full snapshots and the deltas newer than the oldest of them (a restore from
   * any kept full snapshot still finds its deltas); deletes the rest and returns their names.
   */
  prune(keep: number): Promise<string[]>
}

const NAME = /^snapshot-(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})(\d{3})Z-[0-9a-f]{8}(\.delta)?\.jsonl(?:\.gz)?$/

/** Whether a snapshot name is a delta's. */
export const snapshotKind = (name: string): SnapshotKind => (NAME.exec(name)?.[8] ? 'delta' : 'full')

/** When a snapshot was started, read from its name; undefined for anything that is not a snapshot name. */
export const snapshotTime = (name: string): Date | undefined => {
  const m = NAME.exec(name)
  if (!m) return undefined
  const [y, mo, d, h, mi, s, ms] = m.slice(1, 8).map(Number) as [number, number, number, number, number, number, number]
  return new Date(Date.UTC(y, mo - 1, d, h, mi, s, ms))
}

let lastStamp = 0
/** Milliseconds that never repeat or go back within this process, so its own snapshots sort in order. */
const nextStamp = (): number => (lastStamp = Math.max(Date.now(), lastStamp + 1))

/** `snapshot-20250102T030405006Z-1a2b3c4d.jsonl.gz`; the random part keeps concurrent writers apart. */
export const snapshotName = (at: Date, gzip: boolean, kind: SnapshotKind = 'full'): string => {
  const stamp = at.toISOString().replace(/[-:.]/g, '') // 20250102T030405006Z
  return `snapshot-${stamp}-${randomBytes(4).toString('hex')}${kind === 'delta' ? '.delta' : ''}.jsonl${gzip ? '.gz' : ''}`
}

const checkedName = (target: string, name: string): string => {
  if (!NAME.test(name)) throw new Error(`${target}: ${JSON.stringify(name)} is not a snapshot name`)
  return name
}

/** A stored snapshot as a backend lists it; `generation` pins a Cloud Storage delete to what was listed. */
interface Entry {
  name: string
  bytes: number
  generation?: string
}

/** What differs between a directory and a bucket. */
interface Backend {
  /** The location (for openReader and messages) of one snapshot. */
  locate(name: string): string
  /** Creates `name` only if absent, and only once complete. */
  create(name: string): Promise<Sink>
  entries(): Promise<Entry[]>
  remove(entry: Entry): Promise<void>
  /** Removes leftovers of writers that died (directory only). */
  sweep(): Promise<void>
}

/** A temporary file nobody has written to for this long belongs to a writer that died. */
const STALE_TEMP_MS = 60 * 60 * 1000

const directoryBackend = (dir: string): Backend => {
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 })
  } catch (err) {
    throw named(dir, err)
  }
  return {
    locate: name => join(dir, name),
    create: async name => {
      const file = await createAtomicFile(join(dir, name), 'exclusive')
      return { stream: file.stream, commit: file.commit, abort: file.abort }
    },
    entries: async () => {
      const names = (await readdir(dir)).filter(n => NAME.test(n))
      const sized = await Promise.all(names.map(name => stat(join(dir, name)).then(s => ({ name, bytes: s.size }), () => undefined)))
      return sized.filter((e): e is Entry => e !== undefined) // deleted between readdir and stat
    },
    remove: entry => unlink(join(dir, entry.name)).catch(err => (err.code === 'ENOENT' ? undefined : Promise.reject(err))),
    sweep: async () => {
      const temps = (await readdir(dir)).filter(n => isTempName(n) && n.startsWith('.snapshot-'))
      for (const temp of temps) {
        const { mtimeMs } = await stat(join(dir, temp)).catch(() => ({ mtimeMs: Date.now() }))
        if (Date.now() - mtimeMs > STALE_TEMP_MS) await unlink(join(dir, temp)).catch(() => undefined)
      }
    },
  }
}

const codeOf = (err: unknown): unknown => (err as { code?: unknown } | null)?.code

/** Deletes one generation; the precondition also lets the client retry the call safely. */
const deleteGeneration = async (bucket: Bucket, object: string, generation: string): Promise<void> => {
  await bucket.file(object).delete({ ignoreNotFound: true, ifGenerationMatch: generation } as DeleteFileOptions)
}

const bucketBackend = (bucket: Bucket, prefix: string, chunkBytes: number, target: string): Backend => ({
  locate: name => `gs://${bucket.name}/${prefix}${name}`,
  // ifGenerationMatch=0: the upload only completes if no object has that name.
  create: async name => gcsSink(bucket.storage, bucket.name, prefix + name, chunkBytes, 0),
  entries: async () => {
    const [files] = await bucket.getFiles({ prefix: `${prefix}snapshot-`, autoPaginate: true })
    return files.map(f => ({ name: f.name.slice(prefix.length), bytes: Number(f.metadata.size ?? 0), generation: String(f.metadata.generation) }))
  },
  remove: async entry => {
    let generation = entry.generation
    if (generation === undefined) {
      const [metadata] = await bucket.file(prefix + entry.name).getMetadata().catch(err => (codeOf(err) === 404 ? [undefined] : Promise.reject(err)))
      if (!metadata) return
      generation = String(metadata.generation)
    }
    // Always with a precondition: the client's unconditional delete switches retries off on the shared client while it runs.
    await deleteGeneration(bucket, prefix + entry.name, generation).catch(err => {
      if (codeOf(err) !== 412) throw err
      throw new Error(`${target}: ${entry.name} changed while being deleted`, { cause: err })
    })
  },
  sweep: async () => undefined, // an unfinished resumable upload leaves no object; Cloud Storage drops the session after a week
})

/** `gs://bucket` or `gs://bucket/some/prefix` (a trailing slash optional). */
const parseBucketTarget = (target: string): { bucket: string; prefix: string } => {
  const rest = target.slice('gs://'.length)
  const slash = rest.indexOf('/')
  const bucket = slash === -1 ? rest : rest.slice(0, slash)
  const path = slash === -1 ? '' : rest.slice(slash + 1).replace(/\/+$/, '')
  if (!bucket) throw new Error(`${target}: a Cloud Storage snapshot target needs a bucket, as in gs://my-bucket/snapshots`)
  return { bucket, prefix: path ? `${path}/` : '' }
}

const storeOver = (target: string, backend: Backend, opts: StorageOptions): SnapshotStore => {
  const list = async (): Promise<(SnapshotInfo & Entry)[]> => {
    const entries = await backend.entries()
    return entries
      .filter(e => NAME.test(e.name))
      .sort((a, b) => (a.name < b.name ? 1 : a.name > b.name ? -1 : 0))
      .map(e => ({ ...e, createdAt: snapshotTime(e.name)!, kind: snapshotKind(e.name) }))
  }
  const info = ({ name, createdAt, bytes, kind }: SnapshotInfo): SnapshotInfo => ({ name, createdAt, bytes, kind })
  return {
    target,
    async put(source, { gzip = true, kind = 'full' } = {}) {
      const createdAt = new Date(nextStamp())
      const name = snapshotName(createdAt, gzip, kind)
      const location = backend.locate(name)
      const writer = writerInto(await backend.create(name).catch(err => Promise.reject(named(location, err))), gzip, location)
      try {
        await pipeline(source, writer.stream)
        await writer.done()
      } catch (err) {
        await writer.abort(err instanceof Error ? err : new Error(String(err)))
        throw named(location, err)
      }
      return { name, createdAt, bytes: writer.storedBytes(), kind }
    },
    list: async () => (await list().catch(err => Promise.reject(named(target, err)))).map(info),
    async get(name) {
      return (await openReader(backend.locate(checkedName(target, name)), opts)).stream
    },
    async delete(name) {
      await backend.remove({ name: checkedName(target, name), bytes: 0 }).catch(err => Promise.reject(named(backend.locate(name), err)))
    },
    async prune(keep) {
      if (!Number.isInteger(keep) || keep < 0) throw new RangeError(`${target}: prune needs a whole number of snapshots to keep, not ${keep}`)
      const all = await list().catch(err => Promise.reject(named(target, err)))
      const kept = all.filter(e => e.kind === 'full').slice(0, keep)
      const oldestKept = kept.at(-1)?.name
      // Newest first: a full snapshot past `keep`, and a delta older than every kept full one, go.
      const doomed = all.filter(e => (e.kind === 'full' ? !kept.includes(e) : oldestKept !== undefined && e.name < oldestKept))
      for (const entry of doomed) await backend.remove(entry).catch(err => Promise.reject(named(backend.locate(entry.name), err)))
      await backend.sweep().catch(() => undefined) // best effort
      return doomed.map(e => e.name)
    },
  }
}

/** A snapshot store on `gs://bucket/prefix` (prefix may be empty) or a directory (created when absent). */
export const openSnapshotStore = (target: string, opts: StorageOptions = {}): SnapshotStore => {
  if (!target.startsWith('gs://')) return storeOver(target, directoryBackend(target), opts)
  const { bucket, prefix } = parseBucketTarget(target)
  const chunkBytes = opts.uploadChunkBytes ?? DEFAULT_CHUNK_BYTES
  return storeOver(target, bucketBackend(storageOf(opts).bucket(bucket), prefix, chunkBytes, target), opts)
}
