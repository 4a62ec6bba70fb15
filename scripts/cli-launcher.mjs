// What the workspace bins (`msr-relay`, `msr-mailbox`) run: the compiled CLI, after building the repository
// when it has not been built yet (npm install links the bins; the build is `npm run build`, which npm start
// and npm test also run).
import { spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

/** Runs the CLI at `cli` (a file URL under dist/) as the command `name`. */
export const launch = async (name, cli) => {
  if (!existsSync(cli)) {
    const root = fileURLToPath(new URL('../', import.meta.url))
    process.stderr.write(`${name}: not built yet: running \`npm run build\` in ${root} first\n`)
    // The build's output goes to stderr: stdout may be the command's own (an export to stdout).
    const build = spawnSync('npm', ['run', 'build'], { cwd: root, stdio: ['ignore', 2, 2] })
    if (build.status !== 0 || !existsSync(cli)) {
      process.stderr.write(`${name}: the build failed; run \`npm run build\` in ${root} to see why\n`)
      process.exit(2)
    }
  }
  // Tracing when OTEL_* asks for it, as with `npm start` and the images (nothing is loaded otherwise).
  await import('@msr/telemetry/register')
  await import(cli.href)
}
