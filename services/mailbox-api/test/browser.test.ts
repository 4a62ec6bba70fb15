// @msr/mailbox-client in a real browser: Debian's chromium, driven by playwright-core, opens a page served
// by a second local server. The page imports the client's compiled ESM (no bundler), makes a key, deposits a
// KeyPackage for itself and lists it through the API on another origin, which CORS_ORIGINS names. The same
// page from an origin not named is refused by the browser after the preflight, and nothing is stored.
import assert from 'node:assert/strict'
import { existsSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { createServer, type RequestListener, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { fileURLToPath } from 'node:url'
import { chromium, type Browser } from 'playwright-core'
import { browserModules, type BrowserModules } from './browser-modules.js'
import { buildTestApp, startPostgres, type TestPostgres } from './harness.js'

const CHROMIUM = '/usr/bin/chromium'
/** Each test skips, saying why, on a machine without Debian's chromium (a test tool's own browser download cannot work here). */
const NO_BROWSER = existsSync(CHROMIUM) ? false : `no browser at ${CHROMIUM}: install Debian's chromium (apt-get install chromium) to run this test`

const REPO = fileURLToPath(new URL('../../../../', import.meta.url))
const CLIENT = join(REPO, 'libs/mailbox-client/dist/src/index.js')
const CONTENT = 'a KeyPackage made in the browser'

/** What the page reports: the key's pubkey, then the deposit and the listing, or the client's error. */
interface PageResult {
  pubkey: string
  id?: string
  items?: Array<{ id: string; sender: string; content: string }>
  error?: { name: string; reason?: string; message: string }
}

/** The page's module, as an application on the allowed origin would write it. */
const PAGE_SCRIPT = `import { createMailboxClient } from '@msr/mailbox-client'

window.depositAndList = async baseUrl => {
  const secretKey = crypto.getRandomValues(new Uint8Array(32))
  // The browser's own fetch (the client calls it unbound, as a browser requires).
  const client = createMailboxClient({ baseUrl, signer: secretKey, retries: 0 })
  const pubkey = await client.pubkey()
  try {
    const { id } = await client.keyPackages.deposit({ recipient: pubkey, content: new TextEncoder().encode(${JSON.stringify(CONTENT)}) })
    const { items } = await client.keyPackages.list()
    return { pubkey, id, items: items.map(item => ({ id: item.id, sender: item.sender, content: new TextDecoder().decode(item.content) })) }
  } catch (error) {
    return { pubkey, error: { name: error.name, reason: error.reason, message: error.message } }
  }
}
`

const pageHtml = (modules: BrowserModules): string => `<!doctype html>
<meta charset="utf-8"><title>mailbox client</title><link rel="icon" href="data:,">
<script type="importmap">${JSON.stringify(modules.importMap)}</script>
<script type="module" src="/page.js"></script>
`

/** The page, its module and the client's module graph; nothing else. */
const servePage =
  (modules: BrowserModules): RequestListener =>
  (req, res) => {
    const path = new URL(req.url ?? '/', 'http://page').pathname
    const javascript = { 'content-type': 'text/javascript; charset=utf-8' }
    if (path === '/') return void res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(pageHtml(modules))
    if (path === '/page.js') return void res.writeHead(200, javascript).end(PAGE_SCRIPT)
    const file = modules.files.get(path)
    if (file === undefined) return void res.writeHead(404).end()
    readFile(file).then(
      body => res.writeHead(200, javascript).end(body),
      () => res.writeHead(500).end(),
    )
  }

/** One request the API received, as the test sees it from outside. */
interface Exchange {
  origin: string | undefined
  call: string
  corp: unknown
}

const listen = async (handler: RequestListener): Promise<{ server: Server; origin: string }> => {
  const server = createServer(handler)
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  return { server, origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}` }
}

describe('the typed client in chromium, across origins', () => {
  const servers: Server[] = []
  const exchanges: Exchange[] = []
  let pg: TestPostgres
  let browser: Browser
  let apiUrl: string
  let allowed: string
  let other: string

  before(async () => {
    if (NO_BROWSER) return
    const modules = await browserModules(REPO, CLIENT, '@msr/mailbox-client')
    pg = await startPostgres()
    let app: RequestListener = (_req, res) => void res.writeHead(503).end()
    const api = await listen((req, res) => {
      const call = `${req.method} ${(req.url ?? '').split('?')[0]}`
      res.on('finish', () => exchanges.push({ origin: req.headers.origin, call: `${call} ${res.statusCode}`, corp: res.getHeader('cross-origin-resource-policy') }))
      app(req, res)
    })
    const [page, otherPage] = [await listen(servePage(modules)), await listen(servePage(modules))]
    servers.push(api.server, page.server, otherPage.server)
    ;[apiUrl, allowed, other] = [api.origin, page.origin, otherPage.origin]
    app = (await buildTestApp(pg.pool, { PUBLIC_URL: apiUrl, CORS_ORIGINS: allowed })).app
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] })
  })

  after(async () => {
    await browser?.close()
    for (const server of servers) server.closeAllConnections()
    await Promise.all(servers.map(server => new Promise(resolve => server.close(resolve))))
    await pg?.close()
  })

  /** Opens the page on `origin`, runs its deposit and listing: what it reported and logged, and what the API received meanwhile. */
  const runPage = async (origin: string): Promise<{ result: PageResult; logged: string[]; calls: Exchange[] }> => {
    const page = await browser.newPage()
    const logged: string[] = []
    const start = exchanges.length
    page.on('console', message => void logged.push(`${message.type()}: ${message.text()}`))
    page.on('pageerror', error => void logged.push(`page error: ${error.message}`))
    try {
      await page.goto(`${origin}/`)
      const loaded = () => typeof (globalThis as { depositAndList?: unknown }).depositAndList === 'function'
      await page.waitForFunction(loaded, undefined, { timeout: 5000 }).catch((error: unknown) => {
        throw new Error(`the page did not load the client:\n${logged.join('\n')}`, { cause: error })
      })
      type Run = (base: string) => Promise<PageResult>
      const run = (base: string) => (globalThis as unknown as { depositAndList: Run }).depositAndList(base)
      return { result: await page.evaluate(run, apiUrl), logged, calls: exchanges.slice(start) }
    } finally {
      await page.close()
    }
  }

  const storedFor = async (pubkey: string): Promise<number> =>
    (await pg.pool.query<{ n: number }>('SELECT count(*)::int AS n FROM mail_keypackages WHERE recipient_pubkey = $1', [pubkey])).rows[0]?.n ?? -1

  it('deposits and lists a KeyPackage from the origin CORS_ORIGINS names', { skip: NO_BROWSER }, async () => {
    const { result, logged, calls: all } = await runPage(allowed)
    assert.equal(result.error, undefined, `the page failed: ${JSON.stringify(result.error)}\n${logged.join('\n')}`)
    assert.match(result.pubkey, /^[0-9a-f]{64}$/)
    assert.deepEqual(result.items, [{ id: result.id, sender: result.pubkey, content: CONTENT }])
    assert.equal(await storedFor(result.pubkey), 1)
    const calls = all.filter(e => !e.call.startsWith('OPTIONS'))
    assert.ok(all.every(e => e.origin === allowed))
    assert.deepEqual(calls.map(e => e.call), ['POST /api/v1/keypackages 201', 'GET /api/v1/keypackages 200'])
    // helmet's Cross-Origin-Resource-Policy stays same-origin: it governs no-cors loads, not CORS reads.
    assert.ok(calls.every(e => e.corp === 'same-origin'), JSON.stringify(calls))
  })

  it('is refused by the browser on another origin: a network error, only the preflight sent, nothing stored', { skip: NO_BROWSER }, async () => {
    const { result, logged, calls } = await runPage(other)
    assert.equal(result.items, undefined, 'the page read an answer it must not')
    assert.equal(result.error?.name, 'MailboxNetworkError', JSON.stringify(result.error))
    assert.equal(result.error?.reason, 'network')
    assert.ok(logged.some(line => /blocked by CORS policy/.test(line)), `no CORS refusal in the page's console:\n${logged.join('\n')}`)
    assert.deepEqual(calls.map(e => `${e.origin} ${e.call}`), [`${other} OPTIONS /api/v1/keypackages 204`])
    assert.equal(await storedFor(result.pubkey), 0)
  })
})
