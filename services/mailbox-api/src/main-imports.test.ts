import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { GOOGLE_CLIENT_PACKAGES, packagesAmong, packagesLoaded } from '@msr/bench'

// The Pub/Sub client (gRPC and its protos) is loaded when the pull consumer is made (HINTS_SUBSCRIPTION),
// the Cloud Storage client when an export or import names gs://: at every start otherwise they cost the API
// about 0.3 s of CPU. google-auth-library is the API's own (it checks Pub/Sub push tokens), so not counted.
const NOT_AT_START = GOOGLE_CLIENT_PACKAGES.filter(prefix => prefix !== 'google-auth-library' && prefix !== 'gaxios')

describe('what the mailbox API loads before its configuration asks for a Google client', () => {
  it('the API and its export/import load neither the Pub/Sub nor the Cloud Storage client', () => {
    const loaded = packagesLoaded(['./main.js', './transfer/export.js', './transfer/import.js'].map(m => new URL(m, import.meta.url).href))
    assert.ok(loaded.includes('express') && loaded.includes('pg'), `the probe saw the API's own imports: ${loaded.join(', ')}`)
    const google = packagesAmong(loaded, NOT_AT_START)
    assert.deepEqual(google, [], `loaded by the mailbox API's modules: ${google.join(', ')}`)
  })
})
