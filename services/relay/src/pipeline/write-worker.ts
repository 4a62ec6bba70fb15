// Writer thread: owns the store's write transactions, so that LMDB's write encoding (the largest cost of
// ingest on the event loop) runs beside the event loop (see writer-thread.ts).
import { workerData } from 'node:worker_threads'
import type { OpenOptions } from '../store/databases.js'
import { EventStore } from '../store/event-store.js'
import { serveWrites } from './write-requests.js'

const { path, ...openOptions } = workerData as { path: string } & OpenOptions
serveWrites(EventStore.open(path, openOptions))
