// examples/marmot-group runs on a fresh checkout (after `npm ci && npm run build`): it starts a relay with
// the Marmot profile, walks a three-member MLS group through it and says so step by step.
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { it } from 'node:test'
import { MARMOT_CONFIG } from './marmot.js'
import { ROOT, spawnService } from './platform.js'

it('examples/marmot-group/run.mjs exits 0 and prints its steps', { timeout: 180_000 }, async () => {
  const example = spawnService(join(ROOT, 'examples/marmot-group/run.mjs'), [], { RELAY_CONFIG: MARMOT_CONFIG })
  const timer = setTimeout(() => void example.stop(), 150_000)
  const { code } = await example.exited
  clearTimeout(timer)
  const out = example.output.join('\n')
  assert.equal(code, 0, out)
  for (const step of [
    /^The relay is at ws:\/\/127\.0\.0\.1:\d+\.$/m,
    /^Bob and Carol published their KeyPackages \(kind 30443\) without authenticating\.$/m,
    /^Alice fetched Carol's KeyPackage from the relay, published the commit adding Carol \(kind 445\) and a gift-wrapped Welcome \(kind 1059\)\.$/m,
    /^Carol's inbox REQ was refused before AUTH: "auth-required: /m,
    /^Carol authenticated \(NIP-42\) as the recipient and sent the same REQ again\.$/m,
    /^Carol unwrapped the Welcome from Alice and joined the group at epoch 2\.$/m,
    /^Bob read the commit adding Carol from the relay; he is at epoch 2, like Alice\.$/m,
    /^Carol read from the relay: (?=.*"Welcome, Carol!")(?=.*"Hi Carol, good to have you here\.").*$/m,
    /^Alice read from the relay: (?=.*"Thanks, glad to be in\.").*$/m,
    /^Done: three members at epoch 2 /m,
  ])
    assert.match(out, step)
})
