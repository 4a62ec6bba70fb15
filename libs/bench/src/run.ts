// The frame of a bench's entry point: the profile directory, interruption, the JSON dump and the exit code.
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'

/** The `--cpu-prof` directory: none, the one given, or ('') a new temp dir named with `prefix`. */
export const profileDir = (cpuProf: string | undefined, prefix: string): string | undefined =>
  cpuProf === undefined ? undefined : cpuProf ? resolve(cpuProf) : mkdtempSync(join(tmpdir(), prefix))

/**
 * Interrupted (Ctrl-C, or a CI timeout's SIGTERM): `stop` the child and remove its temp dir, then exit 130.
 * Returns the function that removes the handlers again.
 */
export const stopOnInterrupt = (stop: () => Promise<unknown>): (() => void) => {
  const interrupted = () => void stop().finally(() => process.exit(130))
  process.once('SIGINT', interrupted)
  process.once('SIGTERM', interrupted)
  return () => {
    process.off('SIGINT', interrupted)
    process.off('SIGTERM', interrupted)
  }
}

/** JSON.stringify's replacer for results: Maps as objects, the raw samples under `omitted` left out. */
export const resultsReplacer =
  (omitted: string) =>
  (key: string, value: unknown): unknown => {
    if (value instanceof Map) return Object.fromEntries(value)
    if (key === omitted) return undefined
    return value
  }

/** Runs the entry point: its result is the exit code; an error is one line on stderr (the stack with BENCH_DEBUG) and exit 1. */
export const runMain = (main: () => Promise<number>): void => {
  main().then(
    code => (process.exitCode = code),
    error => {
      const detail = error instanceof Error ? (process.env.BENCH_DEBUG ? error.stack : error.message) : String(error)
      process.stderr.write(`bench: ${detail}\n`)
      process.exitCode = 1
    },
  )
}

/** A non-negative integer setting from the environment (soak runs), or `fallback` when unset or empty. */
export const envInteger = (name: string, fallback: number): number => {
  const raw = process.env[name]
  if (raw === undefined || raw === '') return fallback
  const value = Number(raw)
  if (!Number.isInteger(value) || value < 0) throw new Error(`${name} must be a non-negative integer, not ${JSON.stringify(raw)}`)
  return value
}
