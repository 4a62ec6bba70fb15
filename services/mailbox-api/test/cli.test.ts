// The msr-mailbox command line: migrate on an embedded PostgreSQL, configuration errors, serve and SIGTERM.
import assert from 'node:assert/strict'
import { spawn, type ChildProcess } from 'node:child_process'
import { rm } from 'node:fs/promises'
import { connect, createServer, type AddressInfo } from 'node:net'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { after, before, describe, it } from 'node:test'
import { freePort, sleep, tempDir } from './harness.js'

const CLI = fileURLToPath(new URL('../src/cli.js', import.meta.url))
const TIMEOUT_MS = 30_000

/** The environment without anything the mailbox reads, so only what a test sets counts. */
const cleanEnv = (): Record<string, string> => {
  const keep = ['PATH', 'HOME', 'LANG', 'LC_ALL', 'TMPDIR', 'SYSTEMROOT']
  return Object.fromEntries(keep.flatMap(k => (process.env[k] === undefined ? [] : [[k, process.env[k] as string]])))
}

interface Run {
  child: ChildProcess
  stdout: () => string
  stderr: () => string
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
}

const children: ChildProcess[] = []

const run = (args: string[], env: Record<string, string>): Run => {
  const child = spawn(process.execPath, [CLI, ...args], { env: { ...cleanEnv(), ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
  children.push(child)
  let stdout = ''
  let stderr = ''
  child.stdout?.on('data', chunk => (stdout += String(chunk)))
  child.stderr?.on('data', chunk => (stderr += String(chunk)))
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>(resolve => child.once('exit', (code, signal) => resolve({ code, signal })))
  return { child, stdout: () => stdout, stderr: () => stderr, exited }
}

const within = async <T>(promise: Promise<T>, what: string, ms = TIMEOUT_MS): Promise<T> => {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), ms)))
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer))
}

/** True when something accepts TCP connections on the loopback port. */
const listening = (port: number): Promise<boolean> =>
  new Promise(resolve => {
    const socket = connect(port, '127.0.0.1')
    socket.once('connect', () => (socket.destroy(), resolve(true)))
    socket.once('error', () => resolve(false))
  })

let dir: string

before(async () => {
  dir = await tempDir('msr-mailbox-cli-')
})

after(async () => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
  await rm(dir, { recursive: true, force: true })
})

describe('msr-mailbox migrate', () => {
  it('creates an embedded PostgreSQL, applies the migrations and prints the version; a second run applies nothing', async () => {
    const env = { MAILBOX_DATA_DIR: join(dir, 'migrate-pg'), MAILBOX_EMBEDDED_PG_PORT: String(await freePort()) }
    const first = run(['migrate'], env)
    assert.deepEqual(await within(first.exited, 'migrate to exit'), { code: 0, signal: null }, first.stderr())
    assert.match(first.stdout(), /^schema version 4; applied 1, 2, 3, 4$/m)
    const second = run(['migrate'], env)
    assert.deepEqual(await within(second.exited, 'migrate to exit'), { code: 0, signal: null }, second.stderr())
    assert.match(second.stdout(), /^schema version 4; applied nothing \(up to date\)$/m)
    assert.equal(await listening(Number(env.MAILBOX_EMBEDDED_PG_PORT)), false, 'the embedded PostgreSQL was stopped')
  })

  it('exits non-zero naming the port when the embedded PostgreSQL cannot start', async () => {
    const blocker = createServer()
    const port = await new Promise<number>(resolve => blocker.listen(0, '127.0.0.1', () => resolve((blocker.address() as AddressInfo).port)))
    try {
      const cli = run(['migrate'], { MAILBOX_DATA_DIR: join(dir, 'blocked-pg'), MAILBOX_EMBEDDED_PG_PORT: String(port) })
      assert.equal((await within(cli.exited, 'migrate to exit')).code, 2)
      assert.match(cli.stderr(), new RegExp(`127\\.0\\.0\\.1:${port}`))
    } finally {
      blocker.close()
    }
  })
})

