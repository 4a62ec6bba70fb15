import { filterValues, parseFilter, rawFilterValues, type Filter, type Reason } from '@msr/nostr'
import type { Span } from '@opentelemetry/api'
import type { Client } from '../connection/client.js'
import type { RelayMetrics } from '../metrics.js'
import { checkRead } from '../policies/access.js'
import type { Settings } from '../settings.js'
import type { FilterBudget } from './filter-budget.js'
import type { LiveIndex } from './live-index.js'
import type { QueryPool } from './query-pool.js'
import { orAfter } from '../deadline.js'
import { releaseSlab, slabBuffer } from './slabs.js'
import type { BackfillRequest, BackfillResponse, PageCursor, SentBefore } from './query-engine.js'
import { createSubscription, type Subscription } from './subscription.js'
import { annotate, endSpan, inSpan, startSpan } from '../tracing.js'

/** The `[limitation]` values REQ and COUNT enforce. */
export interface RequestLimits {
  max_subscriptions: number
  max_filters: number
  max_limit: number
  default_limit: number
  max_subid_length: number
  history_kinds: readonly number[]
  max_history: number
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
  /**
   * Resolves once every event committed so far has been through the live fan-out (a reader can see a
   * commit before its fan-out has run); undefined when that is so already. With `[replication]`, this
   * replica's own events that wait for the bus are left to `fanOutPending`.
   */
  fanOutCaughtUp: () => Promise<void> | undefined
  /**
   * With `[replication]`: whether this committed event's live fan-out is still to come (it waits for the
   * bus). A backfill that sent such an event keeps its id, and the late fan-out skips the subscription.
   */
  fanOutPending?: ((id: string) => boolean) | undefined
}

/**
 * How long past `db_query_timeout` a query worker may take to answer before the REQ or COUNT is closed
 * with `error:` anyway (a worker that hangs must not leave a subscription waiting forever).
 */
export const ANSWER_GRACE_MS = 5000

/** CLOSED, which ends the request's span (`nostr.closed_reason` is the prefix). */
const closed = (client: Client, subId: string, reason: Reason, span: Span): void => {
  client.closedSub(subId, reason)
  endSpan(span, 'nostr.closed_reason', reason)
}

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
 * Its `relay.req` span ends at EOSE or CLOSED.
 */
export const handleReq = (deps: RequestDeps, client: Client, subId: string, raw: unknown[]): void => {
  const span = startSpan('relay.req')
  annotate(span, () => ({ 'nostr.filters': raw.length }))
  // The budget first, on the values as sent: a request too large to keep costs no validation.
  const tooLarge = deps.budget.check(client, rawFilterValues(raw), client.subscriptions.get(subId)?.values)
  if (tooLarge) client.penalize()
  const parsed = tooLarge ? { reason: tooLarge } : parseRequest(deps, client, subId, raw)
  if ('reason' in parsed) {
    // CLOSED means the id is closed: a refused replacement must not leave the old subscription delivering.
    closeSubscription(deps, client, subId)
    return closed(client, subId, parsed.reason, span)
  }
  const { config, access } = deps.settings.current
  const limits = config.limitation
  const previous = client.subscriptions.get(subId)
  if (!previous && client.subscriptions.size >= limits.max_subscriptions)
    return closed(client, subId, `blocked: too many open subscriptions (at most ${limits.max_subscriptions})`, span)
  if (previous) closeSubscription(deps, client, subId)
  const values = parsed.filters.reduce((sum, filter) => sum + filterValues(filter), 0)
  const over = deps.budget.reserve(client, values)
  if (over) return (client.penalize(), closed(client, subId, over, span))
  client.forgive()
  deps.metrics.filterValues.inc(values)
  const subscription = createSubscription(client, subId, parsed.filters, values)
  client.subscriptions.set(subId, subscription)
  deps.live.add(subscription)
  deps.metrics.subscriptions.inc()
  const paged = parsed.filters.map(f => isHistory(f, limits))
  const request: Omit<BackfillRequest, 'op'> = {
    filters: parsed.filters,
    limits: parsed.filters.map((f, i) => (paged[i] ? historyPage(limits) : Math.min(f.limit ?? limits.default_limit, limits.max_limit))),
    prefix: subscription.framePrefix.toString('utf8'),
    now: deps.now(),
    timeoutMs: config.data.db_query_timeout,
    wire: client.acceptsWireFrames,
    viewer: [...client.authed],
    privateKinds: [...access.privateKinds],
    ...(paged.some(Boolean) && { paged }),
  }
  // Registered synchronously (a CLOSE right behind must find it); the rate limit answers asynchronously.
  void backfill(deps, subscription, request, span).catch(error => {
    inSpan(span, () => deps.onFailure('req', error, { subId }))
    if (client.subscriptions.get(subId) !== subscription) return span.end()
    closeSubscription(deps, client, subId)
    closed(client, subId, 'error: internal error while answering the subscription; try again', span)
  })
}

