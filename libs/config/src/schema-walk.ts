// Reads zod 4 schema definitions so the reference generator and the error messages see the same structure.
import * as z from 'zod'

/** A schema with its wrappers (optional, default, describe, ...) peeled off and remembered. */
export type Unwrapped = {
  schema: z.core.$ZodTypes
  optional: boolean
  hasDefault: boolean
  defaultValue: unknown
  description: string | undefined
  /** For a duration, its type as the reference shows it (`duration`, `duration (1s..24d)`); else false. */
  duration: string | false
}

// Keyed by the inner pipe, which every wrapper (.describe(), .optional(), ...) keeps by reference.
const durations = new WeakMap<z.core.$ZodType, string>()

/** Marks a schema as a duration so the reference shows `label` (`duration`, with its range) instead of its input union. */
export function markDuration<T extends z.core.$ZodType>(schema: T, label = 'duration'): T {
  durations.set(schema, label)
  return schema
}

/** Peels wrappers off a schema, keeping the outermost description and default. */
export function unwrap(schema: z.core.$ZodType): Unwrapped {
  const out: Unwrapped = {
    schema: schema as z.core.$ZodTypes, optional: false, hasDefault: false,
    defaultValue: undefined, description: undefined, duration: false,
  }
  for (;;) {
    out.description ??= z.globalRegistry.get(out.schema)?.description
    const duration = durations.get(out.schema)
    if (duration !== undefined) return { ...out, duration }
    const inner = peel(out)
    if (inner === undefined) return out
    out.schema = inner as z.core.$ZodTypes
  }
}

// One wrapper layer: records what it says about the key and returns what it wraps, or undefined at the core.
function peel(out: Unwrapped): z.core.$ZodType | undefined {
  const def = out.schema._zod.def
  switch (def.type) {
    case 'optional':
      out.optional = true
      return def.innerType
    case 'default':
    case 'prefault':
      if (!out.hasDefault) Object.assign(out, { hasDefault: true, defaultValue: def.defaultValue })
      return def.innerType
    case 'nullable':
    case 'readonly':
    case 'catch':
    case 'nonoptional':
      return def.innerType
    case 'pipe':
      return def.in // the operator writes what the pipe accepts, not what it produces
    case 'lazy':
      return def.getter()
    default:
      return undefined
  }
}

/** The object shape at the core of a schema, if it is an object. */
export function shapeOf(schema: z.core.$ZodType): Record<string, z.core.$ZodType> | undefined {
  const core = unwrap(schema).schema._zod.def
  return core.type === 'object' ? core.shape : undefined
}

/** Follows a value path (keys and array indices) through the schema; undefined where it cannot. */
export function schemaAt(schema: z.core.$ZodType, path: readonly PropertyKey[]): z.core.$ZodType | undefined {
  let current: z.core.$ZodType | undefined = schema
  for (const part of path) {
    if (current === undefined) return undefined
    current = child(current, part)
  }
  return current
}

// The schema one step down: an object's property, an array's element, a record's value.
function child(schema: z.core.$ZodType, part: PropertyKey): z.core.$ZodType | undefined {
  const def = unwrap(schema).schema._zod.def
  if (def.type === 'object' && typeof part === 'string') return Object.hasOwn(def.shape, part) ? def.shape[part] : undefined
  if (def.type === 'array' && typeof part === 'number') return def.element
  if (def.type === 'record') return def.valueType
  return undefined
}
