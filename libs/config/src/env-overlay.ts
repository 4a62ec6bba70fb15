// Environment variables and programmatic overrides as key paths, applied over the file.
import { parse } from 'smol-toml'

/** One value to set in the config tree, and where it came from (an env var name) for error messages. */
export type Entry = { path: string[]; value: unknown; origin?: string }

/** The key paths and values of every env var starting with `prefix`, plus errors for malformed names. */
export function envEntries(env: Record<string, string | undefined>, prefix: string): { entries: Entry[]; errors: string[] } {
  const entries: Entry[] = []
  const errors: string[] = []
  for (const [name, raw] of Object.entries(env)) {
    if (!name.startsWith(prefix) || raw === undefined) continue
    const path = name.slice(prefix.length).toLowerCase().split('__')
    if (path.some(part => part === '')) errors.push(`${name}: empty key in variable name (keys are separated by exactly "__")`)
    else entries.push({ path, value: parseEnvValue(raw), origin: name })
  }
  return { entries, errors }
}

/** Reads an env value as a TOML value (`9000`, `true`, `["a"]`, `"x"`), falling back to the raw string. */
export function parseEnvValue(raw: string): unknown {
  try {
    const parsed = parse(`v = ${raw}`)
    // A value smuggling a newline and more keys is not one TOML value; keep it as text.
    return Object.keys(parsed).length === 1 ? parsed['v'] : raw
  } catch {
    return raw
  }
}

/** Dotted-key overrides (`{ 'network.port': 8080 }`) as entries; undefined values are skipped. */
export function overrideEntries(overrides: Record<string, unknown>): { entries: Entry[]; errors: string[] } {
  const entries: Entry[] = []
  const errors: string[] = []
  for (const [key, value] of Object.entries(overrides)) {
    if (value === undefined) continue
    const path = key.split('.')
    if (path.some(part => part === '')) errors.push(`override "${key}": empty key in dotted path`)
    else entries.push({ path, value })
  }
  return { entries, errors }
}

/** The env var that sets a key path: `envName('RELAY_', ['auth', 'req'])` is `RELAY_AUTH__REQ`. */
export function envName(prefix: string, path: readonly string[]): string {
  return prefix + path.map(part => part.toUpperCase()).join('__')
}
