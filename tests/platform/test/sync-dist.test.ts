// scripts/sync-dist.mjs (run by `npm run build` before tsc -b) on a throwaway workspace layout.
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdir, utimes, writeFile } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { promisify } from 'node:util'
import { after, before, describe, it } from 'node:test'
import { removeDir, ROOT, tempDir } from './platform.js'

const run = promisify(execFile)
const SCRIPT = join(ROOT, 'scripts/sync-dist.mjs')

const put = async (root: string, path: string, text = ''): Promise<void> => {
  await mkdir(dirname(join(root, path)), { recursive: true })
  await writeFile(join(root, path), text)
}

describe('scripts/sync-dist.mjs', () => {
  let root: string
  before(async () => {
    root = await tempDir()
  })
  after(async () => {
    await removeDir(root)
  })

  it('removes the outputs of deleted sources and keeps the rest', async () => {
    const lib = 'libs/kept'
    await put(root, `${lib}/tsconfig.json`, JSON.stringify({ include: ['src'] }))
    await put(root, `${lib}/src/a.ts`)
    for (const out of ['a.js', 'a.d.ts', 'a.js.map', 'gone.js', 'gone.d.ts', 'gone.js.map', 'gone.test.js']) await put(root, `${lib}/dist/src/${out}`)
    await put(root, `${lib}/dist/.tsbuildinfo`, '{}')
    const { stdout } = await run(process.execPath, [SCRIPT, root])
    assert.match(stdout, /removed 4 output\(s\) of deleted sources; 0 project\(s\) to rebuild/)
    for (const out of ['a.js', 'a.d.ts', 'a.js.map']) assert.ok(existsSync(join(root, lib, 'dist/src', out)), out)
    for (const out of ['gone.js', 'gone.d.ts', 'gone.js.map', 'gone.test.js']) assert.ok(!existsSync(join(root, lib, 'dist/src', out)), out)
    assert.ok(existsSync(join(root, lib, 'dist/.tsbuildinfo')), 'nothing to rebuild')
  })

  it('drops the build info of a project with a source whose output is missing, so tsc -b builds it again', async () => {
    const service = 'services/edited'
    await put(root, `${service}/tsconfig.json`, JSON.stringify({ include: ['src', 'test'] }))
    await put(root, `${service}/src/a.ts`)
    await put(root, `${service}/test/b.test.ts`)
    await put(root, `${service}/dist/src/a.js`)
    await put(root, `${service}/dist/.tsbuildinfo`, '{}')
    await utimes(join(root, service, 'test/b.test.ts'), new Date(Date.now() - 60_000), new Date(Date.now() - 60_000)) // older than the last build
    await put(root, `${service}/src/new.ts`) // added since the last build: tsc -b emits it anyway
    const { stdout } = await run(process.execPath, [SCRIPT, root])
    assert.match(stdout, /1 project\(s\) to rebuild/)
    assert.ok(!existsSync(join(root, service, 'dist/.tsbuildinfo')))
    assert.ok(existsSync(join(root, 'libs/kept/dist/.tsbuildinfo')), 'a complete project is left alone')
  })

  it('leaves the build info alone when the only source without output was added after the build', async () => {
    const lib = 'libs/growing'
    await put(root, `${lib}/tsconfig.json`, JSON.stringify({ include: ['src'] }))
    await put(root, `${lib}/src/a.ts`)
    await put(root, `${lib}/dist/src/a.js`)
    await put(root, `${lib}/dist/.tsbuildinfo`, '{}')
    const past = new Date(Date.now() - 60_000)
    await utimes(join(root, lib, 'src/a.ts'), past, past)
    await put(root, `${lib}/src/added.ts`)
    await utimes(join(root, lib, 'dist/.tsbuildinfo'), new Date(Date.now() - 30_000), new Date(Date.now() - 30_000))
    await run(process.execPath, [SCRIPT, root])
    assert.ok(existsSync(join(root, lib, 'dist/.tsbuildinfo')))
  })
})
