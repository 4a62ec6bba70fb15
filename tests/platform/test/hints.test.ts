// The hint bus end to end (DESIGN.md §5): a client publishes to the relay, the mailbox API learns of it.
// Both services run as processes, as `npm start` runs them (local transport), and through the real
// Pub/Sub client against the Pub/Sub emulator when this machine has one.
import assert from 'node:assert/strict'
import { readFile, rm, writeFile } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { createMailboxClient } from '@msr/mailbox-client'
import {
  createHintBus,
  eventually,
  freePort,
  MAILBOX_CLI,
  newSigner,
  RELAY_CLI,
  RelayClient,
  removeDir,
  ROOT,
  sign,
  spawnService,
  START,
  tempDir,
  useEmulator,
  waitReady,
  type Service,
} from './platform.js'

interface Ports {
  relay: number
  mailbox: number
  pg: number
}

const ports = async (): Promise<Ports> => ({ relay: await freePort(), mailbox: await freePort(), pg: await freePort() })

/** The group as the mailbox API shows it (through @msr/mailbox-client), once it has `epoch`. */
const groupAtEpoch = (mailbox: string, group: string, epoch: number) => {
  const client = createMailboxClient({ baseUrl: mailbox, signer: newSigner().secretKey })
  return eventually(async () => {
    const entry = await client.groups.get(group)
    return entry?.lastEpoch === epoch ? entry : undefined
  }, `group ${group} at epoch ${epoch} in the mailbox API`)
}

/** Bob's dm hints (through @msr/mailbox-client), once one names `eventId`. */
const dmHint = (mailbox: string, bob: ReturnType<typeof newSigner>, eventId: string) => {
  const client = createMailboxClient({ baseUrl: mailbox, signer: bob.secretKey })
  return eventually(async () => (await client.dmHints.list()).items.find(h => h.eventId === eventId), `a dm hint for ${eventId.slice(0, 8)} in Bob's GET /api/v1/dm-hints`)
}

/**
 * The flow the issue describes: a 445 with `h` and `k` shows up in the group registry; a 446 to Bob
 * shows up in Bob's dm hints, and Bob fetches the event from the relay by its id.
 */
const groupAndDmFlow = async (relayUrl: string, mailbox: string): Promise<void> => {
  const [alice, bob] = [newSigner(), newSigner()]
  const group = `group-${Math.random().toString(16).slice(2)}`
  const client = await RelayClient.connect(relayUrl)
  try {
    await client.auth(alice, relayUrl)
    const message = sign(newSigner(), 445, [['h', group], ['k', '3']], 'mls ciphertext')
    assert.deepEqual(await client.publish(message), ['OK', message.id, true, ''])
    const entry = await groupAtEpoch(mailbox, group, 3)
    assert.equal(entry.lastEventTs, message.created_at)
    const dm = sign(alice, 446, [['p', bob.pubkey]], 'noise ciphertext')
    assert.deepEqual(await client.publish(dm), ['OK', dm.id, true, ''])
    const hint = await dmHint(mailbox, bob, dm.id)
    assert.equal(hint.sender, alice.pubkey)
  } finally {
    client.close()
  }
  const bobs = await RelayClient.connect(relayUrl)
  try {
    await bobs.auth(bob, relayUrl)
    const dms = await bobs.query({ kinds: [446], '#p': [bob.pubkey] })
    assert.equal(dms.length, 1)
    assert.equal(dms[0]?.content, 'noise ciphertext')
  } finally {
    bobs.close()
  }
}

