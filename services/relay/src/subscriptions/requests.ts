import { parseFilter, type Filter, type Reason } from '@msr/nostr'
import type { Client } from '../connection/client.js'
import type { RelayMetrics } from '../metrics.js'
import type { EventStore } from '../store/event-store.js'
import type { LiveIndex } from './live-index.js'
import { createSubscription } from './subscription.js'

/** The `[limitation]` values REQ and COUNT enforce. */
export interface RequestLimits {
  max_subscriptions: number
  max_filters: number
  max_limit: number
  default_limit: number
  max_subid_length: number
}

/** What REQ, COUNT and CLOSE need. */
export interface RequestDeps {
  limits: RequestLimits
  store: EventStore
  live: LiveIndex
  countEnabled: boolean
  queryTimeoutMs: number
  /** True when an id is committed but not yet fanned out (see Writer.isUnannounced). */
  isUnannounced: (id: string) => boolean
  metrics: RelayMetrics
  now: () => number
  clock: () => number
}

/** Validates a REQ/COUNT's id and filters; CLOSED reasons use `invalid:`. */
const parseRequest = (subId: string, raw: unknown[], limits: RequestLimits): { filters: Filter[] } | { reason: Reason } => {
  if (subId.length > limits.max_subid_length)
    return { reason: `invalid: subscription id is longer than ${limits.max_subid_length} characters` }
  if (raw.length > limits.max_filters) return { reason: `invalid: too many filters (at most ${limits.max_filters})` }
  const filters: Filter[] = []
  for (const item of raw) {
    const parsed = parseFilter(item)
    if (!parsed.ok) return { reason: parsed.reason }
    filters.push(parsed.value)
  }
  return { filters }
}

/** REQ: registers the live subscription first, then streams stored events per filter, then EOSE. */
export const handleReq = (deps: RequestDeps, client: Client, subId: string, raw: unknown[]): void => {
  const parsed = parseRequest(subId, raw, deps.limits)
  if ('reason' in parsed) {
    // CLOSED means the id is closed: a refused replacement must not leave the old subscription delivering.
    closeSubscription(deps, client, subId)
    return client.closedSub(subId, parsed.reason)
  }
  const previous = client.subscriptions.get(subId)
  if (!previous && client.subscriptions.size >= deps.limits.max_subscriptions)
    return client.closedSub(subId, `blocked: too many open subscriptions (at most ${deps.limits.max_subscriptions})`)
  if (previous) closeSubscription(deps, client, subId)
  const subscription = createSubscription(client, subId, parsed.filters)
  client.subscriptions.set(subId, subscription)
  deps.live.add(subscription)
  deps.metrics.subscriptions.inc()
  const stopTimer = deps.metrics.querySeconds.startTimer({ verb: 'REQ' })
  const timedOut = backfill(deps, subscription.framePrefix, subscription.sentBeforeLive, parsed.filters, client)
  stopTimer()
  if (timedOut) {
    closeSubscription(deps, client, subId)
    return client.closedSub(subId, 'error: the query took too long (db_query_timeout); narrow the filter')
  }
  client.eose(subId)
}

/** Sends each filter's stored events in request order, each event once; true when the deadline passed. */
const backfill = (deps: RequestDeps, prefix: string, sentBeforeLive: Set<string>, filters: Filter[], client: Client): boolean => {
  const sent = new Set<string>()
  const clock = deps.clock
  const bounds = { now: deps.now(), deadline: clock() + deps.queryTimeoutMs, clock }
  for (const filter of filters) {
    const limit = Math.min(filter.limit ?? deps.limits.default_limit, deps.limits.max_limit)
    // Each filter's own newest `limit` events (NIP-01: the REQ answers the union of the filters), sent once.
    const result = deps.store.query(filter, { ...bounds, limit })
    for (const { id, json } of result.events) {
      if (sent.has(id)) continue
      sent.add(id)
      if (deps.isUnannounced(id)) sentBeforeLive.add(id)
      client.send(prefix + json + ']')
    }
    if (result.timedOut) return true
  }
  return false
}

/** COUNT (NIP-45): one number over all filters. */
export const handleCount = (deps: RequestDeps, client: Client, subId: string, raw: unknown[]): void => {
  if (!deps.countEnabled) return client.closedSub(subId, 'blocked: COUNT is disabled on this relay')
  const parsed = parseRequest(subId, raw, deps.limits)
  if ('reason' in parsed) return client.closedSub(subId, parsed.reason)
  const stopTimer = deps.metrics.querySeconds.startTimer({ verb: 'COUNT' })
  const result = deps.store.count(parsed.filters, { now: deps.now(), deadline: deps.clock() + deps.queryTimeoutMs, clock: deps.clock })
  stopTimer()
  if (result.timedOut) return client.closedSub(subId, 'error: the count took too long (db_query_timeout); narrow the filter')
  client.send(JSON.stringify(['COUNT', subId, { count: result.count }]))
}

/** CLOSE: ends a subscription; an unknown id is ignored, as NIP-01 expects no answer. */
export const closeSubscription = (deps: Pick<RequestDeps, 'live' | 'metrics'>, client: Client, subId: string): void => {
  const subscription = client.subscriptions.get(subId)
  if (!subscription) return
  client.subscriptions.delete(subId)
  deps.live.remove(subscription)
  deps.metrics.subscriptions.dec()
}
