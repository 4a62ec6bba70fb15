// `npm run bench` (after `npm run build`): the relay bench, then the mailbox API bench, with the same options.
// - Both run in the directory npm was started from (INIT_CWD), so a relative path given to either
//   (`--store-dir`, `--cpu-prof DIR`, `--relay-config`) means what it says where it was typed.
// - `--json FILE` writes ONE file, `{ "relay": …, "mailbox": … }`: each bench writes its own JSON to a temp
//   file, and the two are put together at the end (a bench that wrote none is null).
// - A usage error of the relay bench (exit 2) ends the run there; otherwise the mailbox bench runs whatever
//   the relay bench's figures were, and the exit code is the first non-zero one.
// - Ctrl-C reaches the bench running from the terminal (the whole process group gets it; this script only
//   waits), SIGTERM is passed on to it: either way it stops its child and removes its temp dir.
import { spawn } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'

// The repository (for its test, MSR_BENCH_ROOT: a throwaway layout with stand-in benches).
const root = process.env.MSR_BENCH_ROOT ?? new URL('..', import.meta.url).pathname
const BENCHES = [
  { name: 'relay', script: 'services/relay/dist/bench/bench.js' },
  { name: 'mailbox', script: 'services/mailbox-api/dist/bench/bench.js' },
]
const cwd = process.env.INIT_CWD ?? process.cwd()

/** The arguments without `--json FILE` / `--json=FILE`, and FILE resolved against `cwd` (undefined: none). */
const splitJson = args => {
  const rest = []
  let json
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]
    if (arg === '--json') {
      if (args[i + 1] === undefined || args[i + 1].startsWith('-')) return { error: '--json needs a file name' }
      json = args[++i]
    } else if (arg.startsWith('--json=')) json = arg.slice('--json='.length)
    else rest.push(arg)
  }
  if (json === '') return { error: '--json needs a file name' }
  return { rest, json: json === undefined ? undefined : resolve(cwd, json) }
}

/** Runs one bench with this terminal; resolves with its exit code (128 + n for a signal). */
const run = (script, args) =>
  new Promise(done => {
    const child = spawn(process.execPath, [join(root, script), ...args], { cwd, stdio: 'inherit' })
    // A second SIGINT would end the bench before it has stopped its child (it handles one), so none is sent.
    const wait = () => undefined
    const forward = () => child.kill('SIGTERM')
    process.on('SIGINT', wait)
    process.on('SIGTERM', forward)
    child.on('exit', (code, signal) => {
      process.off('SIGINT', wait)
      process.off('SIGTERM', forward)
      done(code ?? 128 + (signal === 'SIGINT' ? 2 : 15))
    })
  })

const main = async () => {
  const { rest, json, error } = splitJson(process.argv.slice(2))
  if (error) {
    process.stderr.write(`bench: ${error}\n`)
    return 2
  }
  const temp = json === undefined ? undefined : mkdtempSync(join(tmpdir(), 'msr-bench-json-'))
  const codes = []
  const results = {}
  try {
    for (const { name, script } of BENCHES) {
      const file = temp && join(temp, `${name}.json`)
      const code = await run(script, file ? [...rest, '--json', file] : rest)
      codes.push(code)
      results[name] = file && existsSync(file) ? JSON.parse(readFileSync(file, 'utf8')) : null
      // A usage error (2) or an interruption (130, 143) would only repeat or be unwanted in the next bench.
      if (code === 2 || code >= 128) break
    }
    if (json !== undefined) {
      writeFileSync(json, JSON.stringify(results, null, 2))
      process.stdout.write(`\nbench: results of ${Object.keys(results).join(' and ')} written to ${json}\n`)
    }
  } finally {
    if (temp) rmSync(temp, { recursive: true, force: true })
  }
  return codes.find(c => c !== 0) ?? 0
}

main().then(
  code => (process.exitCode = code),
  err => {
    process.stderr.write(`bench: ${err instanceof Error ? err.message : String(err)}\n`)
    process.exitCode = 1
  },
)
