// Worker thread: answers REQ backfills and COUNTs from its own read view of the LMDB store, so that
// scanning and frame building run beside the event loop instead of on it.
import { workerData } from 'node:worker_threads'
import { serveRequests } from '@msr/workers'
import type { OpenOptions } from '../store/databases.js'
import { EventStore } from '../store/event-store.js'
import { answerQuery, type QueryRequest, type QueryResponse } from './query-engine.js'
import { openArena, type SlabArenaInit } from './slabs.js'

const init = workerData as { path: string; arena: SlabArenaInit; openOptions: OpenOptions }
const store = EventStore.open(init.path, init.openOptions)
const arena = openArena(init.arena)

serveRequests<QueryRequest, QueryResponse>('query', request => answerQuery(store, arena, request))
