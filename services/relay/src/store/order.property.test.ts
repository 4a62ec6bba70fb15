// Property test: what the store serves does not depend on the order events arrive in. Random small sets of
// conflicting replaceable/addressable versions, notes, NIP-09 deletions (own, third-party, mixed, of
// deletions) and NIP-40 expirations are applied in many orders, with expiry sweeps at random points; every
// order must serve what the sorted order serves, and that must be what a naive model of the rules says.
// Reproduce a failure with PROPERTY_SEED=<seed printed in the message>.
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, describe, it } from 'node:test'
import { parseFilter, type Filter, type NostrEvent } from '@msr/nostr'
import { chooser, mulberry32, oracleMatch, oracleOrder, shuffled, unsigned, type RawFilter, type Ready } from '../testing/fixtures.js'
import { EventStore } from './event-store.js'
import { fingerprint } from './fingerprint.js'

const SEED = Number(process.env.PROPERTY_SEED || 20261206)
const SETS = 40
const PERMUTATIONS = 25
const CONCURRENT = 5
const BASE = 1_700_000_000
/** The clock of every query and sweep: expirations are drawn from BASE+1..BASE+3, so some are past. */
const NOW = BASE + 2

// Written from the NIP texts, independently of @msr/nostr's helpers and of the store.
const replaceable = (k: number) => k === 0 || k === 3 || (k >= 10000 && k < 20000)
const addressable = (k: number) => k >= 30000 && k < 40000
const dOf = (e: NostrEvent) => e.tags.find(t => t[0] === 'd')?.[1] ?? ''
const addressOf = (e: NostrEvent): string | undefined =>
  replaceable(e.kind) ? `${e.kind}:${e.pubkey}:` : addressable(e.kind) ? `${e.kind}:${e.pubkey}:${dOf(e)}` : undefined
const expired = (e: NostrEvent) => e.tags.some(t => t[0] === 'expiration' && Number(t[1]) <= NOW)
const tagValues = (e: NostrEvent, name: string) => e.tags.filter(t => t[0] === name).map(t => t[1] as string)
const better = (a: NostrEvent, b: NostrEvent) => oracleOrder(a, b) < 0

interface EventSet {
  seed: number
  /** Distinct events. */
  events: Ready[]
  /** The events plus some re-sent copies: what arrives. */
  arrivals: Ready[]
  /** Short readable names for failure messages. */
  labels: Map<string, string>
  /** Kind 5s aimed only at others (the admission exception): stored or refused depending on order. */
  exempt: Set<string>
  filters: Array<[string, RawFilter]>
}

const ADDRESSES: ReadonlyArray<{ kind: number; d?: string }> = [{ kind: 0 }, { kind: 10002 }, { kind: 30023, d: 'a' }, { kind: 30023, d: 'b' }, { kind: 30023 }]

