import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import express from 'express'
import request from 'supertest'
import { loadMailboxConfig } from './config.js'
import { crossOrigin, originProblem } from './cors.js'

const APP = 'https://app.example.com'

/** An app with CORS on /api and a route that says it was reached. */
const appWith = (origins: string[]) => {
  const app = express()
  app.use('/api', crossOrigin({ origins, except: path => path === '/admin' }))
  app.all('/api/{*rest}', (_req, res) => void res.set('Retry-After', '3').json({ reached: true }))
  return app
}

const corsHeaders = (headers: Record<string, string>): string[] => Object.keys(headers).filter(name => name.startsWith('access-control-'))

const preflight = (app: express.Express, path: string, origin: string) =>
  request(app).options(path).set('Origin', origin).set('Access-Control-Request-Method', 'POST').set('Access-Control-Request-Headers', 'authorization,content-type')

describe('originProblem', () => {
  it('accepts origins as browsers send them', () => {
    for (const origin of [APP, 'http://127.0.0.1:5173', 'http://[::1]:8080', 'tauri://localhost', 'https://xn--bcher-kva.example'])
      assert.equal(originProblem(origin), undefined, origin)
  })

  it('refuses what is not scheme://host[:port], saying what to write when there is an origin in it', () => {
    assert.match(originProblem('https://app.example.com/') ?? '', /is not an origin \(scheme:\/\/host\[:port\], no path\): write https:\/\/app\.example\.com$/)
    assert.match(originProblem('https://app.example.com/app') ?? '', /no path\): write https:\/\/app\.example\.com$/)
    assert.match(originProblem('https://user@app.example.com') ?? '', /is not an origin/)
    for (const value of ['null', 'app.example.com', 'file:///index.html', 'https://'])
      assert.match(originProblem(value) ?? '', /is not an origin .*expected one like https:\/\/app\.example\.com$/, value)
  })

  it('refuses an origin browsers would write otherwise (never matched as a string)', () => {
    assert.equal(originProblem('https://App.Example.com'), '"https://App.Example.com" is not written as browsers send it: write https://app.example.com')
    assert.equal(originProblem('https://app.example.com:443'), '"https://app.example.com:443" is not written as browsers send it: write https://app.example.com')
    assert.match(originProblem('https://bücher.example') ?? '', /write https:\/\/xn--bcher-kva\.example$/)
  })
})

describe('CORS_ORIGINS', () => {
  it('is empty by default: no cross-origin access', () => {
    const loaded = loadMailboxConfig({})
    assert.ok(loaded.ok)
    assert.deepEqual(loaded.value.corsOrigins, [])
  })

  it('is split at commas, blanks ignored; * stands alone', () => {
    const loaded = loadMailboxConfig({ CORS_ORIGINS: ` ${APP}, ,http://127.0.0.1:5173 ` })
    assert.ok(loaded.ok)
    assert.deepEqual(loaded.value.corsOrigins, [APP, 'http://127.0.0.1:5173'])
    const any = loadMailboxConfig({ CORS_ORIGINS: '*' })
    assert.ok(any.ok)
    assert.deepEqual(any.value.corsOrigins, ['*'])
  })

  it('lists every bad entry at once', () => {
    const loaded = loadMailboxConfig({ CORS_ORIGINS: `${APP}/,null,${APP},HTTPS://Other.example,*` })
    assert.equal(loaded.ok, false)
    if (loaded.ok) return
    assert.deepEqual(loaded.errors, [
      'CORS_ORIGINS: * allows every origin; give it alone',
      `CORS_ORIGINS: "${APP}/" is not an origin (scheme://host[:port], no path): write ${APP}`,
      'CORS_ORIGINS: "null" is not an origin (scheme://host[:port], no path): expected one like https://app.example.com',
      'CORS_ORIGINS: "HTTPS://Other.example" is not written as browsers send it: write https://other.example',
    ])
  })
})

