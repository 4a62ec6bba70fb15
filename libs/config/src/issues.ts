// Turns zod issues into one line per problem, in words an operator fixing a TOML file or env var can use.
import type * as z from 'zod'
import { showValue, typeName } from './describe-value.js'
import { schemaAt, shapeOf } from './schema-walk.js'

/** What the formatter needs besides the issues: the schema (for key suggestions) and env var origins by dotted path. */
export type IssueContext = { schema: z.core.$ZodType; origins: ReadonlyMap<string, string> }

const EXPECTED_NAMES: Record<string, string> = { int: 'integer', object: 'table', record: 'table', tuple: 'array' }

/** Per-parse error map giving zod's built-in issues operator wording; messages set in a schema still win. */
export function operatorMessage(iss: z.core.$ZodRawIssue): string | undefined {
  switch (iss.code) {
    case 'invalid_type':
      return iss.input === undefined ? `missing required key (expected ${expectedName(iss.expected)})`
        : `expected ${expectedName(iss.expected)}, received ${typeName(iss.input)}`
    case 'invalid_value':
      return `expected ${oneOf(iss.values.map(v => showValue(v)))}, received ${showValue(iss.input)}`
    case 'too_small':
      return boundMessage(iss.origin, 'min', iss.minimum, iss.inclusive, iss.exact, iss.input)
    case 'too_big':
      return boundMessage(iss.origin, 'max', iss.maximum, iss.inclusive, iss.exact, iss.input)
    case 'invalid_union':
      return unionMessage(iss)
    case 'unrecognized_keys':
      return 'unknown key'
    default:
      return undefined
  }
}

/** One line per problem: `<path> (from <ENV_VAR>): <message>`, one line per unknown key. */
export function formatIssues(issues: readonly z.core.$ZodIssue[], ctx: IssueContext): string[] {
  return issues.flatMap(issue => formatIssue(issue, [], ctx))
}

function formatIssue(issue: z.core.$ZodIssue, base: readonly PropertyKey[], ctx: IssueContext): string[] {
  const path = [...base, ...issue.path]
  if (issue.code === 'unrecognized_keys') {
    return issue.keys.map(key => unknownKeyLine([...path, key], unknownKey(ctx.schema, path, key), ctx))
  }
  if (issue.code === 'invalid_union') {
    const branch = closestBranch(issue)
    if (branch !== undefined) return branch.flatMap(inner => formatIssue(inner, path, ctx))
  }
  return [line(path, issue.message + envHint(issue, ctx.origins.get(path.map(String).join('.'))), ctx)]
}

function line(path: readonly PropertyKey[], message: string, ctx: IssueContext): string {
  const from = origin(path, ctx)
  return `${renderPath(path)}${from === undefined ? '' : ` (from ${from})`}: ${message}`
}

/** Renders a value path as an operator writes it: `rate_limiter.event[0].freq`. */
export function renderPath(path: readonly PropertyKey[]): string {
  if (path.length === 0) return '(top level)'
  return path.map((part, i) => {
    if (typeof part === 'number') return `[${part}]`
    const key = /^[A-Za-z0-9_-]+$/.test(String(part)) ? String(part) : JSON.stringify(String(part))
    return i === 0 ? key : `.${key}`
  }).join('')
}

// An unknown table such as `netwrk` is created by the variables under it (RELAY_NETWRK__PORT): name them all.
function unknownKeyLine(path: readonly PropertyKey[], message: string, ctx: IssueContext): string {
  const dotted = path.map(String).join('.')
  const from = [...ctx.origins].filter(([key]) => key === dotted || key.startsWith(`${dotted}.`)).map(([, name]) => name)
  if (from.length === 0) return line(path, message, ctx)
  return `${renderPath(path)} (from ${from.sort().join(', ')}): ${message}`
}

// The env var that set this key or the nearest enclosing one (an array or inline table set as a whole).
function origin(path: readonly PropertyKey[], ctx: IssueContext): string | undefined {
  for (let n = path.length; n > 0; n--) {
    const found = ctx.origins.get(path.slice(0, n).map(String).join('.'))
    if (found !== undefined) return found
  }
  return undefined
}