const generate = (seed: number): EventSet => {
  const c = chooser(mulberry32(seed))
  const authors = Array.from({ length: 3 }, c.hex)
  const events: Ready[] = []
  const labels = new Map<string, string>()
  const at = () => BASE + c.int(4) // a tiny range, so same-second ties happen
  const expiry = (): string[][] => (c.chance(0.2) ? [['expiration', String(BASE + 1 + c.int(3))]] : [])
  const add = (author: number, kind: number, tags: string[][], label: string): void => {
    const r = unsigned({ pubkey: authors[author] as string, kind, created_at: at(), tags, content: String(events.length) })
    events.push(r)
    const exp = tags.find(t => t[0] === 'expiration')?.[1]
    labels.set(r.event.id, `#${events.length}:${'ABC'[author]}${label}@${r.event.created_at - BASE}${exp ? `x${Number(exp) - BASE}` : ''}`)
  }
  const version = (): void => {
    const { kind, d } = c.pick(ADDRESSES)
    add(c.int(3), kind, [...(d === undefined ? [] : [['d', d]]), ...expiry()], `:${kind}${d === undefined ? '' : `/${d}`}`)
  }
  const note = (): void => add(c.int(3), 1, [['t', 'x'], ...expiry()], ':note')
  const addressTag = (pubkey: string): string[] => {
    const { kind, d } = c.pick(ADDRESSES)
    return ['a', `${kind}:${pubkey}:${d ?? ''}`]
  }
  const deletion = (): void => {
    const author = c.int(3)
    const pubkey = authors[author] as string
    const own = events.filter(r => r.event.pubkey === pubkey)
    const others = events.filter(r => r.event.pubkey !== pubkey)
    const style = c.pick(['own', 'own', 'foreign', 'mixed'] as const)
    const tags: string[][] = []
    if (style !== 'foreign') {
      if (own.length > 0) for (const r of c.some(own, 2)) tags.push(['e', r.event.id])
      if (c.chance(0.4)) tags.push(addressTag(pubkey))
      if (c.chance(0.1)) tags.push(['e', c.hex()]) // an event never seen
    }
    if (style !== 'own') {
      if (others.length > 0) for (const r of c.some(others, 2)) tags.push(['e', r.event.id])
      if (c.chance(0.3)) tags.push(addressTag(authors[(author + 1 + c.int(2)) % 3] as string))
    }
    const named = tags.map(t => (t[0] === 'e' ? (labels.get(t[1] as string)?.split(':')[0] ?? 'new') : (t[1] as string).replace(/:[0-9a-f]{64}:/, ':…:'))).join(',')
    add(author, 5, [...tags, ...(c.chance(0.1) ? expiry() : [])], `:del(${named})`)
  }
  const size = 14 + c.int(12)
  while (events.length < size) c.pick([version, version, version, version, note, deletion, deletion])()
  const arrivals = [...events, ...c.some(events, 3)] // re-sent copies

  const byId = new Map(events.map(r => [r.event.id, r.event]))
  const exempt = new Set(
    events
      .map(r => r.event)
      .filter(e => {
        if (e.kind !== 5) return false
        const es = tagValues(e, 'e')
        const as = tagValues(e, 'a')
        const foreignEvent = (id: string) => byId.has(id) && byId.get(id)?.pubkey !== e.pubkey
        return es.length + as.length > 0 && es.every(foreignEvent) && as.every(a => a.split(':')[1] !== e.pubkey)
      })
      .map(e => e.id),
  )

  const filters: Array<[string, RawFilter]> = [['all', {}], ['ids', { ids: events.map(r => r.event.id) }]]
  authors.forEach((a, i) => {
    filters.push([`author ${'ABC'[i]}`, { authors: [a] }])
    for (const kind of [0, 5, 30023]) filters.push([`author ${'ABC'[i]} kind ${kind}`, { authors: [a], kinds: [kind] }])
  })
  for (const kind of [0, 1, 5, 10002, 30023]) filters.push([`kind ${kind}`, { kinds: [kind] }])
  for (const d of ['a', 'b', '']) filters.push([`#d ${JSON.stringify(d)}`, { '#d': [d] }])
  const named = new Set(events.flatMap(r => tagValues(r.event, 'e')))
  for (const id of named) filters.push([`#e ${labels.get(id)?.split(':')[0] ?? 'new'}`, { '#e': [id] }])
  return { seed, events, arrivals, labels, exempt, filters }
}

/** The ids a filter serves, in serving order, minus the exempt kind 5s, labelled. */
type Fingerprint = string[]

const fingerprintOf = (set: EventSet, served: (f: Filter, raw: RawFilter) => string[]): Fingerprint =>
  set.filters.map(([name, raw]) => {
    const parsed = parseFilter(raw)
    assert.ok(parsed.ok, `seed ${set.seed}: filter ${name} refused`)
    const ids = served(parsed.value, raw).filter(id => !set.exempt.has(id))
    return `${name}: ${ids.map(id => set.labels.get(id) ?? id).join(' ')}`
  })

