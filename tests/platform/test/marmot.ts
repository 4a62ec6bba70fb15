// Helpers of the Marmot interoperability tests: a relay started with services/relay/config/marmot.toml,
// raw-socket REQs whose filter JSON is written in the order rust-nostr serialises it, the Marmot events
// (KeyPackages 30443/443, group messages 445, gift-wrapped Welcomes 1059) and real MLS artefacts made
// with ts-mls (the TypeScript MLS implementation marmot-ts is built on).
// What the clients send is described in /work/shared/design/marmot-traffic.md (verified in their source).
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { finalizeEvent, generateSecretKey, getPublicKey, type NostrEvent } from 'nostr-tools/pure'
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
  type CiphersuiteImpl,
  type ClientConfig,
  type ClientState,
  type KeyPackage,
  type MLSMessage,
  type PrivateKeyPackage,
  type Welcome,
} from 'ts-mls'
import { makeKeyPackageRef } from 'ts-mls/keyPackage.js'
import { defaultClientConfig } from 'ts-mls/clientConfig.js'
import { freePort, now, RelayClient, RELAY_CLI, removeDir, ROOT, spawnService, tempDir, waitReady, type Service, type Signer } from './platform.js'

/** The Marmot profile, exactly as shipped. */
export const MARMOT_CONFIG = join(ROOT, 'services/relay/config/marmot.toml')

export interface MarmotRelay {
  url: string
  service: Service
  stop(): Promise<void>
}

/**
 * `msr-relay serve --config marmot.toml` on a free loopback port, with a temporary data directory and
 * the relay tag of NIP-42 set to its ws:// URL. Metrics are off (the profile would demand a key) and
 * `env` goes on top (e.g. RELAY_NETWORK__TRUSTED_PROXIES=1 to take X-Forwarded-For as the client address).
 */
export const startMarmotRelay = async (env: Record<string, string> = {}): Promise<MarmotRelay> => {
  const dir = await tempDir()
  const port = await freePort()
  const url = `ws://127.0.0.1:${port}`
  const service = spawnService(RELAY_CLI, ['serve', '--config', MARMOT_CONFIG], {
    PORT: String(port),
    RELAY_DATA__PATH: join(dir, 'relay'),
    RELAY_NETWORK__PUBLIC_URL: url,
    RELAY_NETWORK__HOST: '127.0.0.1',
    RELAY_METRICS__ENABLED: 'false',
    RELAY_NETWORK__TRUSTED_PROXIES: '0',
    ...env,
  })
  try {
    await waitReady(service, `http://127.0.0.1:${port}/readyz`, 'the Marmot relay')
  } catch (error) {
    await service.stop()
    await removeDir(dir)
    throw error
  }
  return {
    url,
    service,
    stop: async () => {
      await service.stop()
      await removeDir(dir)
    },
  }
}

/** A connection that never answers the AUTH challenge (White Noise's ephemeral, group and discovery planes). */
export const anonymous = (relay: MarmotRelay, ip?: string): Promise<RelayClient> =>
  RelayClient.connect(relay.url, ip === undefined ? undefined : { 'x-forwarded-for': ip })

export interface ReqAnswer {
  events: NostrEvent[]
  /** The message that ended the stored events: EOSE or CLOSED. */
  end: 'EOSE' | 'CLOSED'
  reason?: string
}

/**
 * `["REQ", subId, filter]` as given (key order kept, so the JSON is the client's byte for byte), the stored
 * events until EOSE or CLOSED. After EOSE the subscription stays open (a long-lived one, like rust-nostr's);
 * `close` sends CLOSE.
 */
export const req = async (client: RelayClient, subId: string, filter: Record<string, unknown>, close = true): Promise<ReqAnswer> => {
  client.send(['REQ', subId, filter])
  const events: NostrEvent[] = []
  for (;;) {
    const m = await client.next(x => (x[0] === 'EVENT' || x[0] === 'EOSE' || x[0] === 'CLOSED') && x[1] === subId, `the answer to REQ ${subId}`)
    if (m[0] === 'EVENT') {
      events.push(m[2] as NostrEvent)
      continue
    }
    if (m[0] === 'EOSE' && close) client.send(['CLOSE', subId])
    return m[0] === 'EOSE' ? { events, end: 'EOSE' } : { events, end: 'CLOSED', reason: String(m[2]) }
  }
}

/** Sends every event first, then collects the OKs (pipelined, as a busy client does). */
export const publishAll = async (client: RelayClient, events: NostrEvent[]): Promise<unknown[][]> => {
  for (const event of events) client.send(['EVENT', event])
  const oks: unknown[][] = []
  for (const event of events) oks.push(await client.next(m => m[0] === 'OK' && m[1] === event.id, `OK for ${event.id}`))
  return oks
}

