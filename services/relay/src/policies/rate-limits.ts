import type { NostrEvent, Reason } from '@msr/nostr'
import { RateLimiterMemory, RateLimiterRes } from 'rate-limiter-flexible'
import type { RelayConfig } from '../config.js'
import { ipSet, type IpSet } from './ip.js'
import type { Peer } from './access.js'

/** One `[[rate_limiter.event]]` rule, compiled. */
interface EventRule {
  name: string
  reason: Reason
  covers: (kind: number) => boolean
  /** Counted per value of this tag (e.g. `h`: per MLS group) instead of per client IP and pubkey. */
  perTag: string | undefined
  exempt: IpSet
  limiter: RateLimiterMemory
}

/** The `[rate_limiter]` section, compiled once (rebuilt, with fresh counters, when the configuration reloads). */
export interface RateLimits {
  /** Counts an event against every rule covering its kind, per client IP and per authenticated pubkey. */
  checkEvent(event: NostrEvent, peer: Peer): Promise<{ reason: Reason; rule: string } | undefined>
  /** Counts a REQ or COUNT of a connection (key: its id). */
  checkRequest(connectionId: string): Promise<Reason | undefined>
  /** Open connections allowed per IP (0: no limit). */
  readonly maxConnectionsPerIp: number
}

const covering = (kinds: ReadonlyArray<number | readonly [number, number]>) => (kind: number): boolean =>
  kinds.length === 0 || kinds.some(k => (typeof k === 'number' ? k === kind : kind >= k[0] && kind <= k[1]))

/** Consumes one point; false when the key is over its limit. Other errors are bugs and are thrown. */
const take = async (limiter: RateLimiterMemory, key: string): Promise<boolean> => {
  try {
    await limiter.consume(key)
    return true
  } catch (rejection) {
    if (rejection instanceof RateLimiterRes) return false
    throw rejection
  }
}

/**
 * The budgets an event draws on under a per-tag rule: one per distinct value of that tag (an MLS group's
 * `h`). Every value is charged, since the event is delivered to the subscribers of each; so an event naming
 * more than a few is refused outright (charging only some would let decoy values carry it past a spent
 * budget, and charging hundreds would make one event a cheap way to spend many budgets).
 */
const tagKeys = (event: NostrEvent, tag: string): string[] => [...new Set(event.tags.filter(t => t[0] === tag && typeof t[1] === 'string').map(t => `tag:${tag}:${t[1]}`))]

/** The most distinct values of its tag an event may name under a per-tag rule (a Marmot group message names one). */
export const MAX_TAG_KEYS = 4

/** Compiles the `[rate_limiter]` section. */
export const compileRateLimits = (config: RelayConfig['rate_limiter']): RateLimits => {
  const rules: EventRule[] = config.event.map(rule => ({
    name: rule.name,
    perTag: rule.per_tag,
    reason: `rate-limited: ${rule.description || rule.name}`,
    covers: covering(rule.kinds),
    exempt: ipSet(rule.ip_whitelist),
    limiter: new RateLimiterMemory({ points: rule.limit, duration: Math.max(rule.period / 1000, 0.001) }),
  }))
  const requests = config.req_per_minute > 0 ? new RateLimiterMemory({ points: config.req_per_minute, duration: 60 }) : undefined
  return {
    maxConnectionsPerIp: config.enabled ? config.max_connections_per_ip : 0,
    async checkEvent(event, peer) {
      if (!config.enabled) return undefined
      for (const rule of rules) {
        if (!rule.covers(event.kind) || rule.exempt.has(peer.ip)) continue
        const keys = rule.perTag === undefined ? [`ip:${peer.ip}`, ...[...peer.authed].map(p => `pubkey:${p}`)] : tagKeys(event, rule.perTag)
        if (rule.perTag !== undefined && keys.length > MAX_TAG_KEYS)
          return { reason: `blocked: an event counted per "${rule.perTag}" value may name at most ${MAX_TAG_KEYS} of them`, rule: rule.name }
        for (const key of keys) if (!(await take(rule.limiter, key))) return { reason: rule.reason, rule: rule.name }
      }
      return undefined
    },
    async checkRequest(connectionId) {
      if (!config.enabled || !requests || (await take(requests, connectionId))) return undefined
      return `rate-limited: at most ${config.req_per_minute} REQ/COUNT per minute per connection`
    },
  }
}
