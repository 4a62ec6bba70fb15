import { filterValues, parseFilter, rawFilterValues, type Filter, type Reason } from '@msr/nostr'
import type { Client } from '../connection/client.js'
import type { RelayMetrics } from '../metrics.js'
import { checkRead } from '../policies/access.js'
import type { Settings } from '../settings.js'
import type { FilterBudget } from './filter-budget.js'
import type { LiveIndex } from './live-index.js'
import type { QueryPool } from './query-pool.js'
import { orAfter } from '../deadline.js'
import { releaseSlab, slabBuffer } from './slabs.js'
import type { BackfillRequest, BackfillResponse } from './query-worker.js'
import { createSubscription, type Subscription } from './subscription.js'

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
  settings: Settings
  queries: QueryPool
  live: LiveIndex
  /** What live subscriptions may hold, per connection and per address. */
  budget: FilterBudget
  metrics: RelayMetrics
  now: () => number
  /** Reports a failure answered with `CLOSED "error: …"` (logged with the subscription id, counted). */
  onFailure: (path: 'req' | 'count', error: unknown, context: { subId: string }) => void
}

/**
 * How long past `db_query_timeout` a query worker may take to answer before the REQ or COUNT is closed
 * with `error:` anyway (a worker that hangs must not leave a subscription waiting forever).
 */
export const ANSWER_GRACE_MS = 5000

/** Validates a REQ/COUNT's id and filters, then the reader's access to them. */
const parseRequest = (deps: RequestDeps, client: Client, subId: string, raw: unknown[]): { filters: Filter[] } | { reason: Reason } => {
  const { config, access } = deps.settings.current
  const parsed = parseFilters(subId, raw, config.limitation)
  if ('reason' in parsed) return parsed
  const denied = checkRead(access, client, parsed.filters.map(f => f.kinds))
  return denied ? { reason: denied } : parsed
}

