// PostgreSQL stopped (fast shutdown) and started again under load: the compiled `serve` answers 503 with
// Retry-After while it is down, never hangs, and serves 201s again without being restarted.
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { killApiChildren, listAll, send, startApi, stoppablePostgres, type Answer, type StoppablePostgres } from './api-child.js'
import { b64, newSigner, sleep } from './harness.js'

const WORKERS = 4
const DOWN_MS = Number(process.env.SOAK_OUTAGE_MS ?? 2500)

/** One deposit's answer, with when it was sent and answered (performance.now()). */
interface Sent extends Answer {
  sentAt: number
  answeredAt: number
  id?: string
}

let pg: StoppablePostgres

before(async () => {
  pg = await stoppablePostgres()
})

after(async () => {
  killApiChildren()
  await pg?.close()
})

const code = (res: Answer): string | undefined => (res.body?.error as { code?: string } | undefined)?.code

describe('PostgreSQL stopped and started again under load', () => {
  it('answers 503 UNAVAILABLE with Retry-After while it is down (500 only for deposits cut in flight), then 201 again from the same process', async t => {
    const api = await startApi(pg.url)
    const recipient = newSigner()
    const sender = newSigner()
    const sent: Sent[] = []
    let done = false
    const workers = Array.from({ length: WORKERS }, async () => {
      while (!done) {
        const sentAt = performance.now()
        const res = await send(api, sender, 'POST', '/keypackages', { recipient: recipient.pubkey, content_b64: b64(300) })
        sent.push({ ...res, sentAt, answeredAt: performance.now(), ...(res.status === 201 && { id: String(res.body?.id) }) })
        // Refusals come back at once; a short pause keeps the loop from spinning.
        if (res.status !== 201) await sleep(10)
      }
    })
    await sleep(700)
    const stopping = performance.now()
    await pg.stop()
    const down = performance.now()
    await sleep(DOWN_MS)
    const starting = performance.now()
    await pg.start()
    const up = performance.now()
    const recovered = await firstAfter(sent, up, 15_000)
    await sleep(1000)
    done = true
    await Promise.all(workers)

    assert.equal(api.child.exitCode, null, 'the API process is still the one started before the outage')
    const unanswered = sent.filter(s => s.status === 0)
    assert.deepEqual(unanswered.map(s => `${s.failure} after ${Math.round(s.ms)} ms`), [], 'every request is answered (no hang, no cut connection)')
    const whileDown = sent.filter(s => s.sentAt > down && s.answeredAt < starting)
    assert.ok(whileDown.length > 10, `requests sent while PostgreSQL was down: ${whileDown.length}`)
    for (const s of whileDown) {
      assert.equal(s.status, 503, `sent while PostgreSQL was down: ${s.status} ${JSON.stringify(s.body)}`)
      assert.equal(code(s), 'UNAVAILABLE')
      assert.equal(s.retryAfter, '2')
    }
    // A deposit statement cut by the shutdown stays a 500 (its commit may have happened: README, Errors);
    // only requests in flight while PostgreSQL was shutting down may get one, and never from the NIP-98 gate.
    const serverErrors = sent.filter(s => s.status >= 500 && s.status !== 503)
    const outsideShutdown = serverErrors.filter(s => s.answeredAt < stopping || s.sentAt > down)
    assert.deepEqual(outsideShutdown.map(s => `${s.status} ${code(s)} sent ${Math.round(s.sentAt - stopping)} ms after the stop began`), [], 'no 500 but for requests in flight at the shutdown')
    assert.deepEqual(api.logs.filter(line => line.includes('runGate')), [], 'a gate statement cut by the shutdown is a 503')
    assert.ok(recovered, 'a deposit answered 201 within 15 s of PostgreSQL being back')
    const settled = sent.filter(s => s.sentAt > recovered.answeredAt)
    assert.ok(settled.length > 0 && settled.every(s => s.status === 201), `after the first 201: ${[...new Set(settled.map(s => s.status))].join(', ')}`)
    const stored = await listAll(api, recipient, 'keypackages')
    const created = sent.filter(s => s.status === 201)
    assert.deepEqual(created.filter(s => !stored.has(s.id as string)).map(s => s.id), [], 'every 201 is stored')

    const warnings = api.logs.filter(line => line.includes('database unreachable')).length
    const errors = api.logs.filter(line => line.includes('"ERROR"'))
    const stopped = await api.kill('SIGTERM')
    assert.deepEqual(stopped, { code: 0, signal: null }, api.logs.join('\n'))
    t.diagnostic(
      `${sent.length} deposits: ${created.length} 201, ${sent.filter(s => s.status === 503).length} 503 (${whileDown.length} sent while down), ` +
        `${serverErrors.length} 500 (in flight at the shutdown); ` +
        `fast stop took ${Math.round(down - stopping)} ms, start ${Math.round(up - starting)} ms, first 201 ${Math.round(recovered.answeredAt - up)} ms after the start returned; ` +
        `longest answer ${Math.round(Math.max(...sent.map(s => s.ms)))} ms; ${warnings} 'database unreachable' warnings, ${errors.length} error lines`,
    )
  })
})

/** The first 201 answered after `since`, waiting up to `ms` for one. */
const firstAfter = async (sent: Sent[], since: number, ms: number): Promise<Sent | undefined> => {
  const deadline = performance.now() + ms
  for (;;) {
    const found = sent.find(s => s.status === 201 && s.sentAt > since)
    if (found || performance.now() > deadline) return found
    await sleep(20)
  }
}
