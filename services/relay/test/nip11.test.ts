// NIP-11 relay information document and the HTTP endpoints on the relay's port.
import assert from 'node:assert/strict'
import { connect } from 'node:net'
import { after, before, describe, it } from 'node:test'
import { startTestRelay, TestClient, type TestRelay } from './harness.js'

let relay: TestRelay
let http: string

before(async () => {
  relay = await startTestRelay({
    'information.name': 'Test Relay',
    'information.description': 'for tests',
    'limitation.max_message_length': 50_000,
    'limitation.max_subscriptions': 7,
    'limitation.max_filters': 3,
    'limitation.max_limit': 200,
    'limitation.default_limit': 100,
    'limitation.max_subid_length': 33,
    'limitation.max_event_tags': 150,
  })
  http = `http://127.0.0.1:${relay.port}`
})

after(async () => {
  await relay?.close()
})

const nip11 = (accept = 'application/nostr+json') => fetch(`${http}/`, { headers: { Accept: accept } })

describe('NIP-11 document', () => {
  it('is served on / with Accept: application/nostr+json', async () => {
    const res = await nip11()
    assert.equal(res.status, 200)
    assert.match(res.headers.get('content-type') ?? '', /^application\/nostr\+json/)
    const doc = (await res.json()) as Record<string, unknown>
    assert.equal(doc.name, 'Test Relay')
    assert.equal(doc.description, 'for tests')
    assert.equal(typeof doc.software, 'string')
    assert.equal(typeof doc.version, 'string')
  })

  it('lists the supported NIPs, including 1, 9, 11, 40 and 45', async () => {
    const doc = (await (await nip11()).json()) as { supported_nips: number[] }
    for (const nip of [1, 9, 11, 40, 45]) assert.ok(doc.supported_nips.includes(nip), `NIP-${nip} listed`)
    assert.ok(doc.supported_nips.every(n => Number.isInteger(n)))
    // Only what is implemented: no NIP-42 auth and no NIP-50 search on this relay.
    assert.ok(!doc.supported_nips.includes(42))
    assert.ok(!doc.supported_nips.includes(50))
  })

  it('reflects the configured limitation', async () => {
    const { limitation } = (await (await nip11()).json()) as { limitation: Record<string, unknown> }
    assert.equal(limitation.max_message_length, 50_000)
    assert.equal(limitation.max_subscriptions, 7)
    assert.equal(limitation.max_filters, 3)
    assert.equal(limitation.max_limit, 200)
    assert.equal(limitation.default_limit, 100)
    assert.equal(limitation.max_subid_length, 33)
    assert.equal(limitation.max_event_tags, 150)
    assert.equal(limitation.auth_required, false)
    assert.equal(limitation.restricted_writes, false)
    assert.equal(limitation.payment_required, false)
  })

  it('carries CORS headers', async () => {
    const res = await nip11()
    assert.equal(res.headers.get('access-control-allow-origin'), '*')
    assert.match(res.headers.get('access-control-allow-headers') ?? '', /accept/i)
    assert.match(res.headers.get('access-control-allow-methods') ?? '', /GET/)
  })

  it('is matched among several media types in Accept', async () => {
    const res = await nip11('text/html;q=0.9, application/nostr+json')
    assert.match(res.headers.get('content-type') ?? '', /^application\/nostr\+json/)
    await res.body?.cancel()
  })

  it('answers an OPTIONS preflight with CORS headers', async () => {
    const res = await fetch(`${http}/`, {
      method: 'OPTIONS',
      headers: { Origin: 'https://example.com', 'Access-Control-Request-Method': 'GET', 'Access-Control-Request-Headers': 'accept' },
    })
    assert.ok(res.status === 200 || res.status === 204, `status ${res.status}`)
    assert.equal(res.headers.get('access-control-allow-origin'), '*')
    assert.match(res.headers.get('access-control-allow-methods') ?? '', /GET/)
    assert.match(res.headers.get('access-control-allow-headers') ?? '', /accept/i)
  })

  it('a plain GET / is not the JSON document', async () => {
    const res = await fetch(`${http}/`)
    assert.equal(res.status, 200)
    assert.doesNotMatch(res.headers.get('content-type') ?? '', /nostr\+json/)
    const body = await res.text()
    assert.throws(() => JSON.parse(body) as unknown)
  })

  it('omits NIP-45 when COUNT is disabled', async () => {
    const other = await startTestRelay({ 'count.enabled': false })
    try {
      const res = await fetch(`http://127.0.0.1:${other.port}/`, { headers: { Accept: 'application/nostr+json' } })
      const doc = (await res.json()) as { supported_nips: number[] }
      assert.ok(!doc.supported_nips.includes(45))
      assert.ok(doc.supported_nips.includes(1))
    } finally {
      await other.close()
    }
  })
})

describe('health endpoints', () => {
  it('/healthz answers 200', async () => {
    const res = await fetch(`${http}/healthz`)
    assert.equal(res.status, 200)
    await res.body?.cancel()
  })

  it('/readyz answers 200 while serving', async () => {
    const res = await fetch(`${http}/readyz`)
    assert.equal(res.status, 200)
    await res.body?.cancel()
  })

  it('an unknown path is 404', async () => {
    const res = await fetch(`${http}/no-such-page`)
    assert.equal(res.status, 404)
    await res.body?.cancel()
  })

  it('reads the absolute form of a request target (RFC 9112, as a proxy may send it), and only that form as a URL', async () => {
    /** The status line and body of a raw request for `target`. */
    const raw = (target: string, accept = 'application/nostr+json') =>
      new Promise<{ status: string; body: string }>((resolve, reject) => {
        const socket = connect(relay.port, '127.0.0.1')
        let text = ''
        socket.setEncoding('utf8')
        socket.on('data', chunk => (text += chunk))
        socket.on('error', reject)
        socket.on('close', () => resolve({ status: text.split('\r\n')[0] ?? '', body: text.slice(text.indexOf('\r\n\r\n') + 4) }))
        socket.end(`GET ${target} HTTP/1.1\r\nHost: 127.0.0.1:${relay.port}\r\nAccept: ${accept}\r\nConnection: close\r\n\r\n`)
      })
    const absolute = await raw(`http://127.0.0.1:${relay.port}/`)
    assert.match(absolute.status, /^HTTP\/1\.1 200/)
    assert.equal((JSON.parse(absolute.body) as { name: string }).name, 'Test Relay')
    assert.match((await raw(`http://127.0.0.1:${relay.port}/readyz?x=1`, 'text/plain')).status, /^HTTP\/1\.1 200/)
    assert.match((await raw('//readyz', 'text/plain')).status, /^HTTP\/1\.1 404/, 'a path starting with // is not a host')
  })

  it('the WebSocket endpoint shares the port', async () => {
    const client = await TestClient.connect(relay.url)
    assert.deepEqual(await client.req('s', { kinds: [1], limit: 1 }), [])
    await client.close()
  })
})
