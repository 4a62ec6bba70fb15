// Names values in TOML terms ("table", not "object") because operators read these messages against a TOML file.

/** The TOML-facing type name of a value: string, number, boolean, array, table, date, null, nothing. */
export function typeName(value: unknown): string {
  if (value === undefined) return 'nothing'
  if (value === null) return 'null'
  if (Array.isArray(value)) return 'array'
  if (value instanceof Date) return 'date'
  if (typeof value === 'number' && Number.isNaN(value)) return 'NaN'
  return typeof value === 'object' ? 'table' : typeof value
}

/** A short rendering of a value for an error message: scalars literally, containers by type. */
export function showValue(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value)
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') return String(value)
  if (value instanceof Date) return value.toISOString()
  const name = typeName(value)
  return name === 'array' ? 'an array' : name === 'table' ? 'a table' : name
}