export const signAt = (signer: Signer, kind: number, tags: string[][], content: string, createdAt = now()): NostrEvent =>
  finalizeEvent({ kind, created_at: createdAt, tags, content }, signer.secretKey)

export const hex = (bytes: Uint8Array): string => Buffer.from(bytes).toString('hex')
export const b64 = (bytes: Uint8Array): string => Buffer.from(bytes).toString('base64')
export const unb64 = (text: string): Uint8Array => new Uint8Array(Buffer.from(text, 'base64'))
export const randomHex = (bytes = 32): string => randomBytes(bytes).toString('hex')

// ---------------------------------------------------------------------------------------------
// MLS (ts-mls)

/** Ciphersuite 0x0001, the one Marmot clients advertise (`mls_ciphersuite "0x0001"`). */
export const CIPHERSUITE = 'MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519'
export const mlsSuite = (): Promise<CiphersuiteImpl> => getCiphersuiteImpl(getCiphersuiteFromName(CIPHERSUITE))

/**
 * A reader that may see a whole history at once, out of order within a second: keys kept for many skipped
 * generations (ts-mls keeps 10 by default and would drop the rest).
 */
export const catchUpConfig: ClientConfig = {
  ...defaultClientConfig,
  keyRetentionConfig: { retainKeysForGenerations: 5000, retainKeysForEpochs: 4, maximumForwardRatchetSteps: 5000 },
}

export interface MlsKeys {
  publicPackage: KeyPackage
  privatePackage: PrivateKeyPackage
}

/** A KeyPackage whose basic credential is the member's Nostr pubkey (as Marmot does). */
export const newKeyPackage = (pubkey: string, impl: CiphersuiteImpl): Promise<MlsKeys> =>
  generateKeyPackage({ credentialType: 'basic', identity: new Uint8Array(Buffer.from(pubkey, 'hex')) }, defaultCapabilities(), defaultLifetime, [], impl)

/** The KeyPackage as an MLSMessage, TLS-encoded (the bytes Marmot puts base64 in a 30443's content). */
export const encodeKeyPackage = (keyPackage: KeyPackage): Uint8Array =>
  encodeMlsMessage({ version: 'mls10', wireformat: 'mls_key_package', keyPackage })

export const decodeMls = (bytes: Uint8Array): MLSMessage => {
  const decoded = decodeMlsMessage(bytes, 0)
  if (!decoded) throw new Error('not an MLSMessage')
  return decoded[0]
}

export const decodeKeyPackage = (content: string): KeyPackage => {
  const m = decodeMls(unb64(content))
  if (m.wireformat !== 'mls_key_package') throw new Error(`expected a KeyPackage, got ${m.wireformat}`)
  return m.keyPackage
}

export const keyPackageRef = async (keyPackage: KeyPackage, impl: CiphersuiteImpl): Promise<string> => hex(await makeKeyPackageRef(keyPackage, impl.hash))

export { createApplicationMessage, createCommit, createGroup, emptyPskIndex, encodeMlsMessage, joinGroup, processPrivateMessage, type ClientState, type Welcome }

/** MLS group state of one member, and the Nostr group id (`h`) the group's 445s carry. */
export interface Member {
  name: string
  signer: Signer
  keys: MlsKeys
  state?: ClientState
}

/** The application message `text` as a Marmot 445 (see groupMessage), and the sender's new state. */
export const sendText = async (member: Member, h: string, text: string, impl: CiphersuiteImpl): Promise<NostrEvent> => {
  if (!member.state) throw new Error(`${member.name} is not in a group`)
  const result = await createApplicationMessage(member.state, new TextEncoder().encode(text), impl)
  member.state = result.newState
  return groupMessage(h, encodeMlsMessage({ version: 'mls10', wireformat: 'mls_private_message', privateMessage: result.privateMessage }))
}

/**
 * Reads a 445 as `member`: the application text, 'commit' for a handshake it applied, or undefined for a
 * message of an epoch before the member joined (MLS forward secrecy: not readable, correctly).
 */
export const receive = async (member: Member, event: NostrEvent, impl: CiphersuiteImpl): Promise<string | 'commit' | undefined> => {
  if (!member.state) throw new Error(`${member.name} is not in a group`)
  const m = decodeMls(unb64(event.content))
  if (m.wireformat !== 'mls_private_message') throw new Error(`unexpected ${m.wireformat} in a 445`)
  if (m.privateMessage.epoch < member.state.groupContext.epoch) return undefined
  const result = await processPrivateMessage(member.state, m.privateMessage, emptyPskIndex, impl)
  member.state = result.newState
  return result.kind === 'applicationMessage' ? new TextDecoder().decode(result.message) : 'commit'
}

