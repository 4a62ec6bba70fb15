/**
 * What a start costs in modules: the npm packages a fresh Node process loads when it imports some modules.
 * Tests use it to keep heavy packages (the Google clients, gRPC) out of graphs that do not need them.
 */
import { execFileSync } from 'node:child_process'

/**
 * The node_modules packages (`name` or `@scope/name`) that a fresh process has in `require`'s cache after
 * importing `urls` (file URLs) in order. Every CommonJS package counts, and every package an ES module loads
 * that has CommonJS dependencies; an import that throws (a worker module outside its worker, say) still
 * counts what it loaded before.
 */
export const packagesLoaded = (urls: readonly string[]): string[] => {
  const script = `
    import { createRequire } from 'node:module'
    const require = createRequire(import.meta.url)
    for (const url of ${JSON.stringify(urls)}) await import(url).catch(() => {})
    const names = new Set()
    for (const file of Object.keys(require.cache)) {
      const at = file.lastIndexOf('node_modules/')
      if (at < 0) continue
      const rest = file.slice(at + 'node_modules/'.length).split('/')
      names.add(rest[0].startsWith('@') ? rest[0] + '/' + rest[1] : rest[0])
    }
    process.stdout.write(JSON.stringify([...names]))
  `
  return JSON.parse(execFileSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' })) as string[]
}

/** The Google Cloud client libraries and the transports they bring. */
export const GOOGLE_CLIENT_PACKAGES = ['@google-cloud/', 'google-gax', '@grpc/', 'google-auth-library', 'gaxios'] as const

/** Those of `loaded` whose name starts with one of `prefixes`. */
export const packagesAmong = (loaded: readonly string[], prefixes: readonly string[]): string[] => loaded.filter(name => prefixes.some(prefix => name.startsWith(prefix)))
