// A fuzzed service's memory: its anonymous resident memory after a forced garbage collection, before and
// after the run. Anonymous memory (RssAnon) is the JavaScript heap and native allocations; the pages of a
// memory-mapped file (LMDB's, counted in RssFile, or RssShmem on tmpfs) are left out: they are the store's
// size, not memory the process keeps, and the kernel drops them under pressure.
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import type { ChildProcess } from 'node:child_process'
import { setTimeout as sleep } from 'node:timers/promises'

/** The preload that collects garbage on SIGUSR2 (gc-on-signal.ts): start the child with `--expose-gc --import` it. */
export const GC_PRELOAD = fileURLToPath(new URL('./gc-on-signal.js', import.meta.url))
/** Node flags that make a child's memory measurable by `settledMemory`. */
export const GC_NODE_ARGS = ['--expose-gc', '--import', GC_PRELOAD]

/**
 * glibc malloc settings for a measured child: large buffers (a 1 MiB frame) are mapped and unmapped on their
 * own instead of staying in an arena once freed, and two arenas instead of eight per core, so that the
 * anonymous RSS after a collection is what the service holds, not what its allocator kept (without them
 * the relay's growth over a run varied from 130 to 325 MiB; with them ~100).
 */
export const MEASURED_MALLOC_ENV = { MALLOC_ARENA_MAX: '2', MALLOC_MMAP_THRESHOLD_: '131072' }
const GC_DONE = 'bench: garbage collected'

/** One reading of /proc/PID/status, in MiB. */
export interface Memory {
  /** Anonymous resident memory: heap and native allocations. */
  anon: number
  /** Resident pages of mapped files and shared memory (LMDB's map, on disk or on tmpfs). */
  mapped: number
  rss: number
  /** Peak RSS so far. */
  peak: number
}

const field = (status: string, name: string): number => Number(new RegExp(`${name}:\\s+(\\d+) kB`).exec(status)?.[1] ?? NaN) / 1024

/** The process's memory now, or undefined when it is gone. */
export const memoryOf = (pid: number): Memory | undefined => {
  try {
    const s = readFileSync(`/proc/${pid}/status`, 'latin1')
    return { anon: field(s, 'RssAnon'), mapped: field(s, 'RssFile') + field(s, 'RssShmem'), rss: field(s, 'VmRSS'), peak: field(s, 'VmHWM') }
  } catch {
    return undefined
  }
}

/** Watches a child's output for the preload's "garbage collected" line. */
export class GcWatch {
  private waiters: Array<() => void> = []

  /** Feed it every log message of the child. */
  seen(message: string | undefined): void {
    if (message !== GC_DONE) return
    const waiting = this.waiters
    this.waiters = []
    for (const resolve of waiting) resolve()
  }

  /** Signals the child to collect garbage; resolves once it says it did (or after 10 s, when it cannot). */
  async collect(child: ChildProcess): Promise<boolean> {
    const done = new Promise<boolean>(resolve => this.waiters.push(() => resolve(true)))
    if (!child.kill('SIGUSR2')) return false
    return Promise.race([done, sleep(10_000, false, { ref: false })])
  }
}

/**
 * The child's memory after two full collections a moment apart (what survives them is held; freed heap
 * pages are returned between them).
 */
export const settledMemory = async (pid: number, collect: () => Promise<boolean>): Promise<Memory | undefined> => {
  for (let i = 0; i < 2; i++) {
    if (!(await collect())) return undefined
    await sleep(300)
  }
  return memoryOf(pid)
}
