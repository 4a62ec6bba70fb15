// Loads a service's configuration: TOML file, then environment, then overrides, validated once and frozen.
import type * as z from 'zod'
import { envEntries, overrideEntries, type Entry } from './env-overlay.js'
import { formatIssues, operatorMessage, type IssueContext } from './issues.js'
import { readTomlFile, type FileResult } from './toml-file.js'
import { deepFreeze, isTable, newTable, setPath, type Table } from './tree.js'

/** The loaded configuration and where it came from, or every problem found, one line each. */
export type ConfigResult<T> =
  | { ok: true; value: T; source: { file?: string; envKeys: string[] } }
  | { ok: false; errors: string[] }

/** Where to read configuration from and the schema it must satisfy. */
export type LoadConfigOptions<S extends z.ZodType> = {
  schema: S
  /** TOML file; a missing file counts as empty unless `fileRequired`. */
  file?: string
  fileRequired?: boolean
  /** Environment to overlay (pass `process.env`); only read when `envPrefix` is set. */
  env?: Record<string, string | undefined>
  /** `RELAY_` maps `RELAY_NETWORK__PORT` to `network.port`. */
  envPrefix?: string
  /** Dotted key paths applied last, e.g. `{ 'network.port': 8080 }`; undefined values are ignored. */
  overrides?: Record<string, unknown>
}

/** Reads file, env and overrides (later wins), validates against `schema`, and returns a deep-frozen value. */
export function loadConfig<S extends z.ZodType>(opts: LoadConfigOptions<S>): ConfigResult<z.output<S>> {
  const file: FileResult = opts.file === undefined
    ? { ok: true, table: newTable(), found: false }
    : readTomlFile(opts.file, opts.fileRequired ?? false)
  const env = opts.envPrefix === undefined ? { entries: [], errors: [] } : envEntries(opts.env ?? {}, opts.envPrefix)
  const overrides = overrideEntries(opts.overrides ?? {})
  const sourceErrors = [...env.errors, ...overrides.errors]
  // Without the file's contents, schema errors would only be noise about keys the file probably sets.
  if (!file.ok) return { ok: false, errors: [file.error, ...sourceErrors] }
  const entries = [...byDepth(env.entries), ...byDepth(overrides.entries)]
  const errors = [...sourceErrors, ...applyEntries(file.table, entries)]
  const parsed = opts.schema.safeParse(file.table, { error: operatorMessage })
  if (!parsed.success) {
    const ctx = { schema: opts.schema, origins: originsOf(entries) }
    const found = formatIssues(parsed.error.issues, ctx)
    errors.push(...found, ...crossFieldIssues(opts.schema, file.table, parsed.error.issues, ctx).filter(line => !found.includes(line)))
  }
  if (errors.length > 0 || !parsed.success) return { ok: false, errors }
  const envKeys = env.entries.map(e => e.origin ?? '').sort()
  return { ok: true, value: deepFreeze(parsed.data), source: { ...(file.found ? { file: opts.file } : {}), envKeys } }
}

// A whole table (RELAY_NETWORK='{ port = 1 }') goes in before the keys inside it (RELAY_NETWORK__PORT), which refine it.
function byDepth(entries: readonly Entry[]): Entry[] {
  return [...entries].sort((a, b) => a.path.length - b.path.length || a.path.join('.').localeCompare(b.path.join('.')))
}

function applyEntries(root: Table, entries: readonly Entry[]): string[] {
  const errors: string[] = []
  for (const entry of entries) {
    const problem = setPath(root, entry.path, entry.value)
    if (problem !== undefined) errors.push(`${entry.origin ?? `override "${entry.path.join('.')}"`}: ${problem}`)
  }
  return errors
}

// Dotted path to env var name, so messages can say which variable to fix. Overrides have no origin to name.
function originsOf(entries: readonly Entry[]): Map<string, string> {
  const origins = new Map<string, string>()
  for (const entry of entries) {
    if (entry.origin !== undefined) origins.set(entry.path.join('.'), entry.origin)
    else origins.delete(entry.path.join('.'))
  }
  return origins
}

/**
 * A schema's cross-field rules (its refinements) only run on an otherwise valid value. So that one run
 * lists every problem, the value is validated again with each key already reported taken out (its
 * default applies, or its absence is reported again: filtered by the caller) and the rules' findings added.
 */
function crossFieldIssues(schema: z.ZodType, table: Table, issues: readonly z.core.$ZodIssue[], ctx: IssueContext): string[] {
  let current = table
  let pending = issues
  for (let round = 0; round < 3; round++) {
    current = withoutPaths(current, pending)
    const again = schema.safeParse(current, { error: operatorMessage })
    if (again.success) return []
    const structural = again.error.issues.filter(issue => issue.code !== 'custom')
    if (structural.length === 0) return formatIssues(again.error.issues, ctx)
    pending = structural
  }
  return []
}

/** A copy of `table` without the keys the issues point at (an unknown key, or a key whose value is refused). */
function withoutPaths(table: Table, issues: readonly z.core.$ZodIssue[]): Table {
  const copy = structuredClone(table)
  for (const issue of issues) {
    const paths = issue.code === 'unrecognized_keys' ? issue.keys.map(key => [...issue.path, key]) : [issue.path]
    for (const path of paths) removePath(copy, path.map(String))
  }
  return copy
}

/** Deletes the key at `path`; a path into an array deletes the key holding the array. */
function removePath(root: Table, path: readonly string[]): void {
  let table: Table = root
  for (const [i, key] of path.entries()) {
    const value = table[key]
    if (i === path.length - 1 || !isTable(value)) return void delete table[key]
    table = value
  }
}
