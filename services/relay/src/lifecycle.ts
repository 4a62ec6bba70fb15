import type { Logger } from '@msr/telemetry'
import { remaining, within } from './deadline.js'

/**
 * A part of the running relay with a life of its own (the workers, the store, snapshots, the hint
 * drainer, the expiry sweep, the listener…): started after what it needs, stopped before it.
 */
export interface Part {
  readonly name: string
  start(): void | Promise<void>
  /** Stops by `deadline` (epoch milliseconds): what is still running then is abandoned, never half-written. */
  stop(deadline: number): Promise<void>
}

/** A part whose start happened when it was created (worker pools, the store): only its stop is left. */
export const startedPart = (name: string, stop: (deadline: number) => Promise<void>): Part => ({ name, start: () => undefined, stop })

/** Least time a part gets to stop even past the deadline, so that what follows it is not closed under it. */
const LAST_CHANCE_MS = 250

/**
 * Starts parts in order and stops them in reverse order, all within one deadline. A part that fails to
 * stop, or overruns, is logged and the next one still stops.
 */
export class Lifecycle {
  private readonly started: Part[] = []

  constructor(private readonly logger: Logger) {}

  /** Starts a part; it will be stopped before every part started earlier. */
  async start(part: Part): Promise<void> {
    await part.start()
    this.started.push(part)
  }

  /** Stops every started part, newest first. */
  async stop(deadline: number): Promise<void> {
    for (const part of this.started.splice(0).reverse()) {
      const stopping = part.stop(deadline).catch((error: unknown) => this.logger.error({ err: error, part: part.name }, 'a part of the relay failed to stop'))
      if (!(await within(stopping, Math.max(remaining(deadline), LAST_CHANCE_MS))))
        this.logger.warn({ part: part.name }, 'a part of the relay did not stop by the shutdown deadline')
    }
  }
}
