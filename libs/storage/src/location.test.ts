import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { PassThrough, Readable } from 'node:stream'
import { text } from 'node:stream/consumers'
import { after, before, describe, it } from 'node:test'
import { fileURLToPath } from 'node:url'
import { gunzipSync } from 'node:zlib'
import { createAtomicFile } from './atomic-file.js'
import { isGzip, openReader, openWriter, parseLocation } from './location.js'

let dir = ''
before(async () => void (dir = await mkdtemp(join(tmpdir(), 'msr-storage-'))))
after(() => rm(dir, { recursive: true, force: true }))

describe('parseLocation and isGzip', () => {
  it('reads -, files and gs:// objects, and refuses gs:// without a bucket and an object', () => {
    assert.deepEqual(parseLocation('-'), { kind: 'stdio' })
    assert.deepEqual(parseLocation('./out/events.jsonl'), { kind: 'file', path: './out/events.jsonl' })
    assert.deepEqual(parseLocation('gs://bkt/exports/2025/events.jsonl.gz'), { kind: 'gcs', bucket: 'bkt', object: 'exports/2025/events.jsonl.gz' })
    for (const bad of ['gs://', 'gs://bkt', 'gs://bkt/', 'gs:///object'])
      assert.throws(() => parseLocation(bad), (err: Error) => err.message.startsWith(`${bad}: a Cloud Storage location needs a bucket and an object name`))
  })

  it('gzips by the name', () => {
    assert.equal(isGzip('a.jsonl.gz'), true)
    assert.equal(isGzip('gs://b/a.JSONL.GZ'), true)
    assert.equal(isGzip('a.jsonl'), false)
    assert.equal(isGzip('a.gzip'), false)
    assert.equal(isGzip('-'), false)
  })
})

describe('file locations', () => {
  it('round-trips plain and gzip files, the .gz one really compressed on disk', async () => {
    const lines = Array.from({ length: 2000 }, (_, i) => `{"n":${i}}\n`).join('')
    for (const name of ['plain.jsonl', 'packed.jsonl.gz']) {
      const path = join(dir, name)
      const writer = await openWriter(path)
      writer.stream.write(lines.slice(0, 1000))
      writer.stream.write(lines.slice(1000))
      await writer.done()
      const raw = await readFile(path)
      assert.equal(name.endsWith('.gz') ? gunzipSync(raw).toString() : raw.toString(), lines)
      const reader = await openReader(path)
      assert.equal(reader.bytes, raw.length)
      assert.equal(await text(reader.stream as Readable), lines)
      assert.equal(reader.bytesRead(), raw.length)
    }
  })

  it('replaces an existing file only at done(), and leaves no temporary file', async () => {
    const path = join(dir, 'replace.jsonl')
    await writeFile(path, 'old\n')
    const writer = await openWriter(path)
    writer.stream.write('new\n')
    assert.equal(await readFile(path, 'utf8'), 'old\n')
    await writer.done()
    assert.equal(await readFile(path, 'utf8'), 'new\n')
    assert.deepEqual((await readdir(dir)).filter(n => n.includes('replace')), ['replace.jsonl'])
  })

  it('a writer that never reaches done() leaves nothing under the final name; abort() removes its temporary file', async () => {
    const path = join(dir, 'never.jsonl.gz')
    const writer = await openWriter(path)
    writer.stream.write('x'.repeat(100_000))
    await new Promise(resolve => setTimeout(resolve, 20))
    assert.deepEqual((await readdir(dir)).filter(n => n.startsWith('never')), [])
    assert.equal((await readdir(dir)).filter(n => n.startsWith('.never.jsonl.gz.')).length, 1)
    await writer.abort()
    assert.deepEqual((await readdir(dir)).filter(n => n.includes('never')), [])
    await assert.rejects(writer.done(), /never\.jsonl\.gz: aborted/)
  })

  it('a process killed while writing leaves nothing under the final name', async () => {
    const path = join(dir, 'killed.jsonl')
    const lib = fileURLToPath(new URL('./location.js', import.meta.url))
    const script = `
      const { openWriter } = await import(${JSON.stringify(lib)})
      const w = await openWriter(${JSON.stringify(path)})
      w.stream.write('half of an export\\n', () => process.stdout.write('written\\n'))
      setInterval(() => {}, 1000)`
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] })
    await new Promise<void>(resolve => child.stdout.on('data', () => resolve()))
    child.kill('SIGKILL')
    await new Promise(resolve => child.once('exit', resolve))
    const names = await readdir(dir)
    assert.ok(!names.includes('killed.jsonl'))
    assert.equal(names.filter(n => n.startsWith('.killed.jsonl.')).length, 1, 'the temporary file is all that remains')
  })

  it('an exclusive placement never replaces an existing file', async () => {
    const path = join(dir, 'taken.jsonl')
    await writeFile(path, 'first\n')
    const file = await createAtomicFile(path, 'exclusive')
    file.stream.end('second\n')
    await assert.rejects(file.commit(), /EEXIST/)
    assert.equal(await readFile(path, 'utf8'), 'first\n')
    assert.deepEqual((await readdir(dir)).filter(n => n.includes('taken')), ['taken.jsonl'])
  })

  it('names the location when a file is missing or its directory is', async () => {
    await assert.rejects(openReader(join(dir, 'missing.jsonl')), (err: Error) => err.message.startsWith(`${join(dir, 'missing.jsonl')}: ENOENT`))
    const nowhere = join(dir, 'no', 'such', 'dir', 'x.jsonl')
    await assert.rejects(openWriter(nowhere), (err: Error) => err.message.startsWith(`${nowhere}: ENOENT`))
  })

  it('names the location when a .gz file is not gzip', async () => {
    const path = join(dir, 'fake.jsonl.gz')
    await writeFile(path, 'not gzip at all\n')
    const reader = await openReader(path)
    await assert.rejects(text(reader.stream as Readable), (err: Error) => err.message.startsWith(`${path}: incorrect header check`))
  })
})

describe('stdio', () => {
  it('writes to stdout without ending it and reads stdin, never gzip', async () => {
    const stdout = new PassThrough()
    const chunks: Buffer[] = []
    stdout.on('data', (c: Buffer) => chunks.push(c))
    const writer = await openWriter('-', { stdout })
    writer.stream.write('a\n')
    writer.stream.write('b\n')
    await writer.done()
    assert.equal(Buffer.concat(chunks).toString(), 'a\nb\n')
    assert.equal(stdout.writableEnded, false)
    const reader = await openReader('-', { stdin: Readable.from(['x\n', 'y\n']) })
    assert.equal(reader.bytes, undefined)
    assert.equal(await text(reader.stream as Readable), 'x\ny\n')
  })
})