/**
 * A history filter: no `limit`, and every kind among `history_kinds` (MLS group messages, gift wraps).
 * Marmot clients read those without limit or pagination and lose whatever is left out, so they are
 * answered with every match (up to `max_history`), in pages.
 */
const isHistory = (filter: Filter, limits: RequestLimits): boolean =>
  filter.limit === undefined && filter.kinds !== undefined && filter.kinds.length > 0 && filter.kinds.every(k => limits.history_kinds.includes(k))

/** Events per history page: a page is one scan (QueryPool.backfill), bounded by db_query_timeout like any other. */
const historyPage = (limits: RequestLimits): number => Math.min(limits.max_limit, limits.max_history)

/** What a history answer says when max_history cuts it short (never an EOSE that looks complete). */
const historyCut = (max: number): Reason =>
  `blocked: history cut at ${max} events (max_history), more may match; ask again with until (older) or since (newer) to read the rest`

/**
 * The rate limit, then the query (bounded in time), then the answer. Filters go out in request order; a
 * history filter goes on in pages: each page starts at the oldest created_at of the last one (`until`,
 * skipping the ids already sent there), the filters after it wait for it to end, and each page waits until
 * the client has read the one before; EOSE comes after the last page.
 */
const backfill = async (deps: RequestDeps, subscription: Subscription, first: Omit<BackfillRequest, 'op'>, span: Span): Promise<void> => {
  const { client, id: subId } = subscription
  const limited = await deps.settings.current.limits.checkRequest(client.id)
  if (client.subscriptions.get(subId) !== subscription) return span.end()
  if (limited) {
    deps.metrics.rateLimited.inc({ rule: 'req_per_minute' })
    closeSubscription(deps, client, subId)
    return closed(client, subId, limited, span)
  }
  const maxHistory = deps.settings.current.config.limitation.max_history
  let request = first
  let from: Resume = { at: 0, sentBefore: [] }
  let served = 0
  let pages = 0
  // What each history filter has used of its max_history: a page's cut filter, its page limit there (the
  // duplicates it skipped included). Filters before it in the page ended within their limits.
  const used = first.filters.map(() => 0)
  for (;;) {
    const result = await queryPage(deps, request, subscription, span)
    pages++
    if (!sendPage(deps, subscription, result, span)) return
    const page = result as BackfillResponse
    served += page.frames
    if (page.timedOut) {
      closeSubscription(deps, client, subId)
      return closed(client, subId, 'error: the query took too long (db_query_timeout); narrow the filter', span)
    }
    const next = resumeAfter(first, from, page.cursors)
    if (!next) break
    const cut = (used[next.at] as number) + (request.limits[next.at - from.at] as number)
    used[next.at] = cut
    if (cut >= maxHistory) {
      closeSubscription(deps, client, subId)
      return closed(client, subId, historyCut(maxHistory), span)
    }
    await client.roomToSend()
    if (client.subscriptions.get(subId) !== subscription) return span.end()
    from = next
    // Each page judges expiry at its own time: an event that expired while the client read the last is not sent.
    request = { ...pageRequest(first, from, i => maxHistory - (used[i] as number)), now: deps.now() }
  }
  annotate(span, () => ({ 'nostr.events_returned': served, 'nostr.pages': pages }))
  client.eose(subId)
  endSpan(span, 'nostr.answer', 'eose')
  const held = subscription.held ?? []
  subscription.held = undefined
  for (const { frame } of held) client.sendLive(frame)
}

/**
 * Where the next page of a paged REQ starts: at filter `at` (of the REQ's filters), from `cursor` when that
 * filter was cut by the page before; `sentBefore` stands for what the filters before it sent.
 */
interface Resume {
  at: number
  cursor?: PageCursor
  sentBefore: SentBefore[]
}

/**
 * Where the next page starts, given where this one started (`from`) and its cursors; undefined when this
 * was the last: at the first paged filter this page cut, the filters before that counted as sent. A cursor
 * at the same created_at as the page before adds to its ids.
 */
