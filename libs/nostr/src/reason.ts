/** The machine-readable prefixes NIP-01 and NIP-42 allow in OK and CLOSED messages. */
export type Prefix =
  | 'duplicate'
  | 'pow'
  | 'blocked'
  | 'rate-limited'
  | 'invalid'
  | 'restricted'
  | 'auth-required'
  | 'error'

/** A prefixed, human-readable explanation, e.g. `invalid: bad signature`. */
export type Reason = `${Prefix}: ${string}`

/** The outcome of a protocol-edge operation: a value, or a prefixed reason. */
export type Result<T> = { ok: true; value: T } | { ok: false; reason: Reason }

/** Wraps a value as a successful Result. */
export const ok = <T>(value: T): Result<T> => ({ ok: true, value })

/** Wraps a reason as a failed Result. */
export const fail = <T = never>(reason: Reason): Result<T> => ({ ok: false, reason })

/** The prefix of a reason (the part before the first colon). */
export const prefixOf = (reason: Reason): Prefix => reason.slice(0, reason.indexOf(':')) as Prefix
