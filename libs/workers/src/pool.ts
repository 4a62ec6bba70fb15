import { availableParallelism } from 'node:os'
import { Worker, type Transferable } from 'node:worker_threads'

/** An envelope between the pool and a worker: requests and answers are matched by `seq`. */
export interface Envelope<T> {
  seq: number
  body: T
}

interface Slot {
  worker: Worker
  pending: Map<number, (answer: unknown) => void>
}

/**
 * A fixed set of worker threads running the same module. Requests go to the least busy worker;
 * a worker that dies is replaced, and whatever it held is answered `undefined` so no caller hangs.
 * After `close()` every request is answered `undefined` at once.
 */
export class WorkerPool<Req, Res> {
  private seq = 0
  private closing = false
  private waiting: Array<{ body: Req; transfer: Transferable[]; resolve: (answer: Res | undefined) => void }> = []

  private constructor(
    private readonly module: URL,
    private readonly workerData: unknown,
    private readonly slots: Slot[],
    /** What each worker reported when it became ready (e.g. the verifier in use). */
    readonly info: unknown,
  ) {}

  /** Starts `size` workers (0: one per core) of `module`, each first posting its ready message. */
  static async start<Req, Res>(module: URL, size: number, workerData: unknown): Promise<WorkerPool<Req, Res>> {
    const count = size > 0 ? size : availableParallelism()
    const first = await spawn(module, workerData)
    const pool = new WorkerPool<Req, Res>(module, workerData, [first.slot], first.info)
    pool.watch(first.slot)
    for (let i = 1; i < count; i++) pool.add((await spawn(module, workerData)).slot)
    return pool
  }

  /** Number of live workers. */
  get size(): number {
    return this.slots.length
  }

  /** Sends a request to the least busy worker; `undefined` when no worker could answer it. */
  request(body: Req, transfer: Transferable[] = []): Promise<Res | undefined> {
    if (this.closing) return Promise.resolve(undefined)
    return new Promise(resolve => {
      const slot = this.leastBusy()
      if (!slot) return void this.waiting.push({ body, transfer, resolve })
      this.post(slot, body, transfer, resolve)
    })
  }

  /** Stops every worker; pending requests are answered `undefined`. */
  async close(): Promise<void> {
    this.closing = true
    for (const { resolve } of this.waiting.splice(0)) resolve(undefined)
    for (const slot of this.slots) failAll(slot)
    await Promise.all(this.slots.map(s => s.worker.terminate()))
  }

  private post(slot: Slot, body: Req, transfer: Transferable[], resolve: (answer: Res | undefined) => void): void {
    const seq = this.seq++
    slot.pending.set(seq, resolve as (answer: unknown) => void)
    slot.worker.postMessage({ seq, body } satisfies Envelope<Req>, transfer)
  }

  private leastBusy(): Slot | undefined {
    let best: Slot | undefined
    for (const slot of this.slots) if (!best || slot.pending.size < best.pending.size) best = slot
    return best
  }

  private add(slot: Slot): void {
    this.slots.push(slot)
    this.watch(slot)
    for (const { body, transfer, resolve } of this.waiting.splice(0)) this.post(slot, body, transfer, resolve)
  }

  private watch(slot: Slot): void {
    slot.worker.on('message', ({ seq, body }: Envelope<Res>) => {
      const resolve = slot.pending.get(seq)
      slot.pending.delete(seq)
      resolve?.(body)
    })
    slot.worker.on('error', () => undefined) // an 'exit' always follows; it is handled there
    slot.worker.once('exit', () => void this.replace(slot).catch(() => this.replaceFailed()))
  }

  /** A successor could not start: with no worker left, waiting requests are answered now; retry soon. */
  private replaceFailed(): void {
    if (this.slots.length === 0) for (const { resolve } of this.waiting.splice(0)) resolve(undefined)
    if (this.closing) return
    setTimeout(() => {
      if (this.closing) return
      spawn(this.module, this.workerData).then(
        ({ slot }) => (this.closing ? void slot.worker.terminate() : this.add(slot)),
        () => this.replaceFailed(),
      )
    }, 1000).unref()
  }

  /** Takes a dead worker out at once (nothing more goes to it), answers what it held, starts a successor. */
  private async replace(dead: Slot): Promise<void> {
    failAll(dead)
    const index = this.slots.indexOf(dead)
    if (index < 0 || this.closing) return
    this.slots.splice(index, 1)
    const { slot } = await spawn(this.module, this.workerData)
    if (this.closing) return void slot.worker.terminate()
    this.add(slot)
  }
}

const spawn = (module: URL, workerData: unknown): Promise<{ slot: Slot; info: unknown }> =>
  new Promise((resolve, reject) => {
    const worker = new Worker(module, { workerData })
    worker.once('error', reject)
    worker.once('message', (info: unknown) => {
      worker.off('error', reject)
      resolve({ slot: { worker, pending: new Map() }, info })
    })
  })

const failAll = (slot: Slot): void => {
  for (const resolve of slot.pending.values()) resolve(undefined)
  slot.pending.clear()
}
