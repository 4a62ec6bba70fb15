// The mailbox API SIGKILLed under deposits and acks, cycle after cycle: every 201 is stored, nothing acked
// with a 200 reappears. The compiled `serve` runs as a child on a PostgreSQL this file owns (the embedded one
// of the harness, or DATABASE_URL's), so the database outlives each kill. SOAK_CYCLES sets the number of
// cycles (5 here; `npm run soak -w services/mailbox-api`: 200), SOAK_SEED the random choices.
import assert from 'node:assert/strict'
import { readFile, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { killApiChildren, listAll, send, startApi, type Answer, type ApiChild } from './api-child.js'
import { b64, freePort, newSigner, sleep, startPostgres, tempDir, type Signer, type TestPostgres } from './harness.js'

const CYCLES = Number(process.env.SOAK_CYCLES ?? 5)
const SEED = Number(process.env.SOAK_SEED ?? 1)
const WORKERS = 8
/** The kill comes this long after the load starts (uniformly between the bounds). */
const KILL_AFTER_MS = [150, 1200] as const

type Kind = 'keypackages' | 'welcome'

/** A deposit answered 201. */
interface Item {
  id: string
  kind: Kind
  recipient: Signer
}

/** mulberry32: a small seeded generator, so a failing run's choices can be repeated. */
const random = (seed: number) => () => {
  seed = (seed + 0x6d2b79f5) | 0
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed)
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296
}

/** What the clients were told, and so what the mailbox must hold. */
class Ledger {
  /** Answered 201 and not acked with a 200: must be listed. */
  readonly stored = new Map<string, Item>()
  /** Ack answered 200: must never be listed again. */
  readonly acked = new Set<string>()
  /** Ack sent, no answer (the kill): either way is right; settled by the next listing. */
  readonly inDoubt = new Map<string, Item>()
  readonly problems: string[] = []
  readonly counts = { deposits: 0, acks: 0, unanswered: 0 }
}

const depositBody = (kind: Kind, recipient: Signer) =>
  kind === 'keypackages' ? { recipient: recipient.pubkey, content_b64: b64(300) } : { recipient: recipient.pubkey, group_id: 'crash-test-group', welcome_b64: b64(400) }

/** One request of the load: a deposit (KeyPackage or Welcome) or an ack of an item answered 201. */
const step = async (api: ApiChild, ledger: Ledger, rand: () => number, people: { senders: Signer[]; recipients: Signer[] }): Promise<void> => {
  const pick = <T>(list: T[]): T => list[Math.floor(rand() * list.length)] as T
  const stored = [...ledger.stored.values()]
  if (stored.length > 0 && rand() < 0.4) {
    const item = pick(stored)
    ledger.stored.delete(item.id)
    const res = await send(api, item.recipient, 'POST', `/${item.kind}/${item.id}/ack`)
    if (res.status === 200) {
      ledger.acked.add(item.id)
      ledger.counts.acks++
    } else if (res.status === 0) {
      ledger.inDoubt.set(item.id, item)
      ledger.counts.unanswered++
    } else ledger.problems.push(`ack of ${item.kind} ${item.id} (answered 201, never acked before): ${show(res)}`)
    return
  }
  const kind: Kind = rand() < 0.7 ? 'keypackages' : 'welcome'
  const recipient = pick(people.recipients)
  const res = await send(api, pick(people.senders), 'POST', `/${kind}`, depositBody(kind, recipient))
  if (res.status === 201) {
    ledger.stored.set(String(res.body?.id), { id: String(res.body?.id), kind, recipient })
    ledger.counts.deposits++
  } else if (res.status === 0) ledger.counts.unanswered++
  else ledger.problems.push(`deposit of a ${kind}: ${show(res)}`)
}

/** An answer for a failure message. */
const show = (res: Answer): string => `${res.status} ${JSON.stringify(res.body)}`

/** Lists every mailbox: each 201 not acked is there, nothing acked is; acks in doubt are settled. */
const check = async (api: ApiChild, ledger: Ledger, recipients: Signer[], cycle: number): Promise<void> => {
  const listed = new Set<string>()
  for (const recipient of recipients) for (const kind of ['keypackages', 'welcome'] as const) for (const id of await listAll(api, recipient, kind)) listed.add(id)
  const lost = [...ledger.stored.keys()].filter(id => !listed.has(id))
  const back = [...ledger.acked].filter(id => listed.has(id))
  assert.deepEqual(lost, [], `cycle ${cycle}: ${lost.length} deposits answered 201 are missing after the restart`)
  assert.deepEqual(back, [], `cycle ${cycle}: ${back.length} items acked with 200 are listed again after the restart`)
  for (const [id, item] of ledger.inDoubt) {
    if (listed.has(id)) ledger.stored.set(id, item)
    else ledger.acked.add(id)
  }
  ledger.inDoubt.clear()
}

