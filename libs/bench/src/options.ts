// The option parsing both benches share: counts, yes/no variables, the preset's numeric settings, --quick,
// --cpu-prof [DIR], --json and --help.
import { statSync } from 'node:fs'
import { parseArgs } from 'node:util'

/** A bad or refused combination of options: a bench prints it and exits with code 2. */
export class UsageError extends Error {}

/** What parseArgs returned for the flags, by flag name. */
export type Flags = Record<string, string | boolean | undefined>

/** A positive integer (`_` allowed as a digit separator), or 0 too when `zero` allows it; else throws naming the flag. */
export const count = (name: string, raw: string, zero = false): number => {
  const n = Number(raw.replace(/_/g, ''))
  if (!Number.isSafeInteger(n) || n < (zero ? 0 : 1)) throw new UsageError(`--${name} must be a ${zero ? 'non-negative' : 'positive'} integer, not "${raw}"`)
  return n
}

/** An environment variable as a yes/no: unset or empty is undefined; 0, false, no and off are false. */
export const truthy = (v: string | undefined): boolean | undefined => (v === undefined || v === '' ? undefined : !/^(0|false|no|off)$/i.test(v))

/** Whether `path` is an existing directory (what `--store-dir` of either bench expects). */
export const isDirectory = (path: string): boolean => {
  try {
    return statSync(path).isDirectory()
  } catch {
    return false
  }
}

/** `--cpu-prof [DIR]` (the directory arrives as a positional) or BENCH_CPU_PROF=DIR|1; '' means a new temp dir. */
const cpuProfDir = (flag: boolean, positional: string | undefined, env: string | undefined): string | undefined => {
  if (flag) return positional ?? ''
  if (truthy(env) !== true) return undefined
  return /^(1|true|yes|on)$/i.test(env ?? '') ? '' : env
}

/** What `parse` returns; its error (an unknown flag, a missing value) as a UsageError. */
const parsed = <T>(parse: () => T): T => {
  try {
    return parse()
  } catch (error) {
    throw new UsageError(error instanceof Error ? error.message : String(error))
  }
}

/** A bench's own parseArgs options, besides the numeric settings and the common flags. */
export type OwnOptions = Record<string, { type: 'string' | 'boolean'; short?: string }>

/** How a bench names and presets its numeric settings. */
export interface NumericSettings<K extends string> {
  /** Flag name (kebab-case) of each numeric setting. */
  flags: Record<K, string>
  full: Record<K, number>
  quick: Record<K, number>
  /** The environment variable of a setting is this plus the flag in upper snake case (`BENCH_`). */
  envPrefix: string
  /** Settings that may also be 0 (none of it). */
  zero?: readonly K[]
}

/**
 * Parses argv (without node and script): the numeric settings (flag, else environment, else the preset),
 * `--quick` / BENCH_QUICK, `--cpu-prof [DIR]` / BENCH_CPU_PROF, `--json FILE`, `-h`/`--help`, and the bench's
 * own options, returned as flags for the bench to read. Throws on a bad value or a stray argument.
 */
export const parseBenchArgs = <K extends string>(argv: string[], env: Record<string, string | undefined>, numeric: NumericSettings<K>, own: OwnOptions) => {
  const { values, positionals } = parsed(() => parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      ...Object.fromEntries(Object.values<string>(numeric.flags).map(f => [f, { type: 'string' as const }])),
      ...own,
      quick: { type: 'boolean' },
      'cpu-prof': { type: 'boolean' },
      json: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  }))
  const flags = values as Flags
  const cpuProf = cpuProfDir(Boolean(flags['cpu-prof']), positionals[0], env.BENCH_CPU_PROF)
  if (positionals.length > (flags['cpu-prof'] ? 1 : 0)) throw new UsageError(`unexpected argument "${positionals.at(-1)}"`)
  // npm_config_quick: `npm run bench --quick` (no `--`) hands the flag to npm, which exports it to the script.
  const quick = Boolean(flags.quick) || truthy(env.BENCH_QUICK) === true || env.npm_config_quick === 'true'
  const preset = quick ? numeric.quick : numeric.full
  const pick = (key: K): number => {
    const flag = numeric.flags[key]
    const raw = (flags[flag] as string | undefined) ?? env[`${numeric.envPrefix}${flag.toUpperCase().replace(/-/g, '_')}`]
    return raw === undefined || raw === '' ? preset[key] : count(flag, raw, numeric.zero?.includes(key))
  }
  const numbers = Object.fromEntries((Object.keys(numeric.flags) as K[]).map(k => [k, pick(k)])) as Record<K, number>
  return { flags, numbers, quick, cpuProf, json: flags.json as string | undefined, help: Boolean(flags.help) }
}
