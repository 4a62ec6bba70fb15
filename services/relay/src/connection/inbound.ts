/** Messages held behind an undecided AUTH at which the socket stops being read until the AUTH is decided. */
const HOLD_AT = 256

/**
 * One connection's incoming messages, taking effect in the order they were sent. Most are handled at
 * once; a message whose handling returns a promise (AUTH, whose signature is checked on a worker) is a
 * barrier: what follows it waits until it is decided, so a REQ pipelined right behind an AUTH is judged
 * as authenticated, exactly as if the client had waited for the OK.
 */
export class InboundOrder<M> {
  private waiting: M[] | undefined

  constructor(
    /** Handles one message; a returned promise (which must not reject) holds later messages until it settles. */
    private readonly handle: (message: M) => Promise<void> | void,
    /** Asked to stop (true) or resume (false) reading the socket when many messages wait. */
    private readonly hold: (on: boolean) => void,
  ) {}

  /** Handles the message now, or queues it behind the barrier in front of it. */
  push(message: M): void {
    if (this.waiting) {
      this.waiting.push(message)
      if (this.waiting.length === HOLD_AT) this.hold(true)
      return
    }
    this.run(message)
  }

  /** Messages waiting behind a barrier. */
  get backlog(): number {
    return this.waiting?.length ?? 0
  }

  private run(message: M): void {
    const barrier = this.handle(message)
    if (!barrier) return
    this.waiting = []
    void barrier.finally(() => this.resume())
  }

  private resume(): void {
    const queued = this.waiting ?? []
    this.waiting = undefined
    if (queued.length >= HOLD_AT) this.hold(false)
    for (let i = 0; i < queued.length; i++) {
      this.run(queued[i] as M)
      if (this.waiting) {
        // Another barrier: the rest waits behind it, still in order.
        const rest = queued.slice(i + 1)
        this.waiting = rest
        if (rest.length >= HOLD_AT) this.hold(true)
        return
      }
    }
  }
}
