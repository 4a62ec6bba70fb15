import type { Reason } from '@msr/nostr'

/** Who holds filter values: a connection, known by its address. */
export interface Holder {
  readonly ip: string
}

/** The budget in force (read at each REQ, so a reload applies to the next one). */
export interface FilterBudgetLimits {
  perConnection: number
  perIp: number
}

/**
 * What live subscriptions may hold: every value of their filters (ids, authors, kinds, tag values) is
 * kept in memory and filed in the live index, so their total is bounded per connection and per address.
 * A subscription reserves its values when it opens and gives them back when it closes.
 */
export class FilterBudget {
  private readonly perHolder = new Map<Holder, number>()
  private readonly perIp = new Map<string, number>()

  constructor(private readonly limits: () => FilterBudgetLimits) {}

  /**
   * Why `values` more would not fit, counting `freed` (what a subscription being replaced holds) as
   * given back; undefined when they fit. Reserves nothing.
   */
  check(holder: Holder, values: number, freed = 0): Reason | undefined {
    const { perConnection, perIp } = this.limits()
    const mine = (this.perHolder.get(holder) ?? 0) - freed
    if (mine + values > perConnection)
      return `blocked: these filters hold ${values} values and this connection's open subscriptions ${mine}; at most ${perConnection} together (close subscriptions or narrow the filters)`
    const address = (this.perIp.get(holder.ip) ?? 0) - freed
    if (address + values > perIp)
      return `blocked: the connections from your address hold ${address} filter values; at most ${perIp} together (close subscriptions or narrow the filters)`
    return undefined
  }

  /** Reserves `values` for `holder`, or says why not (nothing is reserved then). */
  reserve(holder: Holder, values: number): Reason | undefined {
    const over = this.check(holder, values)
    if (over) return over
    this.perHolder.set(holder, (this.perHolder.get(holder) ?? 0) + values)
    this.perIp.set(holder.ip, (this.perIp.get(holder.ip) ?? 0) + values)
    return undefined
  }

  /** Gives back what a closing subscription held. */
  release(holder: Holder, values: number): void {
    settle(this.perHolder, holder, values)
    settle(this.perIp, holder.ip, values)
  }

  /** Values held by one connection (for tests and metrics). */
  heldBy(holder: Holder): number {
    return this.perHolder.get(holder) ?? 0
  }

  /** Values held by all connections together. */
  get total(): number {
    let sum = 0
    for (const n of this.perIp.values()) sum += n
    return sum
  }
}

const settle = <K>(map: Map<K, number>, key: K, values: number): void => {
  const left = (map.get(key) ?? 0) - values
  if (left > 0) map.set(key, left)
  else map.delete(key)
}