describe('npm start: relay → local transport → mailbox API', () => {
  let dir: string
  let p: Ports
  let platform: Service

  before(async () => {
    dir = await tempDir()
    p = await ports()
    platform = spawnService(START, [], {
      RELAY_PORT: String(p.relay),
      MAILBOX_PORT: String(p.mailbox),
      RELAY_DATA__PATH: join(dir, 'relay'),
      MAILBOX_DATA_DIR: join(dir, 'postgres'),
      MAILBOX_EMBEDDED_PG_PORT: String(p.pg),
    })
    await waitReady(platform, `http://127.0.0.1:${p.mailbox}/readyz`, 'the mailbox API')
    await waitReady(platform, `http://127.0.0.1:${p.relay}/readyz`, 'the relay')
  })

  after(async () => {
    await platform?.stop()
    await removeDir(dir)
  })

  it('a 445 reaches the group registry and a 446 reaches Bob, who fetches it from the relay', async () => {
    await groupAndDmFlow(`ws://127.0.0.1:${p.relay}`, `http://127.0.0.1:${p.mailbox}`)
  })

  it('prints one ready banner naming every URL, and the metrics key it points to opens both /metrics', async () => {
    const banner = await eventually(async () => {
      const at = platform.output.findIndex(line => line.startsWith('mls-secure-relay is ready'))
      return at >= 0 && platform.output.length > at + 8 ? platform.output.slice(at, at + 9) : undefined
    }, 'the ready banner')
    const relay = `127.0.0.1:${p.relay}`
    const mailbox = `127.0.0.1:${p.mailbox}`
    for (const expected of [`ws://${relay}`, `http://${relay}/`, `http://${mailbox}/api/v1`, `http://${mailbox}/api/v1/openapi.json`, `http://${relay}/metrics`, `http://${mailbox}/metrics`])
      assert.ok(banner.some(line => line.includes(expected)), `the banner names ${expected}:\n${banner.join('\n')}`)
    assert.equal(platform.output.filter(line => line.startsWith('mls-secure-relay is ready')).length, 1)
    const keyFile = /\$\(cat ([^)]+)\)/.exec(banner.join('\n'))?.[1] as string
    const key = (await readFile(resolve(ROOT, keyFile), 'utf8')).trim()
    for (const url of [`http://${relay}/metrics`, `http://${mailbox}/metrics`]) {
      assert.equal((await fetch(url, { headers: { Authorization: `Bearer ${key}` } })).status, 200, url)
      assert.equal((await fetch(url)).status, 404, `${url} without the key`)
    }
  })

  it("runs the README's example as written, printing what its comment says", async () => {
    const readme = await readFile(join(ROOT, 'README.md'), 'utf8')
    const block = /<!-- example:hello -->\n```js\n([\s\S]*?)```/.exec(readme)?.[1]
    assert.ok(block, 'README has the example')
    // In the repository, so that `ws` and `nostr-tools` resolve as they do for a reader; on this run's port.
    const script = join(ROOT, `.readme-example-${process.pid}.mjs`)
    await writeFile(script, block.replace("'ws://127.0.0.1:8080'", `'ws://127.0.0.1:${p.relay}'`))
    try {
      const run = spawnService(script, [], {})
      assert.deepEqual(await run.exited, { code: 0, signal: null }, run.output.join('\n'))
      const verbs = run.output.map(line => (JSON.parse(line) as unknown[]).slice(0, 1)[0])
      assert.deepEqual(verbs, ['AUTH', 'OK', 'OK', 'EVENT', 'EOSE'], run.output.join('\n'))
      const comment = block.split('\n').filter(line => line.startsWith('// ["')).map(line => (/^\/\/ \["(\w+)"/.exec(line) as RegExpExecArray)[1])
      assert.deepEqual(verbs, comment, 'the comment lists what the relay sends, in order')
      assert.ok(run.output.slice(1, 3).every(line => line.endsWith(',true,""]')), 'AUTH and EVENT accepted')
    } finally {
      await rm(script, { force: true })
    }
  })
})

describe('npm start: port variables', () => {
  it('refuses a port variable that is not a port, and two services on one port, saying which (exit 2)', async () => {
    for (const [env, message] of [
      [{ RELAY_PORT: 'abc' }, /RELAY_PORT must be a port number from 1 to 65535, not "abc"/],
      [{ MAILBOX_PORT: '70000' }, /MAILBOX_PORT must be a port number/],
      [{ PORT: '8081' }, /cannot share port 8081/],
    ] as const) {
      const started = spawnService(START, [], env)
      assert.deepEqual(await started.exited, { code: 2, signal: null })
      assert.match(started.output.join('\n'), message)
    }
  })
})

