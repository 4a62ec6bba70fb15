// The untyped config tree that file, environment and overrides are merged into before validation.

/** A TOML table as parsed: string keys to values. */
export type Table = Record<string, unknown>

/** An empty table without a prototype, so keys like `__proto__` or `constructor` are plain data. */
export function newTable(): Table {
  return Object.create(null) as Table
}

/** True for a table (a plain object), false for arrays, dates and scalars. */
export function isTable(value: unknown): value is Table {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !(value instanceof Date)
}

/** Sets `value` at `path`, creating missing tables; returns why not if a non-table is in the way. */
export function setPath(root: Table, path: readonly string[], value: unknown): string | undefined {
  let table = root
  for (const [i, key] of path.slice(0, -1).entries()) {
    if (!Object.hasOwn(table, key)) table[key] = newTable()
    const next = table[key]
    if (!isTable(next)) return `cannot set ${path.join('.')}: ${path.slice(0, i + 1).join('.')} is not a table`
    table = next
  }
  const last = path.at(-1)
  if (last !== undefined) table[last] = value
  return undefined
}

/** Freezes a value and everything reachable from it, so a loaded config cannot be changed by accident. */
export function deepFreeze<T>(value: T): T {
  if (typeof value !== 'object' || value === null || Object.isFrozen(value)) return value
  if (ArrayBuffer.isView(value)) return value // typed arrays with elements cannot be frozen
  Object.freeze(value)
  for (const child of Object.values(value)) deepFreeze(child)
  return value
}
