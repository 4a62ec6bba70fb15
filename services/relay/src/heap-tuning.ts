import { setFlagsFromString } from 'node:v8'

/**
 * V8 settings for a process that serves the relay (`msr-relay serve`; a host process keeps its own).
 *
 * Allocation-site pretenuring is off. V8 allocates the objects of an object or array literal straight in
 * the old generation once enough of them were seen to survive a young-generation collection. A REQ scan
 * makes such objects for each candidate event (lmdb-js's iterator results, each holding the index key
 * just read). Once V8 had tenured those sites, each result, dead but in the old generation, kept what it
 * pointed to alive through the next young collection: on the event loop of a relay answering one
 * client's REQs, about 190 KB copied and promoted per young collection and a mark-compact every half
 * second; with pretenuring off, 24 KB and one every 5 s (the scan alone, outside the relay, promoted
 * 27-37 KB). Ingest, whose objects do live long, ran at the same rate either way.
 *
 * The flag is read by V8 at each collection and at each allocation site, so setting it once the process
 * runs takes effect from then on (tested in heap-tuning.test.ts). It applies to every isolate of the
 * process, the worker threads included.
 */
export const tuneHeapForServing = (): void => {
  setFlagsFromString('--no-allocation-site-pretenuring')
}
