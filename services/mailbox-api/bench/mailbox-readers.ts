// Recipients reading their mailboxes: GET a page (limit L), ack every item on it, follow next_cursor; pages and
// acks are signed on demand (item ids and cursors come from the API). A source of requests for the driver.
import type { BenchRequest, RequestSource } from './driver.js'
import type { Answer } from './http-client.js'
import type { AuthRequest } from './request-factory.js'
import type { SignPool } from './sign-pool.js'

/** A recipient: its key index (signs its requests) and pubkey (hex). */
export interface Recipient {
  key: number
  pubkey: string
}

/** How the readers behave. */
export interface ReaderSettings {
  /** The mailbox route, e.g. /api/v1/keypackages. */
  path: string
  limit: number
  /**
   * `once`: one pass over the mailbox, then the reader stops. `until-settled`: passes repeat (after `pollMs`
   * when one found nothing) until a pass that started after `settle()` finds the mailbox empty.
   */
  mode: 'once' | 'until-settled'
  pollMs: number
}

/** What the readers saw. */
export interface ReaderFigures {
  /** Distinct items returned. */
  picked: number
  /** Items returned again after their first pickup (they should have been acked). */
  duplicates: number
  /** Pages that answered something other than 200 or could not be read (that reader stopped). */
  badPages: number
  /** Passes that found an empty mailbox while deposits were still coming. */
  emptyPolls: number
}

interface Reader extends Recipient {
  /** The pass began after settle(): if it finds nothing, the reader is done. */
  passSettled: boolean
  passItems: number
  pendingAcks: number
  /** The pass has read its last page (no next_cursor); it ends when its acks are in. */
  lastPage: boolean
}

interface Page {
  items?: Array<{ id?: unknown }>
  next_cursor?: unknown
}

/** The readers of a set of recipients, as one request source. */
export class MailboxReaders implements RequestSource {
  readonly figures: ReaderFigures = { picked: 0, duplicates: 0, badPages: 0, emptyPolls: 0 }
  private readonly ready: BenchRequest[] = []
  private waiting: Array<() => void> = []
  private readonly seen = new Set<string>()
  private active = 0
  private settled = false

  constructor(
    private readonly signer: SignPool,
    private readonly recipients: readonly Recipient[],
    private readonly settings: ReaderSettings,
  ) {}

  /** Every reader starts its first pass. */
  start(): void {
    this.active = this.recipients.length
    for (const r of this.recipients) this.pass({ ...r, passSettled: this.settled, passItems: 0, pendingAcks: 0, lastPage: false })
  }

  /** No more deposits are coming: the next pass that finds nothing ends its reader. */
  settle(): void {
    this.settled = true
  }

  async next(): Promise<BenchRequest | undefined> {
    while (true) {
      const request = this.ready.shift()
      if (request) return request
      if (this.active === 0) return undefined
      await new Promise<void>(resolve => this.waiting.push(resolve))
    }
  }

  private wake(): void {
    const waiting = this.waiting
    this.waiting = []
    for (const resolve of waiting) resolve()
  }

  private pass(reader: Reader): void {
    Object.assign(reader, { passSettled: this.settled, passItems: 0, pendingAcks: 0, lastPage: false })
    this.enqueue(reader, [this.page(reader, undefined)])
  }

  private page(reader: Reader, cursor: string | undefined): { auth: AuthRequest; onAnswer: (a: Answer) => void; op: 'pickup' } {
    const query = `?recipient=${reader.pubkey}&limit=${this.settings.limit}${cursor === undefined ? '' : `&cursor=${encodeURIComponent(cursor)}`}`
    return { op: 'pickup', auth: { key: reader.key, method: 'GET', path: this.settings.path + query }, onAnswer: a => this.onPage(reader, a) }
  }

  private ack(reader: Reader, id: string): { auth: AuthRequest; onAnswer: () => void; op: 'ack' } {
    return { op: 'ack', auth: { key: reader.key, method: 'POST', path: `${this.settings.path}/${id}/ack` }, onAnswer: () => this.onAck(reader) }
  }

  /** Signs the requests (one batch, one signing thread) and queues them. */
  private enqueue(reader: Reader, unsigned: Array<Omit<BenchRequest, 'authorization' | 'createdAt'>>): void {
    void this.signer.sign(unsigned.map(u => u.auth)).then(({ headers, createdAt }) => {
      unsigned.forEach((u, i) => this.ready.push({ ...u, authorization: headers[i] as string, createdAt }))
      this.wake()
    })
  }

  private onPage(reader: Reader, answer: Answer): void {
    let page: Page
    try {
      page = answer.status === 200 ? (JSON.parse(answer.body.toString('utf8')) as Page) : {}
    } catch {
      page = {}
    }
    if (!Array.isArray(page.items)) return void (this.figures.badPages++, this.finish())
    const ids = page.items.flatMap(item => (typeof item.id === 'string' ? [item.id] : []))
    for (const id of ids) {
      if (this.seen.has(id)) this.figures.duplicates++
      else this.seen.add(id)
    }
    this.figures.picked += ids.length
    reader.passItems += ids.length
    reader.pendingAcks += ids.length
    const cursor = typeof page.next_cursor === 'string' ? page.next_cursor : undefined
    reader.lastPage = cursor === undefined
    const next = [...ids.map(id => this.ack(reader, id)), ...(cursor === undefined ? [] : [this.page(reader, cursor)])]
    if (next.length > 0) this.enqueue(reader, next)
    if (reader.lastPage && reader.pendingAcks === 0) this.endPass(reader)
  }

  private onAck(reader: Reader): void {
    reader.pendingAcks--
    if (reader.lastPage && reader.pendingAcks === 0) this.endPass(reader)
  }

  private endPass(reader: Reader): void {
    if (this.settings.mode === 'once') return this.finish()
    if (reader.passItems > 0) return this.pass(reader)
    if (reader.passSettled) return this.finish()
    this.figures.emptyPolls++
    setTimeout(() => this.pass(reader), this.settings.pollMs)
  }

  private finish(): void {
    this.active--
    if (this.active === 0) this.wake()
  }
}
