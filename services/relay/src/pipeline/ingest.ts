import { isEphemeral, prefixOf, type Reason } from '@msr/nostr'
import type { Span } from '@opentelemetry/api'
import type { Client } from '../connection/client.js'
import { kindLabel, type RelayMetrics } from '../metrics.js'
import { checkWrite } from '../policies/access.js'
import type { ReplicationGate } from '../replication/gate.js'
import type { Settings } from '../settings.js'
import type { StoreOutcome } from '../store/event-store.js'
import { annotate, endSpan, inSpan, startSpan } from '../tracing.js'
import { isInvalid, precheck, verifySignature, type Invalid, type ValidEvent } from './validate.js'
import type { VerifierPool } from '@msr/workers'
import type { Writer } from './writer.js'

/** What the EVENT path needs. */
export interface IngestDeps {
  settings: Settings
  verifier: VerifierPool
  writer: Writer
  /** Delivers an ephemeral event to live subscriptions (stored events are fanned out by the writer). */
  fanOut: (valid: ValidEvent, span: Span) => void
  metrics: RelayMetrics
  now: () => number
  /** Reports a failure the EVENT path answered with `error:` (logged with the event id, counted). */
  onFailure: (error: unknown, context: { eventId: string }) => void
  /** With `[replication]`: the OK waits for the bus (`confirm`), and ephemeral events are published too. */
  replication?: Pick<ReplicationGate, 'confirm' | 'publishEphemeral'> | undefined
}

/** One EVENT on its way to OK: its metric label and its `relay.event` span. */
interface Ingesting {
  kind: string
  span: Span
}

const MAX_IN_FLIGHT = 1024
const ingestTails = new WeakMap<Client, Promise<void>>()

/** Resolves once every EVENT received so far from the client has been answered or handed to the writer. */
export const ingestSettled = (client: Client): Promise<void> => ingestTails.get(client) ?? Promise.resolve()

/** Who waits for a connection's EVENTs to be answered (eventsAnswered); kept off the Client, which every idle connection holds. */
const answeredWaiters = new WeakMap<Client, Array<() => void>>()

/**
 * Resolves once every EVENT received so far from the client has been answered (a stored one committed,
 * so a query then finds it; a deleted one gone); undefined when none is unanswered. Only a caller that
 * holds the connection's later messages (a barrier of InboundOrder) may rely on it: new EVENTs would
 * postpone it.
 */
export const eventsAnswered = (client: Client): Promise<void> | undefined => {
  if (client.inFlight === 0) return undefined
  return new Promise(resolve => {
    const waiting = answeredWaiters.get(client)
    if (waiting) waiting.push(resolve)
    else answeredWaiters.set(client, [resolve])
  })
}

/**
 * The EVENT path: precheck → verify (on the pool, in parallel) → access and rate limits → store → OK.
 * Events of one connection reach the writer in the order they arrived; their OKs follow commits.
 * Each EVENT has a `relay.event` span from receipt to its OK (or NOTICE).
 */
export const createIngest = (deps: IngestDeps) => (client: Client, raw: unknown): void => {
  const span = startSpan('relay.event')
  const checked = precheck(raw, deps.settings.current.config.limitation, deps.now())
  if (isInvalid(checked)) return refuse(client, checked, deps, { kind: kindLabel(kindIn(raw)), span })
  const ingesting = { kind: kindLabel(checked.event.kind), span }
  annotate(span, () => ({ 'nostr.kind': checked.event.kind, 'nostr.event_id': checked.event.id }))
  const verified = verifySignature(deps.verifier, checked)
  track(client, +1)
  const tail = (ingestTails.get(client) ?? Promise.resolve())
    .then(() => verified)
    .then(valid => admit(client, valid, deps, ingesting))
    .catch(error => failed(client, checked.event.id, error, deps, ingesting))
  ingestTails.set(client, tail)
}

/** The `kind` of a message's event that failed its checks, if it has one (only for the metric label). */
const kindIn = (raw: unknown): unknown => (typeof raw === 'object' && raw !== null ? (raw as { kind?: unknown }).kind : undefined)