describe('configuration errors', () => {
  const BAD = {
    ADMIN_TOKEN: 'too-short',
    ADMIN_IP_ALLOWLIST: '10.0.0.0/33, not-an-ip',
    METRICS_AUTH: 'tiny',
    MAILBOX_DEFAULT_TTL: '40d',
    PUBLIC_URL: 'ftp://mailbox.test',
  }
  const PROBLEMS = [/ADMIN_TOKEN/, /10\.0\.0\.0\/33/, /not-an-ip/, /METRICS_AUTH/, /MAILBOX_DEFAULT_TTL/, /PUBLIC_URL/]

  for (const command of ['serve', 'migrate'])
    it(`${command} exits 2 listing every problem`, async () => {
      const cli = run([command], { ...BAD, MAILBOX_DATA_DIR: join(dir, 'never') })
      assert.equal((await within(cli.exited, `${command} to exit`)).code, 2)
      for (const problem of PROBLEMS) assert.match(cli.stderr(), problem)
    })

  it('lists malformed values together with the other problems', async () => {
    const cli = run(['serve'], { ...BAD, PORT: 'eighty', LOG_LEVEL: 'loud', MAILBOX_DATA_DIR: join(dir, 'never') })
    assert.equal((await within(cli.exited, 'serve to exit')).code, 2)
    for (const problem of [/PORT/, /LOG_LEVEL/, ...PROBLEMS]) assert.match(cli.stderr(), problem)
  })

  it('exits 2 on an unknown command, with the usage', async () => {
    const cli = run(['frobnicate'], {})
    assert.equal((await within(cli.exited, 'the CLI to exit')).code, 2)
    assert.match(cli.stderr(), /unknown command "frobnicate"/)
    assert.match(cli.stderr(), /usage: msr-mailbox/)
  })

  it('env prints the variables it reads', async () => {
    const cli = run(['env'], {})
    assert.equal((await within(cli.exited, 'the CLI to exit')).code, 0)
    for (const name of ['PORT', 'DATABASE_URL', 'PUBLIC_URL', 'ADMIN_TOKEN', 'ADMIN_IP_ALLOWLIST', 'METRICS_AUTH', 'MAILBOX_DEFAULT_TTL', 'MAILBOX_MAX_TTL', 'MAILBOX_MAX_ARTIFACT_BYTES'])
      assert.match(cli.stdout(), new RegExp(`\\| \`${name}\` \\|`))
  })
})

