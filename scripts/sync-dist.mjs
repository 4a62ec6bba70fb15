// Runs before `tsc -b` (npm run build): keeps every workspace's dist/ true to its TypeScript sources.
// - An output whose source is gone (a file moved or deleted) is removed: `node --test dist` would still
//   run a deleted test, and a stale module could still be imported.
// - A source whose output is missing (dist/ edited by hand) makes tsc -b skip it, because the project's
//   .tsbuildinfo says it is up to date: that build info is removed, so the project is built again.
import { existsSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs'
import { join, relative } from 'node:path'

// The repository (or, for its test, the directory given as the first argument).
const root = process.argv[2] ?? new URL('..', import.meta.url).pathname
const OUTPUT = /\.(d\.ts|js)(\.map)?$/

const walk = function* (dir) {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name)
    if (entry.isDirectory()) yield* walk(path)
    else yield path
  }
}

let removed = 0
let rebuilt = 0
for (const group of ['libs', 'services', 'tests']) {
  if (!existsSync(join(root, group))) continue
  for (const name of readdirSync(join(root, group))) {
    const project = join(root, group, name)
    const dist = join(project, 'dist')
    if (!existsSync(join(project, 'tsconfig.json')) || !existsSync(dist)) continue
    for (const file of walk(dist)) {
      const rel = relative(dist, file)
      if (!OUTPUT.test(rel)) continue
      if (existsSync(join(project, rel.replace(OUTPUT, '.ts')))) continue
      rmSync(file)
      removed++
    }
    const info = join(dist, '.tsbuildinfo')
    if (!existsSync(info)) continue
    const built = statSync(info).mtimeMs
    const include = JSON.parse(readFileSync(join(project, 'tsconfig.json'), 'utf8')).include ?? []
    const sources = include.filter(dir => existsSync(join(project, dir))).flatMap(dir => [...walk(join(project, dir))])
    // Only sources the last build saw: one added since is new to tsc -b, which emits it anyway.
    const emitted = src => src.endsWith('.ts') && !src.endsWith('.d.ts') && statSync(src).mtimeMs <= built
    if (sources.some(src => emitted(src) && !existsSync(join(dist, relative(project, src).replace(/\.ts$/, '.js'))))) {
      rmSync(info)
      rebuilt++
    }
  }
}
if (removed > 0 || rebuilt > 0) console.log(`sync-dist: removed ${removed} output(s) of deleted sources; ${rebuilt} project(s) to rebuild for missing outputs`)
