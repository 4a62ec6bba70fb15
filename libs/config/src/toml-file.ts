// Reading the TOML config file, with errors an operator can act on.
import { readFileSync } from 'node:fs'
import { parse, TomlError } from 'smol-toml'
import { newTable, type Table } from './tree.js'

/** The file's table, whether it existed, or one error line. */
export type FileResult = { ok: true; table: Table; found: boolean } | { ok: false; error: string }

/** Reads and parses a TOML file; a missing file is an empty table unless `required`. */
export function readTomlFile(file: string, required: boolean): FileResult {
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch (err) {
    if (errorCode(err) !== 'ENOENT') return { ok: false, error: `${file}: cannot read: ${errorText(err)}` }
    return required ? { ok: false, error: `${file}: file not found` } : { ok: true, table: newTable(), found: false }
  }
  try {
    return { ok: true, table: parse(text), found: true }
  } catch (err) {
    return { ok: false, error: syntaxError(file, err) }
  }
}

// smol-toml's message is "Invalid TOML document: <reason>\n\n<code frame>"; keep the reason, never the frame:
// it quotes the file's lines, and the broken one may hold a secret (a key with its closing quote missing),
// which would then reach stderr or the log. The line and column say where to look.
function syntaxError(file: string, err: unknown): string {
  if (!(err instanceof TomlError)) return `${file}: cannot parse: ${errorText(err)}`
  const reason = err.message.replace(/^Invalid TOML document: /, '').split('\n')[0]
  return `${file}: TOML syntax error at line ${err.line}, column ${err.column}: ${reason}`
}

function errorCode(err: unknown): unknown {
  return typeof err === 'object' && err !== null && 'code' in err ? err.code : undefined
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err)
}
