// Generates the Markdown reference of every config key from the schema, so the docs cannot drift from the code.
import * as z from 'zod'
import { envName } from './env-overlay.js'
import { shapeOf, unwrap, type Unwrapped } from './schema-walk.js'

/** Options for `configReference`: with `envPrefix`, each key also lists the env var that sets it. */
export type ReferenceOptions = { envPrefix?: string }

type Row = { key: string; type: string; default: string; description: string; env: string }
type Section = { heading: string; description: string | undefined; rows: Row[] }
type Table = { path: string[]; heading: string; description: string | undefined; shape: Record<string, z.core.$ZodType>; inArray: boolean }

/** Markdown reference: a `### [section]` per table (`### [[a.b]]` for arrays of tables), a row per key. */
export function configReference(schema: z.ZodType, opts: ReferenceOptions = {}): string {
  const shape = shapeOf(schema)
  if (shape === undefined) throw new TypeError('configReference: the schema must be an object')
  const sections: Section[] = []
  collect({ path: [], heading: 'Top-level keys', description: undefined, shape, inArray: false }, sections, opts)
  const shown = sections.filter(s => s.rows.length > 0 || s.description !== undefined)
  return shown.map(s => renderSection(s, opts.envPrefix !== undefined)).join('\n')
}

// Depth-first in schema order, a table's section before its sub-tables', as they would appear in a TOML file.
function collect(table: Table, sections: Section[], opts: ReferenceOptions): void {
  const section: Section = { heading: table.heading, description: table.description, rows: [] }
  sections.push(section)
  for (const [key, field] of Object.entries(table.shape)) {
    const path = [...table.path, key]
    const info = unwrap(field)
    const sub = subTable(path, info, table.inArray)
    if (sub === undefined || sub.heading.startsWith('[[')) section.rows.push(row(path, info, table.inArray, opts))
    if (sub !== undefined) collect(sub, sections, opts)
  }
}

// A nested object becomes its own [section]; an array of objects becomes an [[array.of.tables]].
function subTable(path: string[], info: Unwrapped, inArray: boolean): Table | undefined {
  const def = info.schema._zod.def
  const name = path.join('.')
  if (def.type === 'object' && !info.duration) {
    return { path, heading: `[${name}]`, description: info.description, shape: def.shape, inArray }
  }
  if (def.type !== 'array') return undefined
  const element = shapeOf(def.element)
  if (element === undefined) return undefined
  return { path, heading: `[[${name}]]`, description: unwrap(def.element).description, shape: element, inArray: true }
}

function row(path: string[], info: Unwrapped, inArray: boolean, opts: ReferenceOptions): Row {
  // Keys inside an array of tables cannot be set one by one from the environment, only the whole array.
  const env = opts.envPrefix === undefined || inArray ? '' : code(envName(opts.envPrefix, path))
  return {
    key: code(path.at(-1) ?? ''),
    type: typeLabel(info),
    default: info.hasDefault ? code(tomlValue(info.defaultValue)) : info.optional ? '' : '**required**',
    description: info.description ?? '',
    env,
  }
}

/** The type of a key as an operator reads it: `integer (1..65535)`, `duration`, `array of string`, `one of "a", "b"`. */
export function typeLabel(info: Unwrapped): string {
  if (info.duration) return info.duration
  const schema = info.schema
  const def = schema._zod.def
  switch (def.type) {
    case 'string': return 'format' in def && typeof def.format === 'string' ? `string (${def.format})` : 'string'
    case 'number': return numberLabel(schema)
    case 'bigint': return 'integer'
    case 'boolean': return 'boolean'
    case 'date': return 'date'
    case 'enum': return oneOf(Object.values(def.entries))
    case 'literal': return oneOf(def.values)
    case 'union': return [...new Set(def.options.map(o => typeLabel(unwrap(o))))].join(' or ')
    case 'array': return shapeOf(def.element) ? 'array of tables' : `array of ${typeLabel(unwrap(def.element))}`
    case 'tuple': return 'array'
    case 'record': return `table of ${typeLabel(unwrap(def.valueType))}`
    case 'object': return 'table'
    case 'any':
    case 'unknown': return 'any'
    default: return def.type
  }
}

// JSON Schema already folds zod's number checks into bounds; zod's own safe-integer limits are noise.
function numberLabel(schema: z.core.$ZodType): string {
  const json = z.toJSONSchema(schema) as { type?: string; minimum?: number; maximum?: number; exclusiveMinimum?: number; exclusiveMaximum?: number }
  const base = json.type === 'integer' ? 'integer' : 'number'
  const real = (n: number | undefined) => (n !== undefined && Math.abs(n) < Number.MAX_SAFE_INTEGER ? n : undefined)
  const [min, max] = [real(json.minimum), real(json.maximum)]
  if (min !== undefined && max !== undefined) return `${base} (${min}..${max})`
  const bounds = [
    min === undefined ? '' : `>= ${min}`, real(json.exclusiveMinimum) === undefined ? '' : `> ${json.exclusiveMinimum}`,
    max === undefined ? '' : `<= ${max}`, real(json.exclusiveMaximum) === undefined ? '' : `< ${json.exclusiveMaximum}`,
  ].filter(b => b !== '')
  return bounds.length === 0 ? base : `${base} (${bounds.join(', ')})`
}

function oneOf(values: readonly unknown[]): string {
  const shown = values.map(v => tomlValue(v))
  return shown.length === 1 ? (shown[0] ?? '') : `one of ${shown.join(', ')}`
}

/** A value written as it would appear in the TOML file. */
export function tomlValue(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value)
  if (typeof value === 'number') return Number.isNaN(value) ? 'nan' : value === Infinity ? 'inf' : value === -Infinity ? '-inf' : String(value)
  if (value instanceof Date) return value.toISOString()
  if (Array.isArray(value)) return `[${value.map(tomlValue).join(', ')}]`
  if (typeof value === 'object' && value !== null) {
    const pairs = Object.entries(value).map(([k, v]) => `${k} = ${tomlValue(v)}`)
    return pairs.length === 0 ? '{}' : `{ ${pairs.join(', ')} }`
  }
  return String(value)
}

function renderSection(section: Section, withEnv: boolean): string {
  const head = withEnv ? '| key | type | default | description | env var |\n| --- | --- | --- | --- | --- |'
    : '| key | type | default | description |\n| --- | --- | --- | --- |'
  const rows = section.rows.map(r => [r.key, r.type, r.default, r.description, ...(withEnv ? [r.env] : [])])
  const body = rows.map(cells => `| ${cells.map(cell).join(' | ')} |`)
  const intro = section.description === undefined ? [] : [section.description, '']
  return [`### ${section.heading}`, '', ...intro, ...(rows.length > 0 ? [head, ...body] : []), ''].join('\n')
}

// Markdown table cells cannot hold pipes or line breaks.
function cell(text: string): string {
  return text.replace(/\|/g, '\\|').replace(/\s*\n\s*/g, ' ')
}

function code(text: string): string {
  return text === '' ? '' : `\`${text}\``
}