// Env values are parsed as TOML, so `RELAY_INFO__NAME=123` is a number; say how to make it a string.
// Only for a key set directly by a variable: inside an env-set array the fix is different.
function envHint(issue: z.core.$ZodIssue, from: string | undefined): string {
  if (from === undefined || issue.code !== 'invalid_type' || issue.expected !== 'string') return ''
  return ` (environment values are read as TOML; quote a string: ${from}='"..."')`
}

function expectedName(expected: string): string {
  return EXPECTED_NAMES[expected] ?? expected
}

function oneOf(options: readonly string[]): string {
  return options.length === 1 ? (options[0] ?? '') : `one of ${options.join(', ')}`
}

// Wording for size and range limits. String contents are not echoed: the key may hold a secret.
function boundMessage(origin: string, side: 'min' | 'max', limit: number | bigint,
  inclusive: boolean | undefined, exact: boolean | undefined, input: unknown): string {
  const unit = { string: 'characters', array: 'items', set: 'items', file: 'bytes' }[origin]
  if (unit !== undefined) {
    const how = exact ? 'exactly' : side === 'min' ? 'at least' : 'at most'
    return `must have ${how} ${limit} ${unit}`
  }
  const op = side === 'min' ? (inclusive ? '>=' : '>') : (inclusive ? '<=' : '<')
  return `must be ${op} ${limit}, received ${showValue(input)}`
}

// A union where every option failed on the value's type itself: list what would have been accepted.
function unionMessage(iss: z.core.$ZodRawIssue<z.core.$ZodIssueInvalidUnion>): string | undefined {
  if (Array.isArray(iss.options) && iss.options.length > 0) {
    return `expected ${oneOf(iss.options.map(v => showValue(v)))}`
  }
  const accepted = rootExpectations(iss.errors)
  return accepted === undefined ? undefined : `expected ${accepted.join(' or ')}, received ${showValue(iss.input)}`
}

// What each option of a union expected, if every option rejected the value at its root; else undefined.
function rootExpectations(branches: readonly (readonly z.core.$ZodIssue[])[]): string[] | undefined {
  const accepted = new Set<string>()
  for (const branch of branches) {
    const only = branch[0]
    if (branch.length !== 1 || only === undefined || only.path.length > 0) return undefined
    if (only.code === 'invalid_type') accepted.add(expectedName(only.expected))
    else if (only.code === 'invalid_value') only.values.forEach(v => accepted.add(showValue(v)))
    else return undefined
  }
  return accepted.size > 0 ? [...accepted] : undefined
}

// When an option accepted the value's shape but not its contents, its issues say more than "invalid input".
function closestBranch(issue: z.core.$ZodIssueInvalidUnion): readonly z.core.$ZodIssue[] | undefined {
  if (issue.errors.length === 0 || rootExpectations(issue.errors) !== undefined) return undefined
  const shaped = issue.errors.filter(branch => branch.every(inner => inner.path.length > 0))
  return shaped.sort((a, b) => a.length - b.length)[0]
}

// "unknown key", with the nearest known key when the unknown one looks like a typo of it.
function unknownKey(schema: z.core.$ZodType, path: readonly PropertyKey[], key: string): string {
  const at = schemaAt(schema, path)
  const known = at === undefined ? [] : Object.keys(shapeOf(at) ?? {})
  const guess = nearest(key, known)
  return guess === undefined ? 'unknown key' : `unknown key (did you mean "${guess}"?)`
}

function nearest(word: string, candidates: readonly string[]): string | undefined {
  const limit = Math.min(2, Math.floor(word.length / 3))
  let best: { key: string; distance: number } | undefined
  for (const key of candidates) {
    const distance = editDistance(word, key)
    if (distance <= limit && (best === undefined || distance < best.distance)) best = { key, distance }
  }
  return best?.key
}

// Edit distance counting a swap of neighbours as one edit, the commonest typo (optimal string alignment).
function editDistance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)))
  const at = (i: number, j: number) => d[i]?.[j] ?? 0
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      let best = Math.min(at(i - 1, j) + 1, at(i, j - 1) + 1, at(i - 1, j - 1) + (a[i - 1] === b[j - 1] ? 0 : 1))
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) best = Math.min(best, at(i - 2, j - 2) + 1)
      const row = d[i]
      if (row !== undefined) row[j] = best
    }
  }
  return at(a.length, b.length)
}
