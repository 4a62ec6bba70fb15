// Config sections that fill in their own defaults when the file leaves them out.
import * as z from 'zod'

/**
 * A strict `[section]` whose keys take their defaults when the section is absent. zod 4's `.default({})`
 * would return `{}` as-is, skipping the inner defaults; `.prefault({})` parses `{}` so they apply.
 */
export function section<Shape extends z.core.$ZodLooseShape>(shape: Shape, description?: string) {
  const table = z.strictObject(shape).prefault({} as z.input<z.ZodObject<Shape, z.core.$strict>>)
  return description === undefined ? table : table.describe(description)
}
