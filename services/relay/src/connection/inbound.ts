/** What an `InboundOrder` does with a connection's messages. */
export interface InboundHandler<C, M> {
  /** Handles one message; a returned promise (which must not reject) holds later messages until it settles. */
  handle(context: C, message: M): Promise<void> | void
  /** Asked to stop (true) or resume (false) reading the socket when many messages wait. */
  hold(context: C, on: boolean): void
}

/** Messages held behind an undecided AUTH at which the socket stops being read until the AUTH is decided. */
const HOLD_AT = 256

/**
 * One connection's incoming messages, taking effect in the order they were sent. Most are handled at
 * once; a message whose handling returns a promise (AUTH, whose signature is checked on a worker) is a
 * barrier: what follows it waits until it is decided, so a REQ pipelined right behind an AUTH is judged
 * as authenticated, exactly as if the client had waited for the OK.
 */
export class InboundOrder<C, M> {
  private waiting: M[] | undefined

  /**
   * `handler` is shared by every connection (a closure per connection would cost memory for as long as it
   * is open); `context` is this connection's, passed back to it.
   */
  constructor(
    private readonly context: C,
    private readonly handler: InboundHandler<C, M>,
  ) {}

  /** Handles the message now, or queues it behind the barrier in front of it. */
  push(message: M): void {
    if (this.waiting) {
      this.waiting.push(message)
      if (this.waiting.length === HOLD_AT) this.handler.hold(this.context, true)
      return
    }
    this.run(message)
  }

  /** Messages waiting behind a barrier. */
  get backlog(): number {
    return this.waiting?.length ?? 0
  }

  private run(message: M): void {
    const barrier = this.handler.handle(this.context, message)
    if (!barrier) return
    this.waiting = []
    void barrier.finally(() => this.resume())
  }

  private resume(): void {
    const queued = this.waiting ?? []
    this.waiting = undefined
    if (queued.length >= HOLD_AT) this.handler.hold(this.context, false)
    for (let i = 0; i < queued.length; i++) {
      this.run(queued[i] as M)
      if (this.waiting) {
        // Another barrier: the rest waits behind it, still in order.
        const rest = queued.slice(i + 1)
        this.waiting = rest
        if (rest.length >= HOLD_AT) this.handler.hold(this.context, true)
        return
      }
    }
  }
}
