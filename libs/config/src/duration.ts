// Durations as operators write them ("250ms", "10s", "1h30m"), held as milliseconds.
import * as z from 'zod'
import { showValue } from './describe-value.js'
import { markDuration } from './schema-walk.js'

const UNIT_MS: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 }

/** The message shown for anything that is not a duration. */
export const DURATION_MESSAGE = 'expected a duration like "100ms", "10s", "1m", "1h"'

/** Parses "100ms", "10s", "1m", "2h", "1d", sums like "1h30m", or bare milliseconds ("250"); undefined if invalid. */
export function parseDuration(s: string): number | undefined {
  const text = s.trim()
  if (/^\d+(\.\d+)?$/.test(text)) return Number(text)
  if (text === '') return undefined
  const term = /(\d+(?:\.\d+)?)(ms|s|m|h|d)/y // sticky: terms must follow each other with nothing between
  let total = 0
  while (term.lastIndex < text.length) {
    const match = term.exec(text)
    if (match === null) return undefined
    total += Number(match[1]) * (UNIT_MS[match[2] ?? ''] ?? Number.NaN)
  }
  return Number.isFinite(total) ? total : undefined
}

// A number is taken as milliseconds; it must be usable as a timer delay.
function fromNumber(n: number): number | undefined {
  return Number.isFinite(n) && n >= 0 ? n : undefined
}

// Shows what was received so the operator can find the bad value.
function notADuration(input: unknown): string {
  return `${DURATION_MESSAGE}, received ${showValue(input)}`
}

/**
 * The longest duration a key takes unless it says otherwise: 24 days, under the largest timer delay
 * (2^31 - 1 ms, about 24.8 days), past which Node fires a timer after 1 ms instead (a relay would then
 * ping or sweep without pause).
 */
export const MAX_DURATION = '24d'

/** The range a duration key takes, as operators write durations; `min` defaults to 0, `max` to MAX_DURATION. */
export interface DurationRange {
  min?: string
  max?: string
}

/** A config key holding a duration: accepts "10s"-style strings or milliseconds, yields milliseconds within its range. */
export function duration(defaultValue: string, description: string, range: DurationRange = {}) {
  const [min, max] = [range.min ?? '0', range.max ?? MAX_DURATION]
  const [minMs, maxMs] = [parseDuration(min) ?? 0, parseDuration(max) ?? 0]
  const accepted = z.union([z.string(), z.number()], { error: iss => notADuration(iss.input) })
  const toMs = accepted.transform((v, ctx) => {
    const ms = typeof v === 'number' ? fromNumber(v) : parseDuration(v)
    if (ms === undefined) ctx.issues.push({ code: 'custom', message: notADuration(v), input: v })
    else if (ms < minMs || ms > maxMs) ctx.issues.push({ code: 'custom', message: `expected a duration from ${min} to ${max}, received ${showValue(v)}`, input: v })
    return ms ?? 0
  })
  // prefault, not default: the default "10s" must itself go through the parse to become 10000.
  return markDuration(toMs, `duration (${min}..${max})`).prefault(defaultValue).describe(description)
}