describe('crossOrigin with an origin list', () => {
  const app = appWith([APP, 'http://127.0.0.1:5173'])

  it('lets a listed origin read the answer and Retry-After, never with credentials', async () => {
    const res = await request(app).get('/api/items').set('Origin', APP).expect(200)
    assert.equal(res.headers['access-control-allow-origin'], APP)
    assert.equal(res.headers['access-control-expose-headers'], 'Retry-After')
    assert.equal(res.headers['access-control-allow-credentials'], undefined)
    assert.equal(res.headers.vary, 'Origin')
  })

  it('answers a listed origin’s preflight itself: 204 with methods, headers and max age', async () => {
    const res = await preflight(app, '/api/items', APP).expect(204)
    assert.equal(res.headers['access-control-allow-origin'], APP)
    assert.equal(res.headers['access-control-allow-methods'], 'GET, POST')
    assert.equal(res.headers['access-control-allow-headers'], 'Authorization, Content-Type')
    assert.equal(res.headers['access-control-max-age'], '7200')
    assert.equal(res.headers['access-control-allow-credentials'], undefined)
    assert.equal(res.headers.vary, 'Origin')
    assert.equal(res.text, '')
  })

  it('gives an unlisted origin no CORS header at all, its preflight a bare 204 that reaches no route', async () => {
    for (const origin of ['https://evil.example', 'https://app.example.com.evil.example', 'http://app.example.com', 'null']) {
      const get = await request(app).get('/api/items').set('Origin', origin).expect(200)
      assert.deepEqual(corsHeaders(get.headers), [], origin)
      assert.equal(get.headers.vary, 'Origin')
      const pre = await preflight(app, '/api/items', origin).expect(204)
      assert.deepEqual(corsHeaders(pre.headers), [], origin)
      assert.equal(pre.text, '')
    }
  })

  it('adds nothing but Vary to a request without Origin (same origin, or not a browser)', async () => {
    const res = await request(app).get('/api/items').expect(200)
    assert.deepEqual(corsHeaders(res.headers), [])
    assert.equal(res.headers.vary, 'Origin')
  })

  it('gives the excluded paths no CORS header, even to a listed origin', async () => {
    const post = await request(app).post('/api/admin').set('Origin', APP).expect(200)
    assert.deepEqual(corsHeaders(post.headers), [])
    const pre = await preflight(app, '/api/admin', APP).expect(204)
    assert.deepEqual(corsHeaders(pre.headers), [])
  })

  it('passes an OPTIONS request that is not a preflight on to the routes', async () => {
    const res = await request(app).options('/api/items').set('Origin', APP).expect(200)
    assert.deepEqual(res.body, { reached: true })
  })
})

describe('crossOrigin with *', () => {
  const app = appWith(['*'])

  it('allows any origin with a literal * (which browsers never combine with credentials)', async () => {
    const res = await request(app).get('/api/items').set('Origin', 'https://anyone.example').expect(200)
    assert.equal(res.headers['access-control-allow-origin'], '*')
    const pre = await preflight(app, '/api/items', 'https://anyone.example').expect(204)
    assert.equal(pre.headers['access-control-allow-origin'], '*')
    assert.equal(pre.headers['access-control-allow-methods'], 'GET, POST')
  })

  it('still refuses the excluded paths', async () => {
    const pre = await preflight(app, '/api/admin', 'https://anyone.example').expect(204)
    assert.deepEqual(corsHeaders(pre.headers), [])
  })
})

describe('crossOrigin with no origins (the default)', () => {
  const app = appWith([])

  it('sends no CORS header and no Vary; a preflight is still a bare 204, not a call to a route', async () => {
    const get = await request(app).get('/api/items').set('Origin', APP).expect(200)
    assert.deepEqual(corsHeaders(get.headers), [])
    assert.equal(get.headers.vary, undefined)
    const pre = await preflight(app, '/api/items', APP).expect(204)
    assert.deepEqual(corsHeaders(pre.headers), [])
  })
})
