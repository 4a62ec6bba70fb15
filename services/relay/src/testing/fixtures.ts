// Test-only helpers shared by the unit and property tests beside the code: event makers, a seeded PRNG,
// and the naive NIP-01 oracle. Nothing outside `*.test.ts` imports this module.
import { checkEvent, computeId, type NostrEvent, type VerifiedEvent } from '@msr/nostr'
import { finalizeEvent, getPublicKey } from 'nostr-tools/pure'
import { acceptUnverified } from '../pipeline/validate.js'

/** A verified event with its canonical JSON, as the store receives it. */
export interface Ready {
  event: VerifiedEvent
  json: string
}

/** A deterministic secret key (n in 1..255). */
export const secretKey = (n: number): Uint8Array => new Uint8Array(32).fill(n)

/** The hex public key of `secretKey(n)`. */
export const publicKey = (n: number): string => getPublicKey(secretKey(n))

const ready = (raw: NostrEvent): Ready => {
  const checked = checkEvent(raw)
  if (!checked.ok) throw new Error(`fixture event refused: ${checked.reason}`)
  // Signed by nostr-tools just now: the test vouches for the signature, as an operator's --no-verify does.
  return { event: acceptUnverified(checked.value, 'operator vouched').event, json: checked.value.json }
}

/** An event signed by nostr-tools with `secretKey(n)`. */
export const signed = (n: number, template: Partial<Pick<NostrEvent, 'kind' | 'created_at' | 'tags' | 'content'>>): Ready => {
  const e = finalizeEvent({ kind: 1, created_at: 1_700_000_000, tags: [], content: '', ...template }, secretKey(n))
  return ready({ id: e.id, pubkey: e.pubkey, created_at: e.created_at, kind: e.kind, tags: e.tags, content: e.content, sig: e.sig })
}

/**
 * An event with a correct id and a placeholder signature, for bulk tests of stages after verification
 * (signing costs about 3 ms an event; nothing past the verifier looks at the signature).
 */
export const unsigned = (fields: Omit<NostrEvent, 'id' | 'sig'>): Ready =>
  ready({ ...fields, id: computeId(fields), sig: 'ee'.repeat(64) })

/** mulberry32: a small seeded PRNG, so a failing property test reproduces from its seed. */
export const mulberry32 = (seed: number): (() => number) => () => {
  seed = (seed + 0x6d2b79f5) | 0
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed)
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296
}

/** Random choices over a PRNG. */
export const chooser = (rand: () => number) => {
  const int = (n: number): number => Math.floor(rand() * n)
  const pick = <T>(items: readonly T[]): T => items[int(items.length)] as T
  const some = <T>(items: readonly T[], max: number): T[] => Array.from({ length: int(max + 1) }, () => pick(items))
  const hex = (): string => Array.from({ length: 64 }, () => '0123456789abcdef'[int(16)]).join('')
  return { int, pick, some, hex, chance: (p: number) => rand() < p }
}

/** A shuffled copy of `items` (Fisher–Yates over the PRNG), so a permutation reproduces from its seed. */
export const shuffled = <T>(rand: () => number, items: readonly T[]): T[] => {
  const copy = [...items]
  for (let i = copy.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1))
    ;[copy[i], copy[j]] = [copy[j] as T, copy[i] as T]
  }
  return copy
}

/** A filter as a client sends it (`#x` keys), before parseFilter. */
export type RawFilter = Record<string, unknown>

/** NIP-01 read literally: every present condition holds; a list holds when any of its values does. */
export const oracleMatch = (filter: RawFilter, event: NostrEvent): boolean =>
  Object.entries(filter).every(([key, value]) => {
    if (key === 'ids') return (value as string[]).some(id => id === event.id)
    if (key === 'authors') return (value as string[]).some(a => a === event.pubkey)
    if (key === 'kinds') return (value as number[]).some(k => k === event.kind)
    if (key === 'since') return event.created_at >= (value as number)
    if (key === 'until') return event.created_at <= (value as number)
    if (key.startsWith('#'))
      return event.tags.some(tag => tag.length >= 2 && tag[0] === key.slice(1) && (value as string[]).some(v => v === tag[1]))
    return true // limit is not a condition
  })

/** NIP-01 order: newest created_at first, then lowest id. */
export const oracleOrder = (a: NostrEvent, b: NostrEvent): number =>
  a.created_at !== b.created_at ? b.created_at - a.created_at : a.id < b.id ? -1 : a.id > b.id ? 1 : 0