/** What NIP-01/09/40 say is served, read naively: the best version of each address, minus deletions and expiry. */
const modelFingerprint = (set: EventSet): Fingerprint => {
  const events = set.events.map(r => r.event)
  const deletions = events.filter(e => e.kind === 5)
  const deletedById = (e: NostrEvent) => e.kind !== 5 && deletions.some(d => d.pubkey === e.pubkey && tagValues(d, 'e').includes(e.id))
  const aTarget = (value: string) => {
    const [kind, pubkey] = value.split(':')
    return replaceable(Number(kind)) ? `${kind}:${pubkey}:` : value
  }
  const deletedByAddress = (e: NostrEvent, address: string) =>
    deletions.some(d => d.pubkey === e.pubkey && d.created_at >= e.created_at && tagValues(d, 'a').some(a => aTarget(a) === address))
  const best = new Map<string, NostrEvent>()
  for (const e of events) {
    const address = addressOf(e)
    const held = address === undefined ? undefined : best.get(address)
    if (address !== undefined && (!held || better(e, held))) best.set(address, e)
  }
  const served = events.filter(e => {
    if (expired(e) || deletedById(e)) return false
    const address = addressOf(e)
    return address === undefined || (best.get(address) === e && !deletedByAddress(e, address))
  })
  return fingerprintOf(set, (_, raw) => served.filter(e => oracleMatch(raw, e)).sort(oracleOrder).map(e => e.id))
}

type Step = { event: Ready } | { sweep: number }

const dirs: string[] = []

/** Applies the steps in 1–3 write transactions to a fresh store and returns what it serves. */
const run = (set: EventSet, steps: Step[], cuts: number[]): Promise<Fingerprint> =>
  applyThen(steps, cuts, store =>
    fingerprintOf(set, filter => store.query(filter, { limit: 10_000, now: NOW, deadline: Infinity, clock: () => 0 }).events.map(e => e.id)),
  )

/** Applies the steps in 1–3 write transactions to a fresh store and returns what `read` makes of it. */
const applyThen = async <T>(steps: Step[], cuts: number[], read: (store: EventStore) => T | Promise<T>): Promise<T> => {
  const dir = mkdtempSync(join(tmpdir(), 'msr-order-property-'))
  dirs.push(dir)
  const store = EventStore.open(dir)
  try {
    for (const [from, to] of [0, ...cuts].map((cut, i, all) => [cut, all[i + 1] ?? steps.length] as const)) {
      await store.write(tx =>
        steps.slice(from, to).forEach(step => ('sweep' in step ? tx.deleteExpired(NOW, step.sweep) : tx.apply(step.event.event, Buffer.from(step.event.json)))),
      )
    }
    store.refresh()
    return await read(store)
  } finally {
    await store.close()
    rmSync(dir, { recursive: true, force: true })
  }
}

/** Sorted by created_at, then id: the reference order. */
const sortedSteps = (set: EventSet): Step[] =>
  [...set.arrivals].sort((a, b) => a.event.created_at - b.event.created_at || (a.event.id < b.event.id ? -1 : a.event.id > b.event.id ? 1 : 0)).map(event => ({ event }))

/** A random order of the arrivals with up to three partial or full sweeps at random points, in random transactions. */
const randomRun = (set: EventSet, rand: () => number): { steps: Step[]; cuts: number[] } => {
  const c = chooser(rand)
  const steps: Step[] = shuffled(rand, set.arrivals).map(event => ({ event }))
  for (let n = c.int(4); n > 0; n--) steps.splice(c.int(steps.length + 1), 0, { sweep: c.pick([1, 2, 100]) })
  const cuts = [...new Set(Array.from({ length: c.int(3) }, () => 1 + c.int(steps.length - 1)))].sort((a, b) => a - b)
  return { steps, cuts }
}

const describeSteps = (set: EventSet, steps: Step[], cuts: number[]): string =>
  steps.map((s, i) => `${cuts.includes(i) ? '| ' : ''}${'sweep' in s ? `sweep(${s.sweep})` : set.labels.get(s.event.event.id)}`).join('\n  ')

const firstDifference = (actual: Fingerprint, expected: Fingerprint): string => {
  const i = actual.findIndex((line, j) => line !== expected[j])
  return `expected ${expected[i]}\n  actual   ${actual[i]}`
}

