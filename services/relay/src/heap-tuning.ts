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
 * Young collections run on the collecting thread alone (no parallel scavenge). V8 splits a scavenge
 * between the collecting thread and helper threads, and the collecting thread waits for them all. Under
 * load the relay's own threads (event loop, verifiers, writer, query workers) already fill the cores (2
 * on Cloud Run, infra/terraform/services.tf), so a helper often waits for a core while the event loop
 * waits for the helper. On 2 cores (docs/performance-log.md, eighteenth session) the event loop's young
 * collections during 7,000 one-connection REQs took 168-197 ms with helpers and 72-80 ms without (four
 * pairs), and on 1,000,000 events their p90 pause fell from 4.8-14 ms to 2.1-2.5 ms; ingest, REQ and
 * fan-out rates and percentiles did not move beyond the run-to-run spread.
 *
 * Both flags are read by V8 at each collection (and pretenuring at each allocation site), so setting them
 * once the process runs takes effect from then on (tested in heap-tuning.test.ts). They apply to every
 * isolate of the process, the worker threads included.
 */
export const tuneHeapForServing = (): void => {
  setFlagsFromString('--no-allocation-site-pretenuring')
  setFlagsFromString('--no-parallel-scavenge')
}