describe('msr-mailbox serve', () => {
  it('answers /readyz on an embedded PostgreSQL, then exits 0 on SIGTERM and stops the database', async () => {
    const [port, pgPort] = [await freePort(), await freePort()]
    const cli = run(['serve'], { PORT: String(port), MAILBOX_DATA_DIR: join(dir, 'serve-pg'), MAILBOX_EMBEDDED_PG_PORT: String(pgPort), MAILBOX_RATE_LIMIT_PER_IP: '0' })
    const ready = async () => {
      for (;;) {
        if (cli.child.exitCode !== null) throw new Error(`serve exited ${cli.child.exitCode}: ${cli.stderr()}`)
        const status = await fetch(`http://127.0.0.1:${port}/readyz`).then(r => r.status, () => 0)
        if (status === 200) return
        await sleep(100)
      }
    }
    await within(ready(), '/readyz to answer 200')
    const health = await fetch(`http://127.0.0.1:${port}/healthz`)
    assert.equal(health.status, 200)
    // Several at once, so the pool holds idle connections when the database stops under them.
    const readies = await Promise.all(Array.from({ length: 6 }, () => fetch(`http://127.0.0.1:${port}/readyz`).then(r => r.status)))
    assert.deepEqual(readies, [200, 200, 200, 200, 200, 200])
    assert.match(cli.stdout(), /"message":"mailbox API listening"/)
    cli.child.kill('SIGTERM')
    assert.deepEqual(await within(cli.exited, 'serve to exit after SIGTERM'), { code: 0, signal: null }, cli.stderr())
    assert.doesNotMatch(cli.stdout() + cli.stderr(), /"severity":"(ERROR|CRITICAL)"/, 'a clean shutdown logs no error')
    assert.match(cli.stdout(), /"seconds":[\d.]+,"message":"stopped"/, 'the last line says it stopped, and how long it took')
    assert.equal(await listening(port), false)
    assert.equal(await listening(pgPort), false, 'the embedded PostgreSQL was stopped')
  })

  it('export and import while serve runs use its embedded PostgreSQL, and leave it running', async () => {
    const [port, pgPort] = [await freePort(), await freePort()]
    const env = { MAILBOX_DATA_DIR: join(dir, 'shared-pg'), MAILBOX_EMBEDDED_PG_PORT: String(pgPort) }
    const cli = run(['serve'], { ...env, PORT: String(port) })
    try {
      for (;;) {
        if (cli.child.exitCode !== null) throw new Error(`serve exited ${cli.child.exitCode}: ${cli.stderr()}`)
        if ((await fetch(`http://127.0.0.1:${port}/readyz`).then(r => r.status, () => 0)) === 200) break
        await sleep(100)
      }
      // The data tools are started as an operator would: same environment, no DATABASE_URL.
      const out = join(dir, 'while-serving.jsonl')
      const exported = run(['export', '--out', out], env)
      assert.deepEqual(await within(exported.exited, 'export to exit'), { code: 0, signal: null }, exported.stderr())
      assert.match(exported.stderr(), /using the embedded PostgreSQL already running on this data directory/)
      const imported = run(['import', '--in', out], env)
      assert.deepEqual(await within(imported.exited, 'import to exit'), { code: 0, signal: null }, imported.stderr())
      assert.equal((await fetch(`http://127.0.0.1:${port}/readyz`)).status, 200, 'serve still has its database')
    } finally {
      cli.child.kill('SIGTERM')
      await within(cli.exited, 'serve to exit')
    }
  })
})

describe('msr-mailbox config check and usage errors', () => {
  it('lists every problem at once, cross-field ones included, and exits 2', async () => {
    const bad = run(['config', 'check'], { PORT: 'abc', ADMIN_TOKEN: 'short', MAILBOX_DEFAULT_TTL: '40d', MAILBOX_MAX_TTL: '30d', HINTS_PUSH_AUDIENCE: 'https://x.test' })
    assert.deepEqual(await within(bad.exited, 'config check to exit'), { code: 2, signal: null })
    const lines = bad.stderr().trim().split('\n').slice(1).map(line => line.trim())
    assert.deepEqual(lines, [
      'PORT: expected an integer',
      'ADMIN_TOKEN: must be at least 16 characters',
      'HINTS_PUSH_AUDIENCE: needs HINTS_PUSH_SERVICE_ACCOUNT (the email the token must carry)',
      'MAILBOX_DEFAULT_TTL: must not exceed MAILBOX_MAX_TTL',
    ])
  })

  it('says a valid configuration is valid', async () => {
    const good = run(['config', 'check'], {})
    assert.deepEqual(await within(good.exited, 'config check to exit'), { code: 0, signal: null })
    assert.match(good.stdout(), /^configuration is valid \(port 8081, embedded PostgreSQL under \.\/data\/postgres\)$/m)
  })

  it('exits 2 with the usage for no command, an unknown command or config subcommand; help exits 0', async () => {
    for (const args of [[], ['frobnicate'], ['config'], ['config', 'show']]) {
      const cli = run(args, {})
      assert.deepEqual(await within(cli.exited, 'the CLI to exit'), { code: 2, signal: null }, args.join(' '))
      assert.match(cli.stderr(), /usage: msr-mailbox <command>/)
    }
    const help = run(['--help'], {})
    assert.deepEqual(await within(help.exited, 'help to exit'), { code: 0, signal: null })
    assert.match(help.stdout(), /usage: msr-mailbox <command>/)
  })
})
