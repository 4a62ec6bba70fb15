// What the relay and mailbox fuzzers share: a seeded random source, hostile strings and values, the
// flags (--seed, a count, --max-seconds, --cli), findings that keep the smallest input of each kind, and
// the report's rows. Each fuzzer keeps its own inputs, oracle and driver.
import { randomInt } from 'node:crypto'
import { parseArgs } from 'node:util'
import { count } from './options.js'

/** A seeded source of choices: the same seed gives the same sequence of inputs. */
export interface Random {
  /** A float in [0, 1). */
  next(): number
  /** An integer in [0, n). */
  below(n: number): number
  /** An integer in [min, max]. */
  between(min: number, max: number): number
  chance(p: number): boolean
  pick<T>(items: readonly T[]): T
  /** One of the values, drawn by weight. */
  weighted<T>(choices: ReadonlyArray<readonly [weight: number, value: T]>): T
  bytes(n: number): Buffer
  /** `n` random bytes as lowercase hex. */
  hex(n: number): string
  /** A new source for a sub-task (a connection, a lane), independent of later draws here. */
  fork(): Random
}

/** sfc32 seeded from one 32-bit number (fast, good enough for input generation; not for secrets). */
export const seededRandom = (seed: number): Random => {
  let [a, b, c, d] = [0x9e3779b9, 0x243f6a88, 0xb7e15162, seed >>> 0]
  const next = (): number => {
    a >>>= 0
    b >>>= 0
    c >>>= 0
    d >>>= 0
    const t = (((a + b) | 0) + d) | 0
    d = (d + 1) | 0
    a = b ^ (b >>> 9)
    b = (c + (c << 3)) | 0
    c = (c << 21) | (c >>> 11)
    c = (c + t) | 0
    return (t >>> 0) / 4294967296
  }
  for (let i = 0; i < 16; i++) next()
  const below = (n: number): number => Math.floor(next() * n)
  const random: Random = {
    next,
    below,
    between: (min, max) => min + below(max - min + 1),
    chance: p => next() < p,
    pick: items => items[below(items.length)] as (typeof items)[number],
    weighted: choices => {
      let roll = next() * choices.reduce((sum, [w]) => sum + w, 0)
      for (const [w, value] of choices) if ((roll -= w) < 0) return value
      return (choices[choices.length - 1] as (typeof choices)[number])[1]
    },
    bytes: n => Buffer.from(Array.from({ length: n }, () => below(256))),
    hex: n => random.bytes(n).toString('hex'),
    fork: () => seededRandom(below(2 ** 32)),
  }
  return random
}

/** Strings that broke or could break a parser, a database or a log line. */
const HOSTILE = [
  '',
  ' ',
  '\0',
  'a\0b',
  '\ud800',
  '\udfff',
  'x\ud800y',
  '\udc00\ud800',
  '\ud83d',
  '😀',
  'é',
  '\u202e',
  '\ufeff',
  '\u2028',
  '\r\n',
  '\\',
  '"',
  '%00',
  '%ED%A0%80',
  '../../../etc/passwd',
  "' OR 1=1 --",
  '${jndi:ldap://x}',
  '<script>alert(1)</script>',
  'null',
  '-1',
  '1e309',
  '0x10',
  '__proto__',
  'constructor',
]

/** A hostile string: one of the classics, a long run, or a mix (lengths up to `maxLength`). */
export const hostileText = (random: Random, maxLength = 100_000): string =>
  random.weighted<() => string>([
    [6, () => random.pick(HOSTILE)],
    [2, () => random.pick(HOSTILE) + random.pick(HOSTILE) + random.pick(HOSTILE)],
    [1, () => random.pick(['A', '\0', '\ud800', 'é', '😀']).repeat(random.between(1, Math.max(1, maxLength / 4)))],
    [1, () => 'x'.repeat(random.pick([255, 256, 257, 1024, 4096, maxLength].filter(n => n <= maxLength)))],
  ])()

/** A JSON value of an arbitrary type: what a parser gets where it expected something else. */
export const wrongValue = (random: Random): unknown =>
  random.weighted<() => unknown>([
    [3, () => random.pick([null, true, false, 0, -1, 1.5, -0, 1e308, 2 ** 53, -(2 ** 53), 4294967296])],
    [3, () => hostileText(random, 2000)],
    [1, () => random.pick([[], [[]], [null], ['x'], {}, { a: 1 }, { '': '' }, { __proto__: null }])],
    [1, () => JSON.parse('['.repeat(500) + ']'.repeat(500)) as unknown],
    [1, () => Array.from({ length: random.pick([100, 10_000]) }, (_, i) => i)],
  ])()

/** A value for a report: JSON-escaped (control characters and lone surrogates visible), at most `max` characters. */
export const clip = (value: string | Buffer, max = 160): string => {
  const text = typeof value === 'string' ? value : value.toString('utf8', 0, Math.min(value.length, 4 * max))
  const size = typeof value === 'string' ? Buffer.byteLength(value) : value.length
  const shown = JSON.stringify(text.slice(0, max))
  return text.length > max || size > 4 * max ? `${shown.slice(0, -1)}…" (${size.toLocaleString('en-US')} bytes)` : shown
}

