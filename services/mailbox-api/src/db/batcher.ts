import { context, type Context } from '@opentelemetry/api'

/** How a batcher groups calls (the defaults suit one instance; tests set their own). */
export interface BatcherOptions {
  /**
   * Statements in flight at once (default 1); calls arriving meanwhile wait and go together in the next one.
   * One keeps batches largest: at the mailbox bench's load, 1 instead of 2 took the statements per request
   * from 0.65 to 0.46 and PostgreSQL's CPU per request down by 15–20 %, at the same throughput
   * (docs/performance-log.md, seventeenth session).
   */
  concurrency?: number
  /** Most calls in one statement. */
  maxBatch?: number
  /** Called with each statement's call count (not for the one-by-one runs after a refused value). */
  onBatch?: (size: number) => void
}

interface Waiting<In, Out> {
  input: In
  /** The caller's trace context: a batch's statement runs in its first caller's. */
  context: Context
  resolve: (output: Out) => void
  reject: (error: unknown) => void
}

/** PostgreSQL refused a value (class 22: data exception) or a constraint (class 23): one input may have spoiled the batch. */
const refusedForAValue = (error: unknown): boolean => {
  const code = (error as { code?: unknown } | undefined)?.code
  return typeof code === 'string' && (code.startsWith('22') || code.startsWith('23'))
}

/**
 * Group commit for one-row statements: `run` does the work of many calls in ONE statement (one round
 * trip, one commit) and answers one output per input, in order. While `concurrency` statements are in
 * flight (one by default), calls wait and go together in the next one, so an idle instance runs each
 * call at once and a busy one sends one statement for many. Each call resolves once its statement has
 * committed. A batch PostgreSQL refuses for a value is run again one call at a time, so only the
 * culprit fails.
 */
export const createBatcher = <In, Out>(run: (inputs: In[]) => Promise<Out[]>, options: BatcherOptions = {}): ((input: In) => Promise<Out>) => {
  const concurrency = Math.max(1, options.concurrency ?? 1)
  const maxBatch = Math.max(1, options.maxBatch ?? 64)
  const queue: Array<Waiting<In, Out>> = []
  let inFlight = 0

  const settle = (batch: Array<Waiting<In, Out>>, outputs: Out[]) => {
    if (outputs.length !== batch.length) throw new Error(`a batched statement answered ${outputs.length} of ${batch.length} calls`)
    batch.forEach((w, i) => w.resolve(outputs[i] as Out))
  }

  const runBatch = async (batch: Array<Waiting<In, Out>>): Promise<void> => {
    try {
      settle(batch, await context.with((batch[0] as Waiting<In, Out>).context, () => run(batch.map(w => w.input))))
    } catch (error) {
      if (batch.length === 1 || !refusedForAValue(error)) return batch.forEach(w => w.reject(error))
      await Promise.all(batch.map(w => context.with(w.context, () => run([w.input])).then(outputs => settle([w], outputs)).catch(e => w.reject(e))))
    }
  }

  const pump = () => {
    while (inFlight < concurrency && queue.length > 0) {
      const batch = queue.splice(0, maxBatch)
      inFlight++
      options.onBatch?.(batch.length)
      void runBatch(batch).finally(() => {
        inFlight--
        pump()
      })
    }
  }

  return input =>
    new Promise<Out>((resolve, reject) => {
      queue.push({ input, context: context.active(), resolve, reject })
      pump()
    })
}