describe('EventStore arrival-order property', () => {
  after(() => dirs.forEach(d => rmSync(d, { recursive: true, force: true })))
  const sets = Array.from({ length: SETS }, (_, i) => generate(SEED + i))
  const reference = new Map<EventSet, Fingerprint>()
  const sortedRun = async (set: EventSet): Promise<Fingerprint> => {
    const known = reference.get(set)
    if (known) return known
    const fingerprint = await run(set, sortedSteps(set), [])
    reference.set(set, fingerprint)
    return fingerprint
  }

  it(`in sorted order, serves what the NIP-01/09/40 model says (${SETS} sets, seed ${SEED})`, async () => {
    const failures: string[] = []
    for (const set of sets) {
      const actual = await sortedRun(set)
      const expected = modelFingerprint(set)
      if (actual.join('\n') !== expected.join('\n'))
        failures.push(`seed ${set.seed}: ${firstDifference(actual, expected)}\n  arrivals:\n  ${describeSteps(set, sortedSteps(set), [])}`)
    }
    assert.equal(failures.length, 0, `${failures.length} of ${SETS} sets differ from the model; first: ${failures[0]}`)
  })

  it(`every arrival order serves what the sorted order serves (${SETS} sets × ${PERMUTATIONS} orders, seed ${SEED})`, async () => {
    const failures: string[] = []
    let sweeps = 0
    for (const set of sets) {
      const expected = await sortedRun(set)
      const rand = mulberry32(set.seed ^ 0x5eed)
      const orders = Array.from({ length: PERMUTATIONS }, () => randomRun(set, rand))
      sweeps += orders.reduce((n, { steps }) => n + steps.filter(s => 'sweep' in s).length, 0)
      // A few stores at a time: the runs wait on disk syncs far more than on the CPU.
      for (let p = 0; p < orders.length; p += CONCURRENT) {
        const chunk = orders.slice(p, p + CONCURRENT)
        const actuals = await Promise.all(chunk.map(({ steps, cuts }) => run(set, steps, cuts)))
        actuals.forEach((actual, i) => {
          const { steps, cuts } = chunk[i] as (typeof orders)[number]
          if (actual.join('\n') !== expected.join('\n'))
            failures.push(`seed ${set.seed}, order ${p + i}: ${firstDifference(actual, expected)}\n  arrivals ('|' = commit):\n  ${describeSteps(set, steps, cuts)}`)
        })
      }
    }
    assert.ok(sweeps > SETS * PERMUTATIONS, `only ${sweeps} sweeps`)
    assert.equal(failures.length, 0, `${failures.length} of ${SETS * PERMUTATIONS} orders differ from the sorted order; first: ${failures[0]}`)
  })

  it(`every arrival order leaves the same store fingerprint (msr-relay fingerprint), sets without exempt kind 5s (seed ${SEED})`, async () => {
    const failures: string[] = []
    const compared = sets.filter(set => set.exempt.size === 0)
    for (const set of compared) {
      const expected = await applyThen(sortedSteps(set), [], store => fingerprint(store, NOW))
      const rand = mulberry32(set.seed ^ 0xf1a9)
      for (let order = 0; order < 5; order++) {
        const { steps, cuts } = randomRun(set, rand)
        const actual = await applyThen(steps, cuts, store => fingerprint(store, NOW))
        if (actual.sha256 !== expected.sha256 || actual.events !== expected.events)
          failures.push(`seed ${set.seed}, order ${order}: ${JSON.stringify(actual)} vs ${JSON.stringify(expected)}\n  ${describeSteps(set, steps, cuts)}`)
      }
    }
    assert.ok(compared.length >= SETS / 4, `only ${compared.length} sets without exempt kind 5s`)
    assert.equal(failures.length, 0, `${failures.length} orders leave another fingerprint; first: ${failures[0]}`)
  })

  it('the generated sets exercise what they are meant to', () => {
    const all = sets.flatMap(s => s.events.map(r => r.event))
    const counts = {
      versions: all.filter(e => addressOf(e) !== undefined).length,
      deletions: all.filter(e => e.kind === 5).length,
      exempt: sets.reduce((n, s) => n + s.exempt.size, 0),
      deletionsOfDeletions: all.filter(e => e.kind === 5 && tagValues(e, 'e').some(id => all.find(t => t.id === id)?.kind === 5)).length,
      aDeletions: all.filter(e => e.kind === 5 && tagValues(e, 'a').length > 0).length,
      expiredAtNow: all.filter(expired).length,
      ties: sets.filter(s => {
        const versions = s.events.map(r => r.event).filter(e => addressOf(e) !== undefined)
        return new Set(versions.map(e => `${addressOf(e)}@${e.created_at}`)).size < versions.length
      }).length,
    }
    for (const [name, n] of Object.entries(counts)) assert.ok(n >= 5, `${name}: ${n} (${JSON.stringify(counts)})`)
  })
})
