import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { describe, it } from 'node:test'

// The writer thread and every query worker load these modules on each start of the relay. The Google
// clients (Pub/Sub, Cloud Storage, with gRPC and their protos), pino and prom-client are the main thread's
// business: loaded in each worker they cost about half a second of CPU apiece at every start.
const WORKER_GRAPHS = {
  'writer thread': ['../pipeline/write-worker.js'],
  'query worker': ['../subscriptions/query-worker.js'],
} as const

const HEAVY = ['@google-cloud/', 'google-gax', '@grpc/', 'google-auth-library', 'pino', 'prom-client', '@opentelemetry/sdk-']

/** The node_modules packages a fresh process loads for `modules` (resolved from this file), by name. */
const packagesLoaded = (modules: readonly string[]): string[] => {
  const urls = modules.map(m => new URL(m, import.meta.url).href)
  // The worker modules read workerData at the top level; outside a worker it is null, so only their
  // imports are evaluated, then their start fails on it. What was loaded by then is what a worker loads.
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

describe('what the relay\'s worker threads load', () => {
  for (const [worker, modules] of Object.entries(WORKER_GRAPHS)) {
    it(`the ${worker} loads LMDB but no Google client, logger or metrics registry`, () => {
      const loaded = packagesLoaded(modules)
      assert.ok(loaded.includes('lmdb'), `the probe saw the worker's own imports: ${loaded.join(', ')}`)
      const heavy = loaded.filter(name => HEAVY.some(prefix => name.startsWith(prefix)))
      assert.deepEqual(heavy, [], `loaded by the ${worker}: ${heavy.join(', ')}`)
    })
  }
})
