import { WorkerPool } from '@msr/workers'
import type { OpenOptions } from '../store/databases.js'
import type { EventStore } from '../store/event-store.js'
import { answerQuery, type BackfillRequest, type BackfillResponse, type CountRequest, type CountResponse, type QueryRequest, type QueryResponse } from './query-engine.js'
import { createArena, openArena, releaseSlab, type SlabArena } from './slabs.js'

/**
 * Slabs shared by all query workers. 1 MiB holds a limit-500 backfill of events up to ~2 KiB each (256 KiB,
 * the first size, overflowed on the benchmark's mix of notes, reactions and tagged 445s: each overflow
 * became a transferred 512 KiB buffer, and the event loop ran a mark-compact every ~70 ms). The memory is
 * reserved, not resident: slabs are claimed lowest first, so only as many are touched as run at once.
 */
const SLABS = 64
const SLAB_BYTES = 1024 * 1024
/** A requester queries alone when no worker is busy and no other requester started a query this recently. */
const OTHERS_QUIET_MS = 20

/** Answering a lone requester's REQ pages on the event loop (see QueryPool.backfill). */
export interface InlineQueries {
  /** The event loop's read view of the store. */
  store: EventStore
  /** Longest inline scan, ms; 0: never inline. */
  budgetMs: number
}

/** How many REQ pages each side answered (a scan dropped at the inline budget counts for the worker). */
export interface BackfillCounts {
  inline: number
  worker: number
}

/**
 * REQ backfills and COUNTs answered by worker threads reading the store. A REQ page of a requester that
 * queries alone is scanned on the event loop instead, within a budget: handing it to a worker and taking
 * the answer back costs two thread wake-ups, which on a busy machine are most of a lone client's latency,
 * while nobody else is waiting for the loop meanwhile.
 */
export class QueryPool {
  /** REQ pages answered so far, by where (tests, diagnostics). */
  readonly answered: BackfillCounts = { inline: 0, worker: 0 }
  /** Queries on the workers now. */
  private busy = 0
  /** Who started the latest query, when; and when a different requester last started one before that. */
  private latest: { requester: object | undefined; at: number } = { requester: undefined, at: -Infinity }
  private otherAt = -Infinity

  private constructor(
    private readonly pool: WorkerPool<QueryRequest, QueryResponse>,
    /** Where workers leave backfills; see slabs.ts. */
    readonly arena: SlabArena,
    private readonly inline: InlineQueries | undefined,
  ) {}

  /**
   * Starts `size` query workers (0: one per core) on the store at `path` (opened as `openOptions`), and
   * answers lone REQs inline when given.
   */
  static async start(path: string, size: number, inline?: InlineQueries, openOptions: OpenOptions = {}): Promise<QueryPool> {
    const arena = createArena(SLABS, SLAB_BYTES)
    const pool = await WorkerPool.start<QueryRequest, QueryResponse>(new URL('./query-worker.js', import.meta.url), size, { path, arena, openOptions })
    return new QueryPool(pool, openArena(arena), inline)
  }

  /**
   * Each filter's newest events as ready frames; undefined when no worker could answer. `requester` (the
   * connection) tells a lone requester from several: its page is scanned on the event loop when no query
   * is on a worker and no other requester started one in the last OTHERS_QUIET_MS, unless the scan
   * outlasts the inline budget, when a worker answers it from the start.
   */
  backfill(request: Omit<BackfillRequest, 'op'>, requester?: object): Promise<BackfillResponse | undefined> {
    const inline = this.alone(requester) ? this.answerInline(request) : undefined
    if (inline) {
      this.answered.inline++
      return Promise.resolve({ ...inline, inline: true })
    }
    this.answered.worker++
    return this.onWorker({ op: 'req', ...request }) as Promise<BackfillResponse | undefined>
  }

  /** Records a query started by `requester`; true when it queries alone (see backfill). */
  private alone(requester: object | undefined): boolean {
    const now = performance.now()
    if (requester !== this.latest.requester) [this.otherAt, this.latest] = [this.latest.at, { requester, at: now }]
    else this.latest.at = now
    return requester !== undefined && this.busy === 0 && now - this.otherAt > OTHERS_QUIET_MS
  }

  private async onWorker(request: QueryRequest): Promise<QueryResponse | undefined> {
    this.busy++
    try {
      return await this.pool.request(request)
    } finally {
      this.busy--
    }
  }

  /** The page scanned here within the budget; undefined when it did not fit (or failed: a worker tries it then). */
  private answerInline(request: Omit<BackfillRequest, 'op'>): BackfillResponse | undefined {
    if (!this.inline || this.inline.budgetMs <= 0) return undefined
    const budget = Math.min(this.inline.budgetMs, request.timeoutMs)
    let answer: BackfillResponse
    try {
      answer = answerQuery(this.inline.store, this.arena, { op: 'req', ...request, timeoutMs: budget }).body as BackfillResponse
    } catch {
      return undefined
    }
    // Stopped by the budget rather than by the request's own deadline: a worker scans it whole.
    if (answer.timedOut && budget < request.timeoutMs) {
      if (answer.slab >= 0) releaseSlab(this.arena, answer.slab)
      return undefined
    }
    return answer
  }

  /** NIP-45 count; undefined when no worker could answer. */
  count(request: Omit<CountRequest, 'op'>): Promise<CountResponse | undefined> {
    return this.onWorker({ op: 'count', ...request }) as Promise<CountResponse | undefined>
  }

  /** Stops the workers; pending queries answer undefined. */
  close(): Promise<void> {
    return this.pool.close()
  }
}
