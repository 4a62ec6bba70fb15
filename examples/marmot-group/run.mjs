#!/usr/bin/env node
// A Marmot group through the relay: Alice and Bob create an MLS group (ts-mls), Alice invites Carol with
// the KeyPackage Carol published and a gift-wrapped Welcome that Carol reads after NIP-42 AUTH, and the
// three exchange messages as kind-445 events. Run from the repository root after `npm ci && npm run build`:
//
//   node examples/marmot-group/run.mjs                      # starts a relay with services/relay/config/marmot.toml
//   RELAY_URL=ws://127.0.0.1:8080 node examples/marmot-group/run.mjs   # uses a running relay
//
// RELAY_CONFIG picks another configuration file for the relay it starts. See README.md next to this file.
import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as later } from 'node:timers'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import { TextDecoder, TextEncoder } from 'node:util'
import { finalizeEvent, generateSecretKey, getPublicKey } from 'nostr-tools/pure'
import * as nip44 from 'nostr-tools/nip44'
import * as nip59 from 'nostr-tools/nip59'
import {
  createApplicationMessage,
  createCommit,
  createGroup,
  decodeMlsMessage,
  defaultCapabilities,
  defaultLifetime,
  emptyPskIndex,
  encodeMlsMessage,
  generateKeyPackage,
  getCiphersuiteFromName,
  getCiphersuiteImpl,
  joinGroup,
  processPrivateMessage,
} from 'ts-mls'
import WebSocket from 'ws'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const say = text => console.log(text)
const now = () => Math.floor(Date.now() / 1000)
const b64 = bytes => Buffer.from(bytes).toString('base64')
const unb64 = text => new Uint8Array(Buffer.from(text, 'base64'))
const hex = bytes => Buffer.from(bytes).toString('hex')

// ---------------------------------------------------------------------------------------------
// The relay: the one at RELAY_URL, or one started here with the Marmot profile.

const freePort = () =>
  new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address()
      server.close(() => resolve(port))
    })
  })

const startRelay = async () => {
  const config = process.env.RELAY_CONFIG ?? join(ROOT, 'services/relay/config/marmot.toml')
  const dir = await mkdtemp(join(tmpdir(), 'marmot-example-'))
  const port = await freePort()
  const url = `ws://127.0.0.1:${port}`
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('RELAY_')))
  const child = spawn(process.execPath, [join(ROOT, 'services/relay/dist/src/cli.js'), 'serve', '--config', config], {
    cwd: ROOT,
    env: {
      ...env,
      PORT: String(port),
      RELAY_DATA__PATH: join(dir, 'data'),
      RELAY_NETWORK__HOST: '127.0.0.1',
      RELAY_NETWORK__PUBLIC_URL: url, // the relay tag NIP-42 AUTH events must carry
      RELAY_NETWORK__TRUSTED_PROXIES: '0',
      RELAY_METRICS__ENABLED: 'false',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  const output = []
  child.stdout.on('data', d => output.push(String(d)))
  child.stderr.on('data', d => output.push(String(d)))
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise(resolve => child.once('exit', resolve))
      child.kill('SIGTERM')
      await exited
    }
    await rm(dir, { recursive: true, force: true })
  }
  for (let i = 0; i < 600; i++) {
    if (child.exitCode !== null) {
      await stop()
      throw new Error(`the relay exited (${child.exitCode}):\n${output.join('').slice(-2000)}`)
    }
    const res = await fetch(`http://127.0.0.1:${port}/readyz`).catch(() => undefined)
    if (res?.status === 200) return { url, stop }
    await sleep(100)
  }
  await stop()
  throw new Error('the relay did not become ready in 60 s')
}

// ---------------------------------------------------------------------------------------------
// A Nostr connection over a raw WebSocket (as Marmot clients talk to relays).

const connect = async url => {
  const ws = new WebSocket(url)
  const inbox = []
  const waiters = new Set()
  ws.on('message', data => {
    inbox.push(JSON.parse(String(data)))
    for (const wake of waiters) wake()
  })
  await new Promise((resolve, reject) => (ws.once('open', resolve), ws.once('error', reject)))
  const next = async (match, what) => {
    const deadline = Date.now() + 30_000
    for (;;) {
      const i = inbox.findIndex(match)
      if (i >= 0) return inbox.splice(i, 1)[0]
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
      await new Promise(resolve => {
        const wake = () => (waiters.delete(wake), resolve())
        waiters.add(wake)
        later(wake, 200)
      })
    }
  }
  const send = message => ws.send(JSON.stringify(message))
  return {
    next,
    close: () => ws.close(),
    async publish(event) {
      send(['EVENT', event])
      const ok = await next(m => m[0] === 'OK' && m[1] === event.id, 'OK')
      if (ok[2] !== true) throw new Error(`the relay refused a kind ${event.kind}: ${ok[3]}`)
    },
    /** REQ until EOSE (or CLOSED: then `closed` holds the reason). */
    async query(subId, filter) {
      send(['REQ', subId, filter])
      const events = []
      for (;;) {
        const m = await next(x => ['EVENT', 'EOSE', 'CLOSED'].includes(x[0]) && x[1] === subId, `the answer to ${subId}`)
        if (m[0] === 'EVENT') events.push(m[2])
        else if (m[0] === 'CLOSED') return { events, closed: m[2] }
        else {
          send(['CLOSE', subId])
          return { events }
        }
      }
    },
    /** NIP-42: answers the connection's challenge. */
    async auth(secretKey, relayUrl) {
      const [, challenge] = await next(m => m[0] === 'AUTH', 'the AUTH challenge')
      const event = finalizeEvent({ kind: 22242, created_at: now(), tags: [['relay', relayUrl], ['challenge', challenge]], content: '' }, secretKey)
      send(['AUTH', event])
      const ok = await next(m => m[0] === 'OK' && m[1] === event.id, 'the AUTH answer')
      if (ok[2] !== true) throw new Error(`AUTH refused: ${ok[3]}`)
    },
  }
}

