/** Markers around a generated section of a document, e.g. `<!-- name:start -->` … `<!-- name:end -->`. */
export const sectionMarkers = (name: string): { start: string; end: string } => ({
  start: `<!-- ${name}:start -->`,
  end: `<!-- ${name}:end -->`,
})

/** The document with the text between the markers of `name` replaced, or undefined when the markers are missing. */
export const replaceMarkedSection = (document: string, name: string, text: string): string | undefined => {
  const { start, end } = sectionMarkers(name)
  const from = document.indexOf(start)
  const to = document.indexOf(end)
  if (from < 0 || to < from) return undefined
  return `${document.slice(0, from + start.length)}\n\n${text.trim()}\n\n${document.slice(to)}`
}
