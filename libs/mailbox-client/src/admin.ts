// The admin client: the group registry's listing and metadata, with `Authorization: Bearer ADMIN_TOKEN`.
import { MailboxInputError } from './errors.js'
import { baseUrl as checkBaseUrl, nonEmpty, pubkeyHex } from './input.js'
import { readGroup, readGroupAnswer, readPage, type Group, type Page } from './items.js'
import { paging, type ListOptions } from './mailbox.js'
import { createTransport, type TransportOptions } from './transport.js'

/** Options of `createMailboxAdminClient`. */
export interface MailboxAdminClientOptions extends TransportOptions {
  /** The API's PUBLIC_URL. */
  baseUrl: string
  /** ADMIN_TOKEN; sent only in the Authorization header, never in an error message. */
  token: string
}

/** A group's metadata; a field left out keeps its stored value, null clears it. */
export interface GroupMetadata {
  groupId: string
  displayName?: string | null
  avatarUrl?: string | null
  /** Hex or npub. */
  ownerPubkey?: string | null
  relays?: string[]
}

/** The admin routes of the mailbox API. */
export interface MailboxAdminClient {
  groups: {
    /** One page of groups, ordered by id. */
    list(options?: ListOptions): Promise<Page<Group>>
    /** Creates or updates a group's metadata (epoch, last event and message count come only from relay hints); answers the group as stored. */
    upsert(metadata: GroupMetadata): Promise<Group>
  }
}

const groupBody = (meta: GroupMetadata): Record<string, unknown> => {
  const body: Record<string, unknown> = { group_id: nonEmpty(meta.groupId, 'groupId') }
  if (meta.displayName !== undefined) body.display_name = meta.displayName
  if (meta.avatarUrl !== undefined) body.avatar_url = meta.avatarUrl
  if (meta.ownerPubkey !== undefined) body.owner_pubkey = meta.ownerPubkey === null ? null : pubkeyHex(meta.ownerPubkey, 'ownerPubkey')
  if (meta.relays !== undefined) {
    if (!Array.isArray(meta.relays) || !meta.relays.every(r => typeof r === 'string')) throw new MailboxInputError('relays', 'expected an array of strings')
    body.relays = meta.relays
  }
  return body
}

/** An admin client of the mailbox API at `baseUrl`; its requests count against the caller's IP budget like any admin request. */
export const createMailboxAdminClient = (options: MailboxAdminClientOptions): MailboxAdminClient => {
  const base = checkBaseUrl(options.baseUrl)
  const token = nonEmpty(options.token, 'token')
  if (/\s/.test(token)) throw new MailboxInputError('token', 'contains whitespace')
  const authorization = `Bearer ${token}`
  const send = createTransport(base, async () => authorization, options)
  const readGroups = readPage(readGroup)
  return {
    groups: {
      list: async (opts = {}) => send({ method: 'GET', path: '/groups', query: paging(opts), retry: 'idempotent', read: readGroups }),
      upsert: async meta => send({ method: 'POST', path: '/groups', body: groupBody(meta), retry: 'idempotent', read: readGroupAnswer }),
    },
  }
}