// ---------------------------------------------------------------------------------------------
// Marmot on top of ts-mls

const impl = await getCiphersuiteImpl(getCiphersuiteFromName('MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519'))

const person = async name => {
  const secretKey = generateSecretKey()
  const pubkey = getPublicKey(secretKey)
  const credential = { credentialType: 'basic', identity: new Uint8Array(Buffer.from(pubkey, 'hex')) }
  const keys = await generateKeyPackage(credential, defaultCapabilities(), defaultLifetime, [], impl)
  return { name, secretKey, pubkey, keys, state: undefined, sent: new Set() }
}

/** A KeyPackage event (kind 30443), its content the TLS-encoded KeyPackage in base64. */
const keyPackageEvent = (who, relayUrl) =>
  finalizeEvent(
    {
      kind: 30443,
      created_at: now(),
      tags: [
        ['d', randomBytes(32).toString('hex')],
        ['mls_protocol_version', '1.0'],
        ['mls_ciphersuite', '0x0001'],
        ['mls_extensions', '0x000a', '0xf2ee'],
        ['encoding', 'base64'],
        ['client', 'msr-marmot-example/0.1'],
        ['relays', relayUrl],
      ],
      content: b64(encodeMlsMessage({ version: 'mls10', wireformat: 'mls_key_package', keyPackage: who.keys.publicPackage })),
    },
    who.secretKey,
  )

/**
 * A group message: kind 445 signed by a throwaway key, tags `h` (the group's Nostr id) and `encoding`. (Real
 * Marmot clients also encrypt the content with NIP-44 under a key from the group's exporter secret; skipped here.)
 */
const groupMessage = (h, mlsMessage) =>
  finalizeEvent({ kind: 445, created_at: now(), tags: [['h', h], ['encoding', 'base64']], content: b64(encodeMlsMessage(mlsMessage)) }, generateSecretKey())

/** A Welcome (kind 444 rumor) sealed by `from` and gift-wrapped (kind 1059) to `to`: one p tag, expiring in 30 days. */
const giftWrappedWelcome = (from, to, welcome, keyPackageEventId, relayUrl) => {
  const rumor = nip59.createRumor(
    { kind: 444, created_at: now(), tags: [['e', keyPackageEventId], ['relays', relayUrl], ['encoding', 'base64']], content: b64(encodeMlsMessage({ version: 'mls10', wireformat: 'mls_welcome', welcome })) },
    from.secretKey,
  )
  const seal = nip59.createSeal(rumor, from.secretKey, to.pubkey)
  const wrapKey = generateSecretKey()
  return finalizeEvent(
    {
      kind: 1059,
      created_at: now() - Math.floor(Math.random() * 2 * 24 * 3600),
      tags: [['p', to.pubkey], ['expiration', String(now() + 30 * 24 * 3600)]],
      content: nip44.encrypt(JSON.stringify(seal), nip44.getConversationKey(wrapKey, to.pubkey)),
    },
    wrapKey,
  )
}

const mlsOf = event => decodeMlsMessage(unb64(event.content), 0)[0]

/** Processes the group's 445s as `who`; returns the texts it read. Its own and those from before it joined are skipped. */
const readGroup = async (who, events) => {
  const texts = []
  for (const event of events.sort((a, b) => a.created_at - b.created_at)) {
    const m = mlsOf(event)
    if (who.sent.has(event.id) || m.wireformat !== 'mls_private_message' || m.privateMessage.epoch < who.state.groupContext.epoch) continue
    const result = await processPrivateMessage(who.state, m.privateMessage, emptyPskIndex, impl)
    who.state = result.newState
    if (result.kind === 'applicationMessage') texts.push(new TextDecoder().decode(result.message))
  }
  return texts
}

