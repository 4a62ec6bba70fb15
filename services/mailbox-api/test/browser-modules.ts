// The ES modules a browser page needs to import a package as an application would, without a bundler:
// every file reachable by static imports from an entry, and an import map for the bare specifiers,
// resolved as Node does (node_modules up the tree, then the package's exports). A Node builtin, or a
// package that is not installed, anywhere in the graph is an error: a browser could not load it either.
import { existsSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { isBuiltin } from 'node:module'
import { dirname, join, relative, resolve, sep } from 'node:path'

/** The modules of a page: URL path → file, and the import map naming the bare specifiers' URLs. */
export interface BrowserModules {
  files: Map<string, string>
  importMap: { imports: Record<string, string> }
}

/** Static imports and re-exports in compiled code, where each statement starts a line (comments do not). */
const IMPORT = /^\s*(?:import|export)\s[^'";]*?from\s*['"]([^'"]+)['"]|^\s*import\s*['"]([^'"]+)['"]/gm

type Exports = string | null | { [key: string]: Exports }

/** A package's target for conditions a browser module meets: browser, import, default. */
const conditional = (entry: Exports | undefined): string | undefined => {
  if (typeof entry === 'string') return entry
  if (entry === null || entry === undefined) return undefined
  return conditional(entry.browser ?? entry.import ?? entry.default)
}

/** The file in package `root` (with its package.json `pkg`) that `subpath` ('.' or './x') names. */
const packageTarget = (root: string, pkg: { exports?: Exports; module?: string; main?: string }, subpath: string): string | undefined => {
  const { exports } = pkg
  if (exports === undefined) return join(root, subpath === '.' ? (pkg.module ?? pkg.main ?? 'index.js') : subpath)
  const bySubpath = typeof exports === 'object' && exports !== null && Object.keys(exports).some(key => key.startsWith('.'))
  const target = conditional(bySubpath ? (exports as Record<string, Exports>)[subpath] : subpath === '.' ? exports : undefined)
  return target === undefined ? undefined : join(root, target)
}

/** The file a bare specifier names when `importer` imports it. */
const resolveBare = async (specifier: string, importer: string): Promise<string> => {
  const parts = specifier.split('/')
  const name = parts.slice(0, specifier.startsWith('@') ? 2 : 1).join('/')
  const subpath = ['.', ...parts.slice(name.split('/').length)].join('/')
  for (let dir = dirname(importer); ; dir = dirname(dir)) {
    const root = join(dir, 'node_modules', name)
    if (existsSync(join(root, 'package.json'))) {
      const target = packageTarget(root, JSON.parse(await readFile(join(root, 'package.json'), 'utf8')), subpath)
      if (target === undefined) throw new Error(`${importer} imports ${specifier}, which ${name} does not export`)
      return target
    }
    if (dir === dirname(dir)) throw new Error(`${importer} imports ${specifier}, which is not installed`)
  }
}

/** Every module reachable from `entry` (a file under `root`, as are all the modules it reaches), served from `root` as /. */
export const browserModules = async (root: string, entry: string, entrySpecifier: string): Promise<BrowserModules> => {
  const urlOf = (file: string): string => {
    const path = relative(root, file)
    if (path.startsWith('..')) throw new Error(`${file} is outside ${root}`)
    return `/${path.split(sep).join('/')}`
  }
  const files = new Map<string, string>()
  const imports: Record<string, string> = { [entrySpecifier]: urlOf(entry) }
  const pending = [resolve(entry)]
  for (let file = pending.pop(); file !== undefined; file = pending.pop()) {
    if (files.has(urlOf(file))) continue
    files.set(urlOf(file), file)
    for (const match of (await readFile(file, 'utf8')).matchAll(IMPORT)) {
      const specifier = (match[1] ?? match[2]) as string
      if (isBuiltin(specifier)) throw new Error(`${file} imports ${specifier}, which no browser has`)
      if (specifier.startsWith('.')) {
        pending.push(resolve(dirname(file), specifier))
        continue
      }
      const target = await resolveBare(specifier, file)
      if (imports[specifier] !== undefined && imports[specifier] !== urlOf(target))
        throw new Error(`${specifier} resolves to two files (${imports[specifier]}, ${urlOf(target)}): the import map would need scopes`)
      imports[specifier] = urlOf(target)
      pending.push(target)
    }
  }
  return { files, importMap: { imports } }
}
