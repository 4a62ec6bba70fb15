// The table each bench ends with (figure | value | unit), also written to its JSON as `figures`.
import { int } from './stats.js'

/** One row of the final table (and of the JSON's `figures`). */
export interface Figure {
  figure: string
  value: number
  unit: string
}

/** A table value: counts and values from 100 up with thousands separators, others with two decimals. */
export const valueText = (v: number): string => (!Number.isFinite(v) ? '-' : Math.abs(v) >= 100 || Number.isInteger(v) ? int(v) : v.toFixed(2))

/** The table's lines: a title naming what was measured, then one aligned row per figure. */
export const figureTable = (figures: readonly Figure[], target: string): string[] => {
  const w = [Math.max(6, ...figures.map(f => f.figure.length)), Math.max(5, ...figures.map(f => valueText(f.value).length)), Math.max(4, ...figures.map(f => f.unit.length))] as const
  return [
    `Figures (${target})`,
    `  ${'figure'.padEnd(w[0])} | ${'value'.padStart(w[1])} | unit`,
    `  ${'-'.repeat(w[0])} | ${'-'.repeat(w[1])} | ${'-'.repeat(w[2])}`,
    ...figures.map(f => `  ${f.figure.padEnd(w[0])} | ${valueText(f.value).padStart(w[1])} | ${f.unit}`),
  ]
}

/** Prints the table after an empty line (both benches end their report with it). */
export const printFigureTable = (figures: readonly Figure[], target: string): void => console.log(['', ...figureTable(figures, target)].join('\n'))
