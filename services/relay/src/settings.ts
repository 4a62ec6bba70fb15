import type { RelayConfig } from './config.js'
import { compileAccess, type AccessRules } from './policies/access.js'
import { compileRateLimits, type RateLimits } from './policies/rate-limits.js'

/** The configuration in force and what is compiled from it, swapped whole on reload. */
export interface Current {
  config: RelayConfig
  access: AccessRules
  limits: RateLimits
}

/** Keys that apply without a restart; every other change is reported as needing one. */
const RELOADABLE_SECTIONS = ['information', 'limitation', 'count', 'auth', 'rate_limiter', 'metrics', 'admin'] as const
const RELOADABLE_NETWORK_KEYS = ['public_url', 'trusted_proxies'] as const
const RELOADABLE_DATA_KEYS = ['max_size'] as const

/** What a reload did. */
export interface ReloadOutcome {
  /** Dotted keys whose new value is now in force. */
  applied: string[]
  /** Dotted keys that changed in the file but keep their old value until the relay restarts. */
  restartRequired: string[]
}

/** Compiles a configuration; rate limiters (and their counters) are kept when `[rate_limiter]` is unchanged. */
const compile = (config: RelayConfig, previous?: Current): Current => ({
  config,
  access: compileAccess(config),
  limits:
    previous && changedKeys(previous.config.rate_limiter, config.rate_limiter).length === 0
      ? previous.limits
      : compileRateLimits(config.rate_limiter),
})

/** The live configuration. Readers take `current` at the moment they need it. */
export class Settings {
  private state: Current
  private readonly listeners: Array<(applied: readonly string[]) => void> = []

  constructor(config: RelayConfig) {
    this.state = compile(config)
  }

  /** The configuration in force now. */
  get current(): Current {
    return this.state
  }

  /** Puts a validated configuration in force: reloadable keys at once, the rest only reported. */
  reload(next: RelayConfig): ReloadOutcome {
    const old = this.state.config
    const effective: RelayConfig = {
      ...old,
      ...Object.fromEntries(RELOADABLE_SECTIONS.map(s => [s, next[s]])),
      network: { ...old.network, ...Object.fromEntries(RELOADABLE_NETWORK_KEYS.map(k => [k, next.network[k]])) },
      data: { ...old.data, ...Object.fromEntries(RELOADABLE_DATA_KEYS.map(k => [k, next.data[k]])) },
    } as RelayConfig
    const changed = changedKeys(old, next)
    const applied = changedKeys(old, effective)
    this.state = compile(effective, this.state)
    if (applied.length > 0) for (const listener of this.listeners) listener(applied)
    return { applied, restartRequired: changed.filter(k => !applied.includes(k)) }
  }

  /** Calls `listener` with the applied keys after every reload that applied any. */
  onReload(listener: (applied: readonly string[]) => void): void {
    this.listeners.push(listener)
  }
}

/** Dotted paths of the leaves that differ between two configurations. */
export const changedKeys = (a: unknown, b: unknown, path = ''): string[] => {
  if (isTable(a) && isTable(b)) {
    const keys = new Set([...Object.keys(a), ...Object.keys(b)])
    return [...keys].flatMap(k => changedKeys(a[k], b[k], path ? `${path}.${k}` : k))
  }
  return JSON.stringify(a) === JSON.stringify(b) ? [] : [path]
}

const isTable = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v)