// ---------------------------------------------------------------------------------------------
// Marmot events

/** The tags of a 30443 (and, without `d`, of its legacy 443 twin), as MDK and marmot-ts write them. */
export const keyPackageTags = (opts: { d?: string; ref: string; relays: string[] }): string[][] => [
  ...(opts.d === undefined ? [] : [['d', opts.d]]),
  ['mls_protocol_version', '1.0'],
  ['mls_ciphersuite', '0x0001'],
  ['mls_extensions', '0x000a', '0xf2ee'],
  ['encoding', 'base64'],
  ['i', opts.ref],
  ['client', 'msr-interop-tests/0.1'],
  ['relays', ...opts.relays],
]

/** A KeyPackage event (30443 with `d`, or 443) carrying `keys` TLS-encoded then base64. */
export const keyPackageEvent = async (
  signer: Signer,
  kind: 30443 | 443,
  keys: MlsKeys,
  impl: CiphersuiteImpl,
  opts: { d?: string; relays: string[]; createdAt?: number },
): Promise<NostrEvent> => {
  const tags = keyPackageTags({ d: kind === 30443 ? opts.d : undefined, ref: await keyPackageRef(keys.publicPackage, impl), relays: opts.relays })
  return signAt(signer, kind, tags, b64(encodeKeyPackage(keys.publicPackage)), opts.createdAt)
}

/**
 * A Marmot group message: kind 445 signed by a fresh key, tags exactly `["h", id]`, `["encoding","base64"]`.
 * The content is the MLSMessage base64; Marmot wraps it once more with NIP-44 under a key derived from the
 * group's exporter secret, a layer the relay never sees into and these tests skip.
 */
export const groupMessage = (h: string, mls: Uint8Array, createdAt = now()): NostrEvent =>
  finalizeEvent({ kind: 445, created_at: createdAt, tags: [['h', h], ['encoding', 'base64']], content: b64(mls) }, generateSecretKey())

/** rust-nostr's NIP-59 timestamp tweak: up to two days in the past. */
const TWO_DAYS = 2 * 24 * 3600
export const THIRTY_DAYS = 30 * 24 * 3600

/**
 * A NIP-59 gift wrap of `rumor` from `sender` to `recipient`, shaped as White Noise sends a Welcome: one
 * `p` tag, `expiration` 30 days ahead, created_at randomised up to two days back, signed by a throwaway
 * key. `tags` replaces the wrap's tags (to build malformed ones).
 */
export const giftWrap = (
  rumor: { kind: number; content: string; tags: string[][] },
  sender: Signer,
  recipient: string,
  tags?: string[][],
): NostrEvent => {
  const seal = nip59.createSeal(nip59.createRumor({ ...rumor, created_at: now() }, sender.secretKey), sender.secretKey, recipient)
  const wrapKey = generateSecretKey()
  const content = nip44.encrypt(JSON.stringify(seal), nip44.getConversationKey(wrapKey, recipient))
  return finalizeEvent(
    {
      kind: 1059,
      created_at: now() - Math.floor(Math.random() * TWO_DAYS),
      tags: tags ?? [['p', recipient], ['expiration', String(now() + THIRTY_DAYS)]],
      content,
    },
    wrapKey,
  )
}

export const unwrap = (wrap: NostrEvent, recipient: Signer): { kind: number; content: string; tags: string[][]; pubkey: string } =>
  nip59.unwrapEvent(wrap, recipient.secretKey)

/** A Marmot Welcome rumor (kind 444): the MLS Welcome base64, the KeyPackage event it consumed, the group relays. */
export const welcomeRumor = (welcome: Welcome, keyPackageEventId: string, relays: string[]): { kind: number; content: string; tags: string[][] } => ({
  kind: 444,
  content: b64(encodeMlsMessage({ version: 'mls10', wireformat: 'mls_welcome', welcome })),
  tags: [['e', keyPackageEventId], ['relays', ...relays], ['encoding', 'base64']],
})

export const decodeWelcome = (content: string): Welcome => {
  const m = decodeMls(unb64(content))
  if (m.wireformat !== 'mls_welcome') throw new Error(`expected a Welcome, got ${m.wireformat}`)
  return m.welcome
}

export const pubkeyOf = (secretKey: Uint8Array): string => getPublicKey(secretKey)
