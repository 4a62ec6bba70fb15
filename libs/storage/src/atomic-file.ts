/**
 * A file that appears under its final name only complete and on disk: written under a temporary name in
 * the same directory, fsync'ed, moved into place, and the directory fsync'ed after the move.
 */
import { randomBytes } from 'node:crypto'
import { access, link, open, rename, unlink, type FileHandle } from 'node:fs/promises'
import { basename, dirname, join } from 'node:path'
import { Writable } from 'node:stream'
import { finished } from 'node:stream/promises'

/** Temporary files start with a dot and end in `.tmp`, so no listing of final names ever shows one. */
export const TEMP_SUFFIX = '.tmp'
export const isTempName = (name: string): boolean => name.startsWith('.') && name.endsWith(TEMP_SUFFIX)

/** How the finished file takes its name: replacing what is there, or failing with EEXIST if anything is. */
export type Placement = 'replace' | 'exclusive'

export interface AtomicFile {
  /** Where the bytes go; end it, then commit. */
  readonly stream: Writable
  /** Waits for the stream to finish, syncs, and moves the file into place; on failure removes the temporary file. */
  commit(): Promise<void>
  /** Destroys the stream and removes the temporary file; the final name is never touched. */
  abort(): Promise<void>
}

/** Hard links fail here on filesystems without them (some FUSE mounts); these codes mean "not supported". */
const NO_LINKS = new Set(['EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'ENOSYS', 'EXDEV'])

const exists = (path: string): Promise<boolean> => access(path).then(() => true, () => false)

/** Makes a directory entry durable: without this, a crash right after rename can lose the new name. */
const syncDirectory = async (dir: string): Promise<void> => {
  const handle = await open(dir, 'r')
  try {
    await handle.sync()
  } finally {
    await handle.close()
  }
}

/** Moves `temp` to `path` without ever replacing an existing file (link, then unlink the temporary name). */
const placeExclusive = async (temp: string, path: string): Promise<void> => {
  try {
    await link(temp, path)
  } catch (err) {
    if (!NO_LINKS.has((err as NodeJS.ErrnoException).code ?? '')) throw err
    // No hard links: check, then rename. Only a writer choosing the very same random name could race here.
    if (await exists(path)) throw Object.assign(new Error(`EEXIST: file already exists, ${path}`), { code: 'EEXIST' })
    await rename(temp, path)
    return
  }
  await unlink(temp)
}

/** Writes every byte, however many calls that takes. */
const writeAll = async (handle: FileHandle, data: Buffer): Promise<void> => {
  for (let at = 0; at < data.length; ) at += (await handle.write(data, at, data.length - at)).bytesWritten
}

/**
 * A writable over an open handle that leaves it open (to fsync and close it after). Not the handle's own
 * createWriteStream: with autoClose off, that stream keeps a reference that makes handle.close() wait forever.
 */
const handleStream = (handle: FileHandle): Writable =>
  new Writable({
    write: (chunk: Buffer, _encoding, callback) => void writeAll(handle, chunk).then(() => callback(), callback),
    writev: (chunks, callback) => void writeAll(handle, Buffer.concat(chunks.map(c => c.chunk as Buffer))).then(() => callback(), callback),
  })

/** Opens `<dir>/.<name>.<random>.tmp` for writing; nothing exists under `path` until commit() succeeds. */
export const createAtomicFile = async (path: string, placement: Placement): Promise<AtomicFile> => {
  const dir = dirname(path)
  const temp = join(dir, `.${basename(path)}.${randomBytes(4).toString('hex')}${TEMP_SUFFIX}`)
  // Exports and snapshots hold every event's metadata: readable by the relay's user only.
  const handle = await open(temp, 'wx', 0o600)
  const stream = handleStream(handle)
  let settled = false
  const discard = async (): Promise<void> => {
    await handle.close().catch(() => undefined)
    await unlink(temp).catch(() => undefined)
  }
  return {
    stream,
    async commit() {
      if (settled) throw new Error(`${path}: already committed or aborted`)
      settled = true
      try {
        await finished(stream)
        await handle.sync()
        await handle.close()
        await (placement === 'replace' ? rename(temp, path) : placeExclusive(temp, path))
        await syncDirectory(dir)
      } catch (err) {
        await discard()
        throw err
      }
    },
    async abort() {
      if (settled) return
      settled = true
      stream.destroy()
      await discard()
    },
  }
}
