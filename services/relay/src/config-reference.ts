/** Markers around the generated configuration reference in README.md. */
export const REFERENCE_START = '<!-- relay-config-reference:start -->'
export const REFERENCE_END = '<!-- relay-config-reference:end -->'

/** The text between the markers replaced by `reference`, or undefined when the markers are missing. */
export const replaceMarked = (document: string, reference: string): string | undefined => {
  const start = document.indexOf(REFERENCE_START)
  const end = document.indexOf(REFERENCE_END)
  if (start < 0 || end < start) return undefined
  return `${document.slice(0, start + REFERENCE_START.length)}\n\n${reference.trim()}\n\n${document.slice(end)}`
}
