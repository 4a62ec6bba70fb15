// Who signs the NIP-98 events: a secret key held by the client, or the application's own signer
// (NIP-07 browser extension, NIP-46 remote signer, hardware) behind a small interface.
import { decode } from 'nostr-tools/nip19'
import { finalizeEvent, getPublicKey } from 'nostr-tools/pure'
import { MailboxInputError } from './errors.js'
import { pubkeyHex } from './input.js'

/** An unsigned Nostr event, as a signer receives it. */
export interface EventTemplate {
  kind: number
  created_at: number
  tags: string[][]
  content: string
}

/** A signed Nostr event (NIP-01). */
export interface SignedEvent extends EventTemplate {
  id: string
  pubkey: string
  sig: string
}

/**
 * The application's signer (NIP-07, NIP-46, hardware). Reading a mailbox needs its pubkey: give `pubkey`,
 * or `getPublicKey` (asked once, on first need). `sign` must sign afresh each time with BIP-340's random
 * auxiliary data, as nostr-tools and NIP-07/NIP-46 signers do: the API accepts each signature once, and
 * two requests to one URL within a second ask for the same event.
 */
export interface EventSigner {
  /** Hex or npub. */
  pubkey?: string
  getPublicKey?: () => Promise<string>
  sign: (template: EventTemplate) => Promise<SignedEvent>
}

/** A secret key (32 bytes, 64 hex characters or `nsec1…`), or an `EventSigner`. */
export type MailboxSigner = Uint8Array | string | EventSigner

/** What the client signs with: its pubkey (hex, resolved once) and a sign function checked against the template. */
export interface RequestSigner {
  pubkey(): Promise<string>
  sign(template: EventTemplate): Promise<SignedEvent>
}

const HEX64 = /^[0-9a-fA-F]{64}$/

const badKey = () => new MailboxInputError('signer', 'expected a secret key (32 bytes, 64 hex characters or nsec1…) or { sign, pubkey? | getPublicKey? }')

/** The 32 bytes of a secret key, refused unless it is a valid secp256k1 scalar. */
const secretKey = (value: Uint8Array | string): Uint8Array => {
  let key: Uint8Array | undefined
  if (value instanceof Uint8Array) key = value.length === 32 ? value : undefined
  else if (HEX64.test(value)) key = Uint8Array.from(value.match(/../g) as string[], byte => parseInt(byte, 16))
  else if (value.startsWith('nsec1')) {
    try {
      const decoded = decode(value)
      if (decoded.type === 'nsec') key = decoded.data
    } catch {
      // reported below
    }
  }
  try {
    if (key) getPublicKey(key)
  } catch {
    key = undefined
  }
  if (!key) throw badKey()
  return key
}

/** Only the NIP-01 fields: the server refuses an event with any other (some signers add their own). */
const nip01 = (e: SignedEvent): SignedEvent => ({ id: e.id, pubkey: e.pubkey, created_at: e.created_at, kind: e.kind, tags: e.tags, content: e.content, sig: e.sig })

const keySigner = (key: Uint8Array): RequestSigner => {
  const pubkey = getPublicKey(key)
  return { pubkey: async () => pubkey, sign: async template => nip01(finalizeEvent(template, key)) }
}

/** A signer that returns another event than the one asked for would only earn puzzling 401s: refuse it here, plainly. */
const checkSigned = (event: SignedEvent, template: EventTemplate, pubkey: string | undefined): SignedEvent => {
  const same =
    event.kind === template.kind &&
    event.created_at === template.created_at &&
    event.content === template.content &&
    JSON.stringify(event.tags) === JSON.stringify(template.tags) &&
    typeof event.id === 'string' &&
    typeof event.sig === 'string' &&
    (pubkey === undefined || event.pubkey === pubkey)
  if (!same) throw new MailboxInputError('signer', pubkey !== undefined && event.pubkey !== pubkey ? 'signed with another pubkey than its own' : 'returned an event other than the one it was asked to sign')
  return nip01(event)
}

const externalSigner = (signer: EventSigner): RequestSigner => {
  const declared = signer.pubkey === undefined ? undefined : pubkeyHex(signer.pubkey, 'signer.pubkey')
  let known = declared
  const pubkey = async (): Promise<string> => {
    if (known !== undefined) return known
    if (!signer.getPublicKey) throw new MailboxInputError('signer', 'reading a mailbox needs the signer’s pubkey: give pubkey or getPublicKey')
    // Cached only once known: a remote signer that failed to answer is asked again next time.
    known = pubkeyHex(await signer.getPublicKey(), 'signer.getPublicKey()')
    return known
  }
  return { pubkey, sign: async template => checkSigned(await signer.sign(template), template, known) }
}

/** The client's signer from its `signer` option; a bad key or signer is refused at once. */
export const toRequestSigner = (signer: MailboxSigner): RequestSigner => {
  if (signer instanceof Uint8Array || typeof signer === 'string') return keySigner(secretKey(signer))
  if (typeof signer !== 'object' || signer === null || typeof signer.sign !== 'function') throw badKey()
  return externalSigner(signer)
}