let pg: TestPostgres

before(async () => {
  pg = await startPostgres()
})

after(async () => {
  killApiChildren()
  await pg?.close()
})

describe('the mailbox API killed with SIGKILL during deposits and acks', () => {
  it(`keeps every 201 and forgets every 200 ack, over ${CYCLES} kill-and-restart cycles`, { timeout: 60_000 + CYCLES * 30_000 }, async t => {
    const rand = random(SEED)
    const people = { senders: Array.from({ length: 4 }, newSigner), recipients: Array.from({ length: 4 }, newSigner) }
    const ledger = new Ledger()
    const started = performance.now()
    let api = await startApi(pg.url)
    for (let cycle = 1; cycle <= CYCLES; cycle++) {
      let killed = false
      const workers = Array.from({ length: WORKERS }, async () => {
        while (!killed) await step(api, ledger, rand, people)
      })
      await sleep(KILL_AFTER_MS[0] + rand() * (KILL_AFTER_MS[1] - KILL_AFTER_MS[0]))
      killed = true
      const { signal } = await api.kill('SIGKILL')
      assert.equal(signal, 'SIGKILL')
      await Promise.all(workers)
      assert.deepEqual(ledger.problems, [], `cycle ${cycle}: answers other than 201 and 200 from the running API`)
      api = await startApi(pg.url)
      await check(api, ledger, people.recipients, cycle)
    }
    const stopped = await api.kill('SIGTERM')
    assert.deepEqual(stopped, { code: 0, signal: null }, api.logs.join('\n'))
    const { deposits, acks, unanswered } = ledger.counts
    // Without deposits, acks and requests cut by the kill, the checks above would prove nothing.
    assert.ok(deposits > 0 && acks > 0 && unanswered > 0, JSON.stringify(ledger.counts))
    t.diagnostic(
      `seed ${SEED}, ${CYCLES} cycles in ${((performance.now() - started) / 1000).toFixed(1)} s: ${deposits} deposits answered 201, ${acks} acks answered 200, ` +
        `${unanswered} requests cut by a kill; ${ledger.stored.size} items still stored, all listed`,
    )
  })
})

/** The pid in postmaster.pid under `dataDir`, if the file is there. */
const postmasterPid = async (dataDir: string): Promise<number | undefined> => {
  const pid = Number((await readFile(join(dataDir, 'postmaster.pid'), 'utf8').catch(() => '')).split('\n', 1)[0])
  return Number.isSafeInteger(pid) && pid > 0 ? pid : undefined
}

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    return (error as { code?: string }).code === 'EPERM'
  }
}

describe('the mailbox API on its embedded PostgreSQL, killed with SIGKILL', () => {
  let dir: string | undefined
  let postmaster: number | undefined

  after(async () => {
    killApiChildren()
    if (postmaster !== undefined && alive(postmaster)) process.kill(postmaster, 'SIGINT')
    for (let waited = 0; postmaster !== undefined && alive(postmaster) && waited < 10_000; waited += 50) await sleep(50)
    if (dir) await rm(dir, { recursive: true, force: true })
  })

  it('leaves its PostgreSQL running; the next serve takes it over, keeps every 201, and stops it on SIGTERM', async () => {
    dir = await tempDir('msr-mailbox-crash-')
    const dataDir = join(dir, 'pg')
    const env = { MAILBOX_DATA_DIR: dataDir, MAILBOX_EMBEDDED_PG_PORT: String(await freePort()) }
    const [sender, recipient] = [newSigner(), newSigner()]
    const first = await startApi(undefined, env)
    postmaster = await postmasterPid(dataDir)
    const ids: string[] = []
    for (let i = 0; i < 10; i++) {
      const res = await send(first, sender, 'POST', '/keypackages', depositBody('keypackages', recipient))
      assert.equal(res.status, 201, JSON.stringify(res.body))
      ids.push(String(res.body?.id))
    }
    const acked = ids.splice(0, 3)
    for (const id of acked) assert.equal((await send(first, recipient, 'POST', `/keypackages/${id}/ack`)).status, 200)
    await first.kill('SIGKILL')
    assert.ok(postmaster !== undefined && alive(postmaster), 'the embedded PostgreSQL outlives a SIGKILLed serve')

    const second = await startApi(undefined, env)
    assert.ok(second.logs.some(line => line.includes('taking it over')), second.logs.join('\n'))
    const listed = await listAll(second, recipient, 'keypackages')
    assert.deepEqual([...listed].sort(), [...ids].sort(), 'the 201s not acked, and only them')
    assert.deepEqual(await second.kill('SIGTERM'), { code: 0, signal: null }, second.logs.join('\n'))
    for (let waited = 0; alive(postmaster) && waited < 10_000; waited += 50) await sleep(50)
    assert.ok(!alive(postmaster), 'the taken-over PostgreSQL is stopped with the serve that took it over')
  })
})