const resumeAfter = (first: Omit<BackfillRequest, 'op'>, from: Resume, cursors: (PageCursor | undefined)[]): Resume | undefined => {
  const paged = first.paged ?? []
  const cut = cursors.findIndex((cursor, i) => cursor !== undefined && paged[from.at + i])
  if (cut < 0) return undefined
  const sentBefore = [...from.sentBefore]
  for (let i = 0; i < cut; i++) {
    const at = from.at + i
    // A filter with limit 0 sent nothing; a paged one that ended sent every match; another, down to its cursor.
    if ((first.limits[at] as number) > 0) sentBefore.push({ filter: first.filters[at] as Filter, cursor: paged[at] ? undefined : cursors[i] })
  }
  const cursor = cursors[cut] as PageCursor
  const previous = cut === 0 && from.cursor?.createdAt === cursor.createdAt ? from.cursor.ids : []
  return { at: from.at + cut, cursor: { createdAt: cursor.createdAt, ids: [...previous, ...cursor.ids] }, sentBefore }
}

/**
 * The request for a page starting at `from`: the filters from there on, the first `until` its cursor,
 * skipping the ids sent there (and, for the filters after it, what its earlier pages sent); no paged filter
 * asks for more than `allowance` of it (by its index in the REQ: what max_history leaves it).
 */
const pageRequest = (first: Omit<BackfillRequest, 'op'>, from: Resume, allowance: (filter: number) => number): Omit<BackfillRequest, 'op'> => {
  const filters = first.filters.slice(from.at)
  const paged = (first.paged ?? []).slice(from.at)
  const { cursor } = from
  const resumed = filters[0] as Filter
  if (cursor) filters[0] = { ...resumed, until: cursor.createdAt }
  return {
    ...first,
    filters,
    limits: first.limits.slice(from.at).map((limit, i) => (paged[i] ? Math.max(1, Math.min(limit, allowance(from.at + i))) : limit)),
    paged,
    skip: cursor ? [cursor.ids] : undefined,
    sentBefore: cursor ? [...from.sentBefore, { filter: resumed, cursor }] : from.sentBefore,
  }
}

/**
 * One page, bounded in time: the answer (scanned on the event loop for a client querying alone, else by a
 * worker; see QueryPool.backfill), or undefined when no answer came in time.
 */
const queryPage = async (deps: RequestDeps, request: Omit<BackfillRequest, 'op'>, { client, id: subId }: Subscription, span: Span): Promise<BackfillResponse | undefined> => {
  const stopTimer = deps.metrics.querySeconds.startTimer({ verb: 'REQ' })
  const answering = deps.queries.backfill(request, client)
  const result = await orAfter(answering, request.timeoutMs + ANSWER_GRACE_MS, 'late' as const)
  const seconds = stopTimer()
  const thread = result === 'late' || result === undefined ? undefined : result.inline ? 'event_loop' : 'worker'
  annotate(span, () => ({ 'nostr.scan_ms': seconds * 1000, ...(thread && { 'nostr.scan_thread': thread }) }))
  if (thread) deps.metrics.reqPages.inc({ thread })
  if (result !== 'late') return result
  // A late answer still owns a slab: free it when (if) it comes.
  void answering.then(late => late && answerBytes(deps.queries, late, deps.metrics).free())
  inSpan(span, () => deps.onFailure('req', new Error(`no answer from a query worker within ${request.timeoutMs + ANSWER_GRACE_MS} ms`), { subId }))
  return undefined
}

/** The answer's bytes (slab or transferred) and a function that frees them once they are written. */
const answerBytes = (queries: QueryPool, result: BackfillResponse, metrics: RelayMetrics): { data: Buffer; free: () => void } => {
  const length = result.framesEnd + 36 * result.frames
  if (result.slab < 0) {
    metrics.backfillsAllocated.inc()
    const bytes = result.bytes as Uint8Array
    return { data: Buffer.from(bytes.buffer, bytes.byteOffset, length), free: () => undefined }
  }
  return { data: slabBuffer(queries.arena, result.slab, length), free: () => releaseSlab(queries.arena, result.slab) }
}

/**
 * Sends one page of the backfill; true when the subscription goes on. A live event held meanwhile that
 * this page already sent is dropped from the held ones. CLOSED when the query failed.
 */
