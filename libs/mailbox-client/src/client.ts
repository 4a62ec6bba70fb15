// The user client: every request signed with NIP-98 by the caller's key or signer.
import { MailboxApiError } from './errors.js'
import { artifactB64, baseUrl as checkBaseUrl, groupIdSegment, integer, nonEmpty, pubkeyHex, stringTags } from './input.js'
import { readDmHint, readGroupAnswer, readKeyPackage, readPage, readWelcome, type DmHint, type Group, type KeyPackageItem, type Page, type WelcomeItem } from './items.js'
import { createMailbox, paging, ttlField, type ListOptions, type Mailbox } from './mailbox.js'
import { httpAuthHeader } from './nip98.js'
import { toRequestSigner, type MailboxSigner } from './signer.js'
import { createTransport, type TransportOptions } from './transport.js'

/** Options of `createMailboxClient`. */
export interface MailboxClientOptions extends TransportOptions {
  /** The API's PUBLIC_URL, the same string the server is configured with: every URL, and every NIP-98 `u` tag, starts with it. */
  baseUrl: string
  /** A secret key (Uint8Array, 64 hex characters or nsec1…) or the application's signer. */
  signer: MailboxSigner
}

/** A KeyPackage for someone's mailbox. */
export interface KeyPackageDeposit {
  /** Hex or npub. */
  recipient: string
  /** The serialized KeyPackage: bytes, or standard padded base64. */
  content: Uint8Array | string
  tags?: string[][]
  ttlSeconds?: number
}

/** A Welcome for someone's mailbox. */
export interface WelcomeDeposit {
  /** Hex or npub. */
  recipient: string
  groupId: string
  /** The serialized Welcome: bytes, or standard padded base64. */
  welcome: Uint8Array | string
  ratchetTree?: Uint8Array | string
  ttlSeconds?: number
}

/** Options of a DM hint listing. */
export interface DmHintListOptions extends ListOptions {
  /** Unix seconds: hints received at or after it. */
  since?: number
}

/** The mailbox API, as one NIP-98 identity. */
export interface MailboxClient {
  /** The caller's pubkey (hex): the recipient every listing and ack acts for. */
  pubkey(): Promise<string>
  keyPackages: Mailbox<KeyPackageDeposit, KeyPackageItem>
  welcomes: Mailbox<WelcomeDeposit, WelcomeItem>
  groups: {
    /** A group registry entry, or undefined when the API has none (404 GROUP_NOT_FOUND). */
    get(groupId: string): Promise<Group | undefined>
  }
  dmHints: {
    /** One page of the caller's DM hints, oldest first. */
    list(options?: DmHintListOptions): Promise<Page<DmHint>>
  }
}

const keyPackageBody = (input: KeyPackageDeposit): Record<string, unknown> => ({
  recipient: pubkeyHex(input.recipient, 'recipient'),
  content_b64: artifactB64(input.content, 'content'),
  ...(input.tags !== undefined && { tags: stringTags(input.tags, 'tags') }),
  ...ttlField(input.ttlSeconds),
})

const welcomeBody = (input: WelcomeDeposit): Record<string, unknown> => ({
  recipient: pubkeyHex(input.recipient, 'recipient'),
  group_id: nonEmpty(input.groupId, 'groupId'),
  welcome_b64: artifactB64(input.welcome, 'welcome'),
  ...(input.ratchetTree !== undefined && { ratchet_tree_b64: artifactB64(input.ratchetTree, 'ratchetTree') }),
  ...ttlField(input.ttlSeconds),
})

/** A client of the mailbox API at `baseUrl` signing as `signer`; options and signer are checked here, before any request. */
export const createMailboxClient = (options: MailboxClientOptions): MailboxClient => {
  const base = checkBaseUrl(options.baseUrl)
  const signer = toRequestSigner(options.signer)
  const send = createTransport(base, (method, url, body) => httpAuthHeader(signer, method, url, body), options)
  const readHints = readPage(readDmHint)
  return {
    pubkey: signer.pubkey,
    keyPackages: createMailbox(send, signer.pubkey, { path: '/keypackages', body: keyPackageBody, item: readKeyPackage }),
    welcomes: createMailbox(send, signer.pubkey, { path: '/welcome', body: welcomeBody, item: readWelcome }),
    groups: {
      get: async groupId => {
        const path = `/groups/${groupIdSegment(groupId)}`
        try {
          return await send({ method: 'GET', path, retry: 'idempotent', read: readGroupAnswer })
        } catch (error) {
          if (error instanceof MailboxApiError && error.status === 404 && error.code === 'GROUP_NOT_FOUND') return undefined
          throw error
        }
      },
    },
    dmHints: {
      list: async (opts = {}) => {
        const query = { ...paging(opts), since: opts.since === undefined ? undefined : integer(opts.since, 'since', 0) }
        return send({ method: 'GET', path: '/dm-hints', query: { recipient: await signer.pubkey(), ...query }, retry: 'idempotent', read: readHints })
      },
    },
  }
}
