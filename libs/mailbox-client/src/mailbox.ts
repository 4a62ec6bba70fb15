// One mailbox (KeyPackages or Welcomes) for its recipient: deposit for someone, list, ack, drain one's own.
import { MailboxApiError } from './errors.js'
import { integer, itemId, MAX_PAGE_SIZE, nonEmpty } from './input.js'
import { readDeposit, readPage, type MailboxItem, type Page } from './items.js'
import type { Send } from './transport.js'

/** Paging options of a listing. */
export interface ListOptions {
  /** Items per page: 1–100 for mailboxes, 1–500 for DM hints and groups (another is refused before any request); the API's default otherwise. */
  limit?: number
  /** The `nextCursor` of the previous page. */
  cursor?: string
}

/** Options of `drain`. */
export interface DrainOptions {
  /** Items per page. */
  limit?: number
  /** Acknowledge each item once the consumer has taken it (default true); false only iterates. */
  ack?: boolean
}

/** A mailbox: deposit into another's, read and acknowledge one's own. */
export interface Mailbox<Deposit, Item extends MailboxItem> {
  /**
   * Stores an item for `recipient`, answering its id once committed. Retried only when the server
   * certainly did not store it (429, 503, no connection); after a timeout or a connection lost
   * mid-request it throws MailboxNetworkError, and depositing again may leave a duplicate.
   */
  deposit(input: Deposit): Promise<{ id: string }>
  /** One page of the caller's unexpired items, oldest first (a first pickup is recorded as `pickedUpAt`). */
  list(options?: ListOptions): Promise<Page<Item>>
  /**
   * Deletes one of the caller's items: true when it did, false when the API answers 404
   * MAILBOX_NOT_FOUND: already acknowledged (also by a retry of this very call whose first answer was
   * lost), expired, or not the caller's. Either way the item is no longer in the mailbox.
   */
  ack(id: string): Promise<boolean>
  /**
   * Every waiting item, page after page (following next_cursor). With `ack` (the default) an item is
   * acknowledged when the consumer asks for the next one, i.e. after the loop body that received it
   * has completed. Leaving the loop early (break, return, a throw) acknowledges nothing more: the item
   * in hand stays in the mailbox and comes again on the next drain. A failed ack throws from the
   * iterator, the item staying too. Items deposited meanwhile are included when they sort after.
   */
  drain(options?: DrainOptions): AsyncGenerator<Item, void, undefined>
}

/** What differs between the two mailboxes. */
export interface MailboxSpec<Deposit, Item> {
  /** `/keypackages` or `/welcome`. */
  path: string
  /** The JSON body of a deposit, with the input checked. */
  body: (input: Deposit) => Record<string, unknown>
  item: (raw: Record<string, unknown>) => Item
}

/** The common options of a deposit. */
export const ttlField = (ttlSeconds: unknown): { ttl_seconds?: number } =>
  ttlSeconds === undefined ? {} : { ttl_seconds: integer(ttlSeconds, 'ttlSeconds', 1) }

/**
 * The paging part of a listing's query, checked: `limit` from 1 to `maxLimit`, which defaults to the largest
 * page of DM hints and of groups (the same number; client.ts and admin.ts pass none).
 */
export const paging = (options: ListOptions, maxLimit: number = MAX_PAGE_SIZE.dmHints): { limit: number | undefined; cursor: string | undefined } => ({
  limit: options.limit === undefined ? undefined : integer(options.limit, 'limit', 1, maxLimit),
  cursor: options.cursor === undefined ? undefined : nonEmpty(options.cursor, 'cursor'),
})

// The default above stands for both: the compiler refuses it once their largest pages differ.
const _sameLargestPage: typeof MAX_PAGE_SIZE.groups = MAX_PAGE_SIZE.dmHints

/** A mailbox of `spec` for the caller whose pubkey `pubkey` resolves. */
export const createMailbox = <Deposit, Item extends MailboxItem>(send: Send, pubkey: () => Promise<string>, spec: MailboxSpec<Deposit, Item>): Mailbox<Deposit, Item> => {
  const readItems = readPage(spec.item)

  const list = async (options: ListOptions = {}): Promise<Page<Item>> => {
    const query = paging(options, MAX_PAGE_SIZE.mailbox)
    return send({ method: 'GET', path: spec.path, query: { recipient: await pubkey(), ...query }, retry: 'idempotent', read: readItems })
  }

  const ack = async (id: string): Promise<boolean> => {
    const path = `${spec.path}/${itemId(id)}/ack`
    try {
      return await send({ method: 'POST', path, retry: 'idempotent', read: () => true })
    } catch (error) {
      if (error instanceof MailboxApiError && error.status === 404 && error.code === 'MAILBOX_NOT_FOUND') return false
      throw error
    }
  }

  async function* pages(options: DrainOptions): AsyncGenerator<Item, void, undefined> {
    let cursor: string | undefined
    do {
      const page = await list({ ...(options.limit !== undefined && { limit: options.limit }), ...(cursor !== undefined && { cursor }) })
      for (const item of page.items) {
        yield item
        // Reached only when the consumer asks for the next item: its work on this one is done.
        if (options.ack !== false) await ack(item.id)
      }
      cursor = page.nextCursor
    } while (cursor !== undefined)
  }

  return {
    deposit: async input => {
      const body = spec.body(input)
      return send({ method: 'POST', path: spec.path, body, retry: 'refused', read: readDeposit })
    },
    list,
    ack,
    drain: (options = {}) => {
      // Checked here, before the first next(), so a bad option fails at the call.
      if (options.limit !== undefined) integer(options.limit, 'limit', 1, MAX_PAGE_SIZE.mailbox)
      return pages(options)
    },
  }
}