/** A failure the fuzzer found, grouped by kind: how often, and the smallest input that showed it. */
interface Finding {
  count: number
  size: number
  input: string
  detail: string
}

/** The failures of a run; each kind keeps its smallest input (by size). */
export class Findings {
  private readonly byKind = new Map<string, Finding>()

  /** Records one failure of `kind`, caused by an input of `size` bytes described (already clipped) by `input`. */
  add(kind: string, size: number, input: string, detail = ''): void {
    const known = this.byKind.get(kind)
    if (!known) return void this.byKind.set(kind, { count: 1, size, input, detail })
    known.count++
    if (size < known.size) Object.assign(known, { size, input, detail })
  }

  /** Failures recorded, all kinds together. */
  get total(): number {
    return [...this.byKind.values()].reduce((sum, f) => sum + f.count, 0)
  }

  /** Kinds in the order first seen. */
  entries(): Array<[string, Finding]> {
    return [...this.byKind.entries()]
  }
}

/** What both fuzzers take: the seed, how many inputs, the time cap, the CLI under test, and their own flags. */
export interface FuzzArgs {
  seed: number
  count: number
  maxSeconds: number
  cli: string | undefined
  flags: Record<string, boolean | undefined>
  /** The fuzzer's own valued options, as given. */
  values: Record<string, string | undefined>
}

/** Parses `--seed N`, `--<countFlag> N`, `--max-seconds N`, `--cli PATH`, the fuzzer's boolean flags and valued options; a missing seed is drawn and printed. */
export const parseFuzzArgs = (argv: string[], countFlag: string, defaultCount: number, booleans: string[] = [], strings: string[] = []): FuzzArgs => {
  const { values } = parseArgs({
    args: argv,
    options: {
      seed: { type: 'string' },
      [countFlag]: { type: 'string' },
      'max-seconds': { type: 'string' },
      cli: { type: 'string' },
      ...Object.fromEntries(booleans.map(b => [b, { type: 'boolean' as const }])),
      ...Object.fromEntries(strings.map(o => [o, { type: 'string' as const }])),
    },
  })
  const raw = values as Record<string, string | boolean | undefined>
  const seedText = raw.seed as string | undefined
  const seed = seedText === undefined ? randomInt(2 ** 31) : Number(seedText)
  if (!Number.isSafeInteger(seed) || seed < 0 || seed >= 2 ** 32) throw new Error(`--seed must be an integer in [0, 2^32), not "${seedText}"`)
  const maxSeconds = raw['max-seconds'] === undefined ? 180 : count('max-seconds', raw['max-seconds'] as string)
  const n = raw[countFlag] === undefined ? defaultCount : count(countFlag, raw[countFlag] as string)
  return { seed, count: n, maxSeconds, cli: raw.cli as string | undefined, flags: Object.fromEntries(booleans.map(b => [b, raw[b] as boolean | undefined])), values: Object.fromEntries(strings.map(o => [o, raw[o] as string | undefined])) }
}

/** Whether a process still runs (signal 0 only asks). */
export const isAlive = (pid: number): boolean => {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

/** Prints one report row: a label column, then the text. */
export const fuzzRow = (label: string, text: string): void => console.log(`  ${label.padEnd(12)}${text}`)

/** Prints the findings (kind, count, smallest input) and a verdict line; returns the number of failures. */
export const printFindings = (findings: Findings, what: string): number => {
  for (const [kind, f] of findings.entries()) {
    fuzzRow('FAIL', `${f.count.toLocaleString('en-US')} × ${kind}`)
    fuzzRow('', `  smallest input (${f.size.toLocaleString('en-US')} bytes): ${f.input}`)
    if (f.detail) fuzzRow('', `  ${f.detail}`)
  }
  fuzzRow('verdict', findings.total === 0 ? `PASS: ${what}` : `FAIL: ${findings.total.toLocaleString('en-US')} failed checks`)
  return findings.total
}

/** Counts by label (answers by prefix, statuses, close codes), printed as `label n, label n`. */
export class Counter {
  private readonly counts = new Map<string, number>()

  add(label: string, n = 1): void {
    this.counts.set(label, (this.counts.get(label) ?? 0) + n)
  }

  get(label: string): number {
    return this.counts.get(label) ?? 0
  }

  /** Labels by descending count: `a 12, b 3`; '' when empty. */
  text(limit = 24): string {
    const sorted = [...this.counts.entries()].sort((x, y) => y[1] - x[1])
    const shown = sorted.slice(0, limit).map(([label, n]) => `${label} ${n.toLocaleString('en-US')}`)
    return sorted.length > limit ? `${shown.join(', ')}, … (${sorted.length - limit} more)` : shown.join(', ')
  }
}