/** The id and filters of a REQ/COUNT against the limits; refusals use `invalid:`. */
const parseFilters = (subId: string, raw: unknown[], limits: RequestLimits): { filters: Filter[] } | { reason: Reason } => {
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

/**
 * REQ: registers the live subscription first (live events are held meanwhile), has a query worker
 * read each filter's stored events, sends them, EOSE, then the held live events it did not already send.
 */
export const handleReq = (deps: RequestDeps, client: Client, subId: string, raw: unknown[]): void => {
  // The budget first, on the values as sent: a request too large to keep costs no validation.
  const tooLarge = deps.budget.check(client, rawFilterValues(raw), client.subscriptions.get(subId)?.values)
  if (tooLarge) client.penalize()
  const parsed = tooLarge ? { reason: tooLarge } : parseRequest(deps, client, subId, raw)
  if ('reason' in parsed) {
    // CLOSED means the id is closed: a refused replacement must not leave the old subscription delivering.
    closeSubscription(deps, client, subId)
    return client.closedSub(subId, parsed.reason)
  }
  const { config, access } = deps.settings.current
  const limits = config.limitation
  const previous = client.subscriptions.get(subId)
  if (!previous && client.subscriptions.size >= limits.max_subscriptions)
    return client.closedSub(subId, `blocked: too many open subscriptions (at most ${limits.max_subscriptions})`)
  if (previous) closeSubscription(deps, client, subId)
  const values = parsed.filters.reduce((sum, filter) => sum + filterValues(filter), 0)
  const over = deps.budget.reserve(client, values)
  if (over) return (client.penalize(), client.closedSub(subId, over))
  client.forgive()
  deps.metrics.filterValues.inc(values)
  const subscription = createSubscription(client, subId, parsed.filters, values)
  client.subscriptions.set(subId, subscription)
  deps.live.add(subscription)
  deps.metrics.subscriptions.inc()
  const request = {
    filters: parsed.filters,
    limits: parsed.filters.map(f => Math.min(f.limit ?? limits.default_limit, limits.max_limit)),
    prefix: subscription.framePrefix.toString('utf8'),
    now: deps.now(),
    timeoutMs: config.data.db_query_timeout,
    wire: client.acceptsWireFrames,
    viewer: [...client.authed],
    privateKinds: [...access.privateKinds],
  }
  // Registered synchronously (a CLOSE right behind must find it); the rate limit answers asynchronously.
  void backfill(deps, subscription, request).catch(error => {
    deps.onFailure('req', error, { subId })
    if (client.subscriptions.get(subId) !== subscription) return
    closeSubscription(deps, client, subId)
    client.closedSub(subId, 'error: internal error while answering the subscription; try again')
  })
}

/** The rate limit, then the query on a worker (bounded in time), then the answer. */
const backfill = async (deps: RequestDeps, subscription: Subscription, request: Omit<BackfillRequest, 'op'>): Promise<void> => {
  const { client, id: subId } = subscription
  const limited = await deps.settings.current.limits.checkRequest(client.id)
  if (client.subscriptions.get(subId) !== subscription) return
  if (limited) {
    deps.metrics.rateLimited.inc({ rule: 'req_per_minute' })
    closeSubscription(deps, client, subId)
    return client.closedSub(subId, limited)
  }
  const stopTimer = deps.metrics.querySeconds.startTimer({ verb: 'REQ' })
  const answering = deps.queries.backfill(request)
  const result = await orAfter(answering, request.timeoutMs + ANSWER_GRACE_MS, 'late' as const)
  stopTimer()
  if (result === 'late') {
    // A late answer still owns a slab: free it when (if) it comes.
    void answering.then(late => late && answerBytes(deps.queries, late, deps.metrics).free())
    deps.onFailure('req', new Error(`no answer from a query worker within ${request.timeoutMs + ANSWER_GRACE_MS} ms`), { subId })
    return finishBackfill(deps, subscription, undefined)
  }
  finishBackfill(deps, subscription, result)
}

/** The answer's bytes (slab or transferred) and a function that frees them once they are written. */
const answerBytes = (queries: QueryPool, result: BackfillResponse, metrics: RelayMetrics): { data: Buffer; free: () => void } => {
  const idBytes = 32 * result.ends.length
  const length = (result.ends.at(-1) ?? 0) + idBytes
  if (result.slab < 0) {
    metrics.backfillsAllocated.inc()
    const bytes = result.bytes as Uint8Array
    return { data: Buffer.from(bytes.buffer, bytes.byteOffset, length), free: () => undefined }
  }
  return { data: slabBuffer(queries.arena, result.slab, length), free: () => releaseSlab(queries.arena, result.slab) }
}

/** Sends the backfill, then EOSE and the held live events; or CLOSED when the query failed or ran out of time. */
const finishBackfill = (deps: RequestDeps, subscription: Subscription, result: BackfillResponse | undefined): void => {
  const answer = result && answerBytes(deps.queries, result, deps.metrics)
  const { client, id: subId } = subscription
  if (client.subscriptions.get(subId) !== subscription) return answer?.free() // closed or replaced meanwhile
  if (!result || !answer) {
    closeSubscription(deps, client, subId)
    return client.closedSub(subId, 'error: the query could not be answered; try again')
  }
  const framesEnd = result.ends.at(-1) ?? 0
  const sent = subscription.held?.length ? backfilledIds(answer.data, framesEnd) : undefined
  if (result.wire) client.sendWire(answer.data.subarray(0, framesEnd), answer.free)
  else {
    // ws may hold a frame (compression is asynchronous), so these frames are copies and the slab is freed now.
    result.ends.reduce((start, end) => (client.send(Buffer.from(answer.data.subarray(start, end))), end), 0)
    answer.free()
  }
  if (result.timedOut) {
    closeSubscription(deps, client, subId)
    return client.closedSub(subId, 'error: the query took too long (db_query_timeout); narrow the filter')
  }
  client.eose(subId)
  const held = subscription.held ?? []
  subscription.held = undefined
  for (const { id, frame } of held) if (!sent?.has(id)) client.sendLive(frame)
}

/** The ids the backfill sent (they follow the frames, 32 bytes each). */
const backfilledIds = (data: Buffer, from: number): Set<string> => {
  const out = new Set<string>()
  for (let at = from; at + 32 <= data.length; at += 32) out.add(data.toString('hex', at, at + 32))
  return out
}

/** COUNT (NIP-45): one number over all filters; never rejects (the unexpected is answered `CLOSED "error: …"`). */
export const handleCount = (deps: RequestDeps, client: Client, subId: string, raw: unknown[]): Promise<void> =>
  count(deps, client, subId, raw).catch(error => {
    deps.onFailure('count', error, { subId })
    client.closedSub(subId, 'error: internal error while counting; try again')
  })

const count = async (deps: RequestDeps, client: Client, subId: string, raw: unknown[]): Promise<void> => {
  const { config, access, limits } = deps.settings.current
  if (!config.count.enabled) return client.closedSub(subId, 'blocked: COUNT is disabled on this relay')
  const parsed = parseRequest(deps, client, subId, raw)
  if ('reason' in parsed) return client.closedSub(subId, parsed.reason)
  const limited = await limits.checkRequest(client.id)
  if (limited) {
    deps.metrics.rateLimited.inc({ rule: 'req_per_minute' })
    return client.closedSub(subId, limited)
  }
  const stopTimer = deps.metrics.querySeconds.startTimer({ verb: 'COUNT' })
  const request = {
    filters: parsed.filters,
    now: deps.now(),
    timeoutMs: config.data.db_query_timeout,
    viewer: [...client.authed],
    privateKinds: [...access.privateKinds],
  }
  const result = await orAfter(deps.queries.count(request), request.timeoutMs + ANSWER_GRACE_MS, undefined)
  stopTimer()
  if (!result) return client.closedSub(subId, 'error: the count could not be answered; try again')
  if (result.timedOut) return client.closedSub(subId, 'error: the count took too long (db_query_timeout); narrow the filter')
  client.send(JSON.stringify(['COUNT', subId, { count: result.count }]))
}

/** CLOSE: ends a subscription; an unknown id is ignored, as NIP-01 expects no answer. */
export const closeSubscription = (deps: Pick<RequestDeps, 'live' | 'budget' | 'metrics'>, client: Client, subId: string): void => {
  const subscription = client.subscriptions.get(subId)
  if (!subscription) return
  client.subscriptions.delete(subId)
  deps.live.remove(subscription)
  deps.budget.release(client, subscription.values)
  deps.metrics.filterValues.dec(subscription.values)
  deps.metrics.subscriptions.dec()
}
