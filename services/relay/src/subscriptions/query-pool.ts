import { WorkerPool } from '@msr/workers'
import { createArena, openArena, type SlabArena } from './slabs.js'
import type { BackfillRequest, BackfillResponse, CountRequest, CountResponse, QueryRequest, QueryResponse } from './query-worker.js'

/**
 * Slabs shared by all query workers. 1 MiB holds a limit-500 backfill of events up to ~2 KiB each (256 KiB,
 * the first size, overflowed on the benchmark's mix of notes, reactions and tagged 445s: each overflow
 * became a transferred 512 KiB buffer, and the event loop ran a mark-compact every ~70 ms). The memory is
 * reserved, not resident: slabs are claimed lowest first, so only as many are touched as run at once.
 */
const SLABS = 64
const SLAB_BYTES = 1024 * 1024

/** REQ backfills and COUNTs answered by worker threads reading the store. */
export class QueryPool {
  private constructor(
    private readonly pool: WorkerPool<QueryRequest, QueryResponse>,
    /** Where workers leave backfills; see slabs.ts. */
    readonly arena: SlabArena,
  ) {}

  /** Starts `size` query workers (0: one per core) on the store at `path`. */
  static async start(path: string, size: number): Promise<QueryPool> {
    const arena = createArena(SLABS, SLAB_BYTES)
    const pool = await WorkerPool.start<QueryRequest, QueryResponse>(new URL('./query-worker.js', import.meta.url), size, { path, arena })
    return new QueryPool(pool, openArena(arena))
  }

  /** Each filter's newest events as ready frames; undefined when no worker could answer. */
  backfill(request: Omit<BackfillRequest, 'op'>): Promise<BackfillResponse | undefined> {
    return this.pool.request({ op: 'req', ...request }) as Promise<BackfillResponse | undefined>
  }

  /** NIP-45 count; undefined when no worker could answer. */
  count(request: Omit<CountRequest, 'op'>): Promise<CountResponse | undefined> {
    return this.pool.request({ op: 'count', ...request }) as Promise<CountResponse | undefined>
  }

  /** Stops the workers; pending queries answer undefined. */
  close(): Promise<void> {
    return this.pool.close()
  }
}
