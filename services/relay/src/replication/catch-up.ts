import type { Logger } from '@msr/telemetry'

/** How often the quiet period is checked. */
const CHECK_MS = 100

/** What the catch-up reads from the subscriber. */
export interface CatchUpDeps {
  /** Messages being applied now. */
  applying: () => number
  logger: Logger
  /** Called with the backlog received so far, at each backlog message while catching up. */
  onCatchingUp: (backlog: number) => void
  /** Called once, when caught up. */
  onCaughtUp: (seconds: number, backlog: number) => void
}

/**
 * When a replica has caught up with the topic. Pub/Sub has no "end of backlog" marker, so: caught up once
 * no message published before the subscriber started (the backlog, a seek's replay included) has arrived
 * for `quietMs`, and none is being applied. Messages published since are live traffic and do not count.
 * Until then /readyz answers 503 and no snapshot is written (it would miss what the others hold).
 */
export class CatchUp {
  private startedAt = 0
  private lastBacklogAt = 0
  private backlog = 0
  private done = false
  private timer: NodeJS.Timeout | undefined
  private readonly waiters: Array<() => void> = []

  constructor(
    private readonly deps: CatchUpDeps,
    private readonly quietMs: number,
  ) {}

  /** Whether the replica has caught up. */
  get caughtUp(): boolean {
    return this.done
  }

  /** Resolves once caught up. */
  reached(): Promise<void> {
    return this.done ? Promise.resolve() : new Promise(resolve => this.waiters.push(resolve))
  }

  /** The subscriber starts pulling now: the quiet period starts too. */
  start(now = Date.now()): void {
    this.startedAt = this.lastBacklogAt = now
    this.timer = setInterval(() => this.check(), CHECK_MS)
    this.timer.unref()
  }

  /** A message arrived; `publishedAt` is when the bus accepted it (epoch milliseconds). */
  received(publishedAt: number, now = Date.now()): void {
    if (this.done || publishedAt >= this.startedAt) return
    this.backlog++
    this.lastBacklogAt = now
    this.deps.onCatchingUp(this.backlog)
  }

  stop(): void {
    clearInterval(this.timer)
  }

  private check(now = Date.now()): void {
    if (this.done || now - this.lastBacklogAt < this.quietMs || this.deps.applying() > 0) return
    this.done = true
    this.stop()
    const seconds = (now - this.startedAt) / 1000
    this.deps.onCaughtUp(seconds, this.backlog)
    this.deps.logger.info({ seconds, backlog: this.backlog, quietMs: this.quietMs }, 'replication caught up; ready')
    for (const resolve of this.waiters.splice(0)) resolve()
  }
}