const sendPage = (deps: RequestDeps, subscription: Subscription, result: BackfillResponse | undefined, span: Span): boolean => {
  const answer = result && answerBytes(deps.queries, result, deps.metrics)
  const { client, id: subId } = subscription
  if (client.subscriptions.get(subId) !== subscription) return (answer?.free(), span.end(), false) // closed or replaced meanwhile
  if (!result || !answer) {
    closeSubscription(deps, client, subId)
    return (closed(client, subId, 'error: the query could not be answered; try again', span), false)
  }
  const { framesEnd } = result
  if (result.frames > 0) againstFanOut(deps, subscription, answer.data, result)
  if (result.wire) client.sendWire(answer.data.subarray(0, framesEnd), answer.free)
  else {
    // ws may hold a frame (compression is asynchronous), so these frames are copies and the slab is freed now.
    frameEnds(answer.data, result).reduce((start, end) => (client.send(Buffer.from(answer.data.subarray(start, end))), end), 0)
    answer.free()
  }
  return true
}

/**
 * Keeps a page's events from reaching the subscription again live: held live events it sent are dropped,
 * and those whose fan-out may still come (committed before the scan read them, not yet fanned out) are
 * marked on the subscription, for that fan-out to skip. The marks go once the fan-out has caught up
 * with every commit made until now, except those of events still waiting for the bus (`fanOutPending`),
 * which their own fan-out removes: a subscription holds at most the ids of the pages just sent.
 */
const againstFanOut = (deps: RequestDeps, subscription: Subscription, data: Buffer, result: BackfillResponse): void => {
  const { held } = subscription
  const pending = deps.fanOutPending
  const catchingUp = deps.fanOutCaughtUp()
  if (!held?.length && !catchingUp && !pending) return
  const sent = backfilledIds(data, result.framesEnd, result.frames)
  if (held?.length) subscription.held = held.filter(({ id }) => !sent.has(id))
  if (!catchingUp) {
    if (pending) for (const id of sent) if (pending(id)) (subscription.sentBeforeFanOut ??= new Set()).add(id)
    return
  }
  const marks = (subscription.sentBeforeFanOut ??= new Set())
  for (const id of sent) marks.add(id)
  void catchingUp.then(() => {
    for (const id of sent) if (!pending?.(id)) marks.delete(id)
    if (marks.size === 0 && subscription.sentBeforeFanOut === marks) subscription.sentBeforeFanOut = undefined
  })
}

/** Where each frame of the answer ends (u32 LE after the ids). */
const frameEnds = (data: Buffer, result: BackfillResponse): number[] => {
  const from = result.framesEnd + 32 * result.frames
  return Array.from({ length: result.frames }, (_, i) => data.readUInt32LE(from + 4 * i))
}

/** The ids the backfill sent (they follow the frames, 32 bytes each). */
const backfilledIds = (data: Buffer, from: number, count: number): Set<string> => {
  const out = new Set<string>()
  for (let at = from; at < from + 32 * count; at += 32) out.add(data.toString('hex', at, at + 32))
  return out
}

/**
 * COUNT (NIP-45): one number over all filters; never rejects (the unexpected is answered `CLOSED "error: …"`).
 * Its `relay.count` span ends with the answer.
 */
export const handleCount = (deps: RequestDeps, client: Client, subId: string, raw: unknown[]): Promise<void> => {
  const span = startSpan('relay.count')
  annotate(span, () => ({ 'nostr.filters': raw.length }))
  return count(deps, client, subId, raw, span).catch(error => {
    inSpan(span, () => deps.onFailure('count', error, { subId }))
    closed(client, subId, 'error: internal error while counting; try again', span)
  })
}

const count = async (deps: RequestDeps, client: Client, subId: string, raw: unknown[], span: Span): Promise<void> => {
  const { config, access, limits } = deps.settings.current
  if (!config.count.enabled) return closed(client, subId, 'blocked: COUNT is disabled on this relay', span)
  const parsed = parseRequest(deps, client, subId, raw)
  if ('reason' in parsed) return closed(client, subId, parsed.reason, span)
  const limited = await limits.checkRequest(client.id)
  if (limited) {
    deps.metrics.rateLimited.inc({ rule: 'req_per_minute' })
    return closed(client, subId, limited, span)
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
  if (!result) return closed(client, subId, 'error: the count could not be answered; try again', span)
  if (result.timedOut) return closed(client, subId, 'error: the count took too long (db_query_timeout); narrow the filter', span)
  client.send(JSON.stringify(['COUNT', subId, { count: result.count }]))
  annotate(span, () => ({ 'nostr.count': result.count }))
  span.end()
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