describe('mailbox API down while the relay accepts events', () => {
  it('delivers the hints once the mailbox API is back', async () => {
    const dir = await tempDir()
    const p = await ports()
    const token = 'platform-test-push-token-0123456789'
    const relayUrl = `ws://127.0.0.1:${p.relay}`
    const relay = spawnService(RELAY_CLI, ['serve'], {
      PORT: String(p.relay),
      RELAY_DATA__PATH: join(dir, 'relay'),
      RELAY_AUTH__ENABLED: 'true',
      RELAY_NETWORK__PUBLIC_URL: relayUrl,
      RELAY_HINTS__TRANSPORT: 'local',
      RELAY_HINTS__PUSH_URL: `http://127.0.0.1:${p.mailbox}/internal/pubsub/push`,
      RELAY_HINTS__PUSH_TOKEN: token,
      RELAY_HINTS__MAX_BACKOFF: '"1s"',
    })
    let mailbox: Service | undefined
    try {
      await waitReady(relay, `http://127.0.0.1:${p.relay}/readyz`, 'the relay')
      const client = await RelayClient.connect(relayUrl)
      await client.auth(newSigner(), relayUrl)
      const group = `down-${Math.random().toString(16).slice(2)}`
      const messages = [1, 2, 3].map(epoch => sign(newSigner(), 445, [['h', group], ['k', String(epoch)]]))
      for (const m of messages) assert.deepEqual(await client.publish(m), ['OK', m.id, true, ''])
      client.close()
      mailbox = spawnService(MAILBOX_CLI, ['serve'], {
        PORT: String(p.mailbox),
        MAILBOX_DATA_DIR: join(dir, 'postgres'),
        MAILBOX_EMBEDDED_PG_PORT: String(p.pg),
        HINTS_PUSH_TOKEN: token,
      })
      await waitReady(mailbox, `http://127.0.0.1:${p.mailbox}/readyz`, 'the mailbox API')
      await groupAtEpoch(`http://127.0.0.1:${p.mailbox}`, group, 3)
    } finally {
      await relay.stop()
      await mailbox?.stop()
      await removeDir(dir)
    }
  })
})

describe('relay → Pub/Sub emulator → mailbox API (streaming pull)', () => {
  const pubsub = useEmulator('msr-platform')

  it('carries the same flow through the real Pub/Sub client', async t => {
    const emulator = pubsub.current()
    if (!emulator) return t.skip(`no Pub/Sub emulator on this machine (${pubsub.missing}); the local-transport flow above still ran`)
    await createHintBus(emulator)
    const dir = await tempDir()
    const p = await ports()
    const relayUrl = `ws://127.0.0.1:${p.relay}`
    const bus = { PUBSUB_EMULATOR_HOST: emulator.host, GOOGLE_CLOUD_PROJECT: emulator.projectId, METADATA_SERVER_DETECTION: 'none' }
    const relay = spawnService(RELAY_CLI, ['serve'], {
      ...bus,
      PORT: String(p.relay),
      RELAY_DATA__PATH: join(dir, 'relay'),
      RELAY_AUTH__ENABLED: 'true',
      RELAY_NETWORK__PUBLIC_URL: relayUrl,
      RELAY_HINTS__TRANSPORT: 'pubsub',
      RELAY_HINTS__PROJECT_ID: emulator.projectId,
    })
    const mailbox = spawnService(MAILBOX_CLI, ['serve'], {
      ...bus,
      PORT: String(p.mailbox),
      MAILBOX_DATA_DIR: join(dir, 'postgres'),
      MAILBOX_EMBEDDED_PG_PORT: String(p.pg),
      HINTS_SUBSCRIPTION: 'mailbox-group-hints,mailbox-dm-hints',
    })
    try {
      await waitReady(relay, `http://127.0.0.1:${p.relay}/readyz`, 'the relay')
      await waitReady(mailbox, `http://127.0.0.1:${p.mailbox}/readyz`, 'the mailbox API')
      await groupAndDmFlow(relayUrl, `http://127.0.0.1:${p.mailbox}`)
    } finally {
      await relay.stop()
      await mailbox.stop()
      await removeDir(dir)
    }
  })
})