/** Access rules, then rate limits, then storage (or fan-out only, for ephemeral kinds). */
const admit = async (client: Client, valid: ValidEvent | Invalid, deps: IngestDeps, ingesting: Ingesting): Promise<void> => {
  if (isInvalid(valid)) return void (refuse(client, valid, deps, ingesting), track(client, -1))
  const { kind, span } = ingesting
  span.addEvent('verified')
  annotate(span, () => ({ 'nostr.event_size': valid.json.length }))
  const { access, limits } = deps.settings.current
  const reason = checkWrite(access, client, valid.event)
  if (reason) return answer(client, valid.event.id, { status: 'rejected', reason }, deps, ingesting)
  const limited = await limits.checkEvent(valid.event, client)
  if (limited) {
    deps.metrics.rateLimited.inc({ rule: limited.rule })
    return answer(client, valid.event.id, { status: 'rejected', reason: limited.reason }, deps, ingesting)
  }
  span.addEvent('admitted')
  if (isEphemeral(valid.event.kind)) {
    deps.fanOut(valid, span)
    deps.replication?.publishEphemeral(valid.json, valid.event.kind)
    deps.metrics.events.inc({ kind, outcome: 'ephemeral' })
    client.ok(valid.event.id, true, '')
    return void (endSpan(span, 'nostr.outcome', 'ephemeral'), track(client, -1))
  }
  const stopTimer = deps.metrics.writeSeconds.startTimer()
  const { replication } = deps
  const answered = (outcome: StoreOutcome) => answer(client, valid.event.id, outcome, deps, ingesting)
  void deps.writer
    .submit(valid.event, valid.json, span)
    // Without replication the OK goes in the same turn as the commit, as before.
    .then(outcome => (stopTimer(), replication ? replication.confirm(valid.event.id, outcome).then(answered) : answered(outcome)))
    .catch(error => failed(client, valid.event.id, error, deps, ingesting))
}

/** The unexpected on the EVENT path: logged (inside the span) and counted, and the client still gets its OK. */
const failed = (client: Client, eventId: string, error: unknown, deps: IngestDeps, ingesting: Ingesting): void => {
  inSpan(ingesting.span, () => deps.onFailure(error, { eventId }))
  answer(client, eventId, { status: 'rejected', reason: 'error: internal error while storing the event; try again' }, deps, ingesting)
}

const answer = (client: Client, id: string, outcome: StoreOutcome, deps: IngestDeps, ingesting: Ingesting): void => {
  track(client, -1)
  if (outcome.status === 'rejected') return refuse(client, { eventId: id, reason: outcome.reason }, deps, ingesting)
  if (outcome.status === 'stored') ingesting.span.addEvent('committed')
  deps.metrics.events.inc({ kind: ingesting.kind, outcome: outcome.status })
  client.ok(id, true, outcome.status === 'duplicate' ? 'duplicate: already have this event' : '')
  endSpan(ingesting.span, 'nostr.outcome', outcome.status)
}

const refuse = (client: Client, { eventId, reason }: Invalid, deps: IngestDeps, { kind, span }: Ingesting): void => {
  deps.metrics.events.inc({ kind, outcome: prefixOf(reason as Reason) })
  if (eventId) client.ok(eventId, false, reason)
  else client.notice(reason)
  endSpan(span, 'nostr.outcome', reason)
}

/** Counts unanswered events; past the bound the socket stops being read until the backlog halves. */
const track = (client: Client, delta: number): void => {
  client.inFlight += delta
  if (delta > 0 && client.inFlight === MAX_IN_FLIGHT) client.hold('ingest')
  else if (delta < 0 && client.inFlight === MAX_IN_FLIGHT / 2) client.release('ingest')
  else if (client.inFlight === 0) {
    const waiting = answeredWaiters.get(client)
    if (waiting) {
      answeredWaiters.delete(client)
      for (const resolve of waiting) resolve()
    }
  }
}
