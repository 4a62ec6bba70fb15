import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { GOOGLE_CLIENT_PACKAGES, packagesAmong, packagesLoaded } from '@msr/bench'

// The writer thread and every query worker load these modules on each start of the relay. The Google
// clients (Pub/Sub, Cloud Storage, with gRPC and their protos), pino and prom-client are the main thread's
// business: loaded in each worker they cost about half a second of CPU apiece at every start.
const WORKER_GRAPHS = {
  'writer thread': ['../pipeline/write-worker.js'],
  'query worker': ['../subscriptions/query-worker.js'],
} as const

const HEAVY = [...GOOGLE_CLIENT_PACKAGES, 'pino', 'prom-client', '@opentelemetry/sdk-']

/** The packages a fresh process loads for `modules`, resolved from this file. */
const loadedBy = (modules: readonly string[]): string[] => packagesLoaded(modules.map(m => new URL(m, import.meta.url).href))

describe('what the relay\'s worker threads load', () => {
  for (const [worker, modules] of Object.entries(WORKER_GRAPHS)) {
    // The worker modules read workerData at the top level; outside a worker it is null, so only their
    // imports are evaluated, then their start fails on it. What was loaded by then is what a worker loads.
    it(`the ${worker} loads LMDB but no Google client, logger or metrics registry`, () => {
      const loaded = loadedBy(modules)
      assert.ok(loaded.includes('lmdb'), `the probe saw the worker's own imports: ${loaded.join(', ')}`)
      const heavy = packagesAmong(loaded, HEAVY)
      assert.deepEqual(heavy, [], `loaded by the ${worker}: ${heavy.join(', ')}`)
    })
  }
})

// The main thread loads the Pub/Sub client (hints on the `pubsub` transport, replication) and the Cloud
// Storage client (exports, imports and snapshots at gs://) when a part configured to use them is made:
// at every start otherwise they cost it about 0.7 s of CPU (Cloud Run's cold start, the tests' relays).
describe('what the relay\'s main thread loads before its configuration asks for a Google client', () => {
  it('the relay\'s modules and the export/import command load no Google client', () => {
    const loaded = loadedBy(['../main.js', '../backup/transfer-cli.js'])
    assert.ok(loaded.includes('lmdb') && loaded.includes('ws'), `the probe saw the relay's own imports: ${loaded.join(', ')}`)
    const google = packagesAmong(loaded, GOOGLE_CLIENT_PACKAGES)
    assert.deepEqual(google, [], `loaded by the main thread's modules: ${google.join(', ')}`)
  })
})