const main = async () => {
  const relay = process.env.RELAY_URL ? { url: process.env.RELAY_URL, stop: async () => undefined } : await startRelay()
  const connections = []
  const open = async () => {
    const c = await connect(relay.url)
    connections.push(c)
    return c
  }
  try {
    say(`The relay is at ${relay.url}.`)
    const [alice, bob, carol] = await Promise.all(['Alice', 'Bob', 'Carol'].map(person))
    // Like White Noise, every publish and every group read goes over a connection that never answers AUTH.
    const publisher = await open()

    const kpBob = keyPackageEvent(bob, relay.url)
    const kpCarol = keyPackageEvent(carol, relay.url)
    await publisher.publish(kpBob)
    await publisher.publish(kpCarol)
    say('Bob and Carol published their KeyPackages (kind 30443) without authenticating.')

    const h = randomBytes(32).toString('hex')
    alice.state = await createGroup(randomBytes(32), alice.keys.publicPackage, alice.keys.privatePackage, [], impl)
    say(`Alice created an MLS group; its Nostr group id (h) is ${h.slice(0, 16)}….`)

    /** Alice adds `who`: fetches its KeyPackage from the relay, commits (a 445) and gift-wraps the Welcome. */
    const invite = async who => {
      const lookup = await open()
      const { events } = await lookup.query('kp', { authors: [who.pubkey], kinds: [443, 30443] })
      const kp = events.find(e => e.kind === 30443)
      if (!kp) throw new Error(`no KeyPackage of ${who.name} on the relay`)
      const keyPackage = mlsOf(kp).keyPackage
      const result = await createCommit({ state: alice.state, cipherSuite: impl }, { extraProposals: [{ proposalType: 'add', add: { keyPackage } }], ratchetTreeExtension: true })
      alice.state = result.newState
      const commit = groupMessage(h, result.commit)
      alice.sent.add(commit.id)
      await publisher.publish(commit)
      await publisher.publish(giftWrappedWelcome(alice, who, result.welcome, kp.id, relay.url))
      say(`Alice fetched ${who.name}'s KeyPackage from the relay, published the commit adding ${who.name} (kind 445) and a gift-wrapped Welcome (kind 1059).`)
    }

    /** `who` opens its inbox: the gift-wrap REQ, AUTH when the relay asks for it, the same REQ again, then joins. */
    const acceptWelcome = async who => {
      const inbox = await open()
      const filter = { kinds: [1059], '#p': [who.pubkey], since: now() - 7 * 24 * 3600 }
      const first = await inbox.query('inbox_giftwrap', filter)
      if (first.closed) say(`${who.name}'s inbox REQ was refused before AUTH: "${first.closed}".`)
      await inbox.auth(who.secretKey, relay.url)
      say(`${who.name} authenticated (NIP-42) as the recipient and sent the same REQ again.`)
      const { events } = await inbox.query('inbox_giftwrap', filter)
      const wrap = events[0]
      if (!wrap) throw new Error(`${who.name} found no Welcome`)
      const rumor = nip59.unwrapEvent(wrap, who.secretKey)
      if (rumor.kind !== 444 || rumor.pubkey !== alice.pubkey) throw new Error('not a Welcome from Alice')
      const welcome = mlsOf(rumor).welcome
      who.state = await joinGroup(welcome, who.keys.publicPackage, who.keys.privatePackage, emptyPskIndex, impl)
      say(`${who.name} unwrapped the Welcome from ${alice.name} and joined the group at epoch ${who.state.groupContext.epoch}.`)
    }

    /** `who` catches up on the group: one REQ {kinds:[445], #h:[h]}, no limit, no since. */
    const catchUp = async who => {
      const reader = await open()
      const { events, closed } = await reader.query(`${who.name}_group`, { kinds: [445], '#h': [h] })
      if (closed) throw new Error(`the group read was closed: ${closed}`)
      return readGroup(who, events)
    }

    await invite(bob)
    await acceptWelcome(bob)

    await invite(carol)
    await catchUp(bob)
    if (bob.state.groupContext.epoch !== alice.state.groupContext.epoch) throw new Error('Bob did not apply the commit')
    say(`Bob read the commit adding Carol from the relay; he is at epoch ${bob.state.groupContext.epoch}, like Alice.`)
    await acceptWelcome(carol)

    const send = async (who, text) => {
      const result = await createApplicationMessage(who.state, new TextEncoder().encode(text), impl)
      who.state = result.newState
      const event = groupMessage(h, { version: 'mls10', wireformat: 'mls_private_message', privateMessage: result.privateMessage })
      who.sent.add(event.id)
      await publisher.publish(event)
      say(`${who.name} sent "${text}" (kind 445, signed by a throwaway key).`)
    }
    await send(alice, 'Welcome, Carol!')
    await send(bob, 'Hi Carol, good to have you here.')
    await send(carol, 'Thanks, glad to be in.')

    for (const who of [alice, bob, carol]) {
      const texts = await catchUp(who)
      say(`${who.name} read from the relay: ${texts.map(t => `"${t}"`).join(', ')}.`)
    }
    say(`Done: three members at epoch ${alice.state.groupContext.epoch} (group ${hex(alice.state.groupContext.groupId).slice(0, 16)}…), every message went through the relay.`)
  } finally {
    for (const c of connections) c.close()
    await relay.stop()
  }
}

main().catch(error => {
  console.error(`The example failed: ${error instanceof Error ? error.message : String(error)}`)
  process.exitCode = 1
})
