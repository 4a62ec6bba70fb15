// Fan-out: live subscribers to {kinds:[1]}, one or more publishers, every EVENT frame counted and checked off per
// subscription, and each publisher's events checked to arrive in the order it sent them.
import { summarize, type Summary } from '@msr/bench'
import { closeSockets, openSockets, verbOf, type BenchSocket } from './bench-socket.js'
import { laneSize, publish, type PublishResult } from './publish.js'

/** How the subscribers are laid out. */
export interface FanoutLayout {
  subscribers: number
  perConnection: number
  /** Publishing connections; the events are split into one contiguous slice each. */
  publishers: number
  /** EVENTs each publisher keeps unanswered. */
  window: number
  /** `--url`: subscribe to `{kinds:[1], authors}` (the bench's keys), so that other users' notes are not delivered. */
  authors?: string[] | undefined
}

/** What the subscribers received. */
export interface FanoutResult {
  subscribers: number
  publishers: number
  /** EVENTs each publisher kept unanswered at most. */
  window: number
  /** The subscriptions' filter, as printed. */
  filter: string
  connections: number
  events: number
  /** subscribers × events the relay accepted (rate-limited ones are not expected). */
  expected: number
  /** EVENT frames received (including any duplicates). */
  delivered: number
  /** (subscription, event) pairs never received. */
  missing: number
  duplicates: number
  /** Deliveries of a publisher's event after one it sent later, on the same subscription (the relay keeps each connection's order). */
  outOfOrder: number
  /** EVENT frames for events this round did not publish. */
  stray: number
  /** From the first EVENT published to the last EVENT frame received. */
  seconds: number
  deliveriesPerSecond: number
  subscribeSeconds: number
  publish: PublishResult
  /** Subscriber connections the relay closed (1008: too slow to read). */
  closedByRelay: number
  /** Per (subscription, event) delivery: from sending the EVENT (bench clock) to receiving it on the subscription. */
  publishToDeliver: Summary
}

/** Give up waiting for deliveries once none has arrived for this long after the last OK. */
const IDLE_MS = 5000

// Subscription ids are `s` + 3 digits, so the id of each delivered event sits at a fixed offset:
// `["EVENT","s000",{"id":"` is 24 bytes.
const SUB_DIGITS_AT = 11
const EVENT_ID_AT = '["EVENT","s000",{"id":"'.length
const PUBLISHED_ID_AT = '["EVENT",{"id":"'.length

const NIBBLE = new Int8Array(256).fill(-1)
for (let i = 0; i < 16; i++) NIBBLE['0123456789abcdef'.charCodeAt(i)] = i

/** `digits` hex digits at `at` as an integer (up to 7: a small integer, never boxed). */
const hexAt = (bytes: Buffer, at: number, digits: number): number => {
  let v = 0
  for (let i = at; i < at + digits; i++) v = (v << 4) | (NIBBLE[bytes[i] as number] as number)
  return v
}

/**
 * The published events by the first 13 hex digits of their id (52 bits: a collision among a few thousand events is
 * vanishingly rare), as two small integers in an open-addressing table of typed arrays: looking up a delivery
 * allocates nothing (a Map keyed by 52-bit numbers would box every key).
 */
export class IdTable {
  private readonly high: Int32Array
  private readonly low: Int32Array
  /** Event index + 1; 0 for an empty slot. */
  private readonly slots: Int32Array
  private readonly mask: number

  constructor(capacity: number) {
    let size = 16
    while (size < 2 * capacity) size *= 2
    this.high = new Int32Array(size)
    this.low = new Int32Array(size)
    this.slots = new Int32Array(size)
    this.mask = size - 1
  }

  /** Files event `index` under the id at bytes[at]; false when an id with the same 13 digits is there already. */
  add(bytes: Buffer, at: number, index: number): boolean {
    const slot = this.find(hexAt(bytes, at, 7), hexAt(bytes, at + 7, 6))
    if (this.slots[slot] !== 0) return false
    this.high[slot] = hexAt(bytes, at, 7)
    this.low[slot] = hexAt(bytes, at + 7, 6)
    this.slots[slot] = index + 1
    return true
  }

  /** The index of the event whose id is at bytes[at], or -1. */
  get(bytes: Buffer, at: number): number {
    return (this.slots[this.find(hexAt(bytes, at, 7), hexAt(bytes, at + 7, 6))] as number) - 1
  }

  /** The slot holding (high, low), or the empty one where it would go (linear probing). */
  private find(high: number, low: number): number {
    let slot = high & this.mask
    while (this.slots[slot] !== 0 && (this.high[slot] !== high || this.low[slot] !== low)) slot = (slot + 1) & this.mask
    return slot
  }
}

const subId = (local: number): string => `s${String(local).padStart(3, '0')}`

const localIndexAt = (bytes: Buffer, at: number): number =>
  ((bytes[at] as number) - 48) * 100 + ((bytes[at + 1] as number) - 48) * 10 + ((bytes[at + 2] as number) - 48)

const ID_PREFIX = Buffer.from('{"id":"')
const SUB_PREFIX = Buffer.from('["EVENT","s')

/** Whether `bytes` holds `expected` at `at` (a byte loop: cheaper than Buffer.compare's native call for a few bytes). */
const holds = (bytes: Buffer, expected: Buffer, at: number): boolean => {
  for (let i = 0; i < expected.length; i++) if (bytes[at + i] !== expected[i]) return false
  return true
}

/** Whether the EVENT frame at bytes[start] is laid out as this relay writes it: compact JSON, `id` first. */
const compactEvent = (bytes: Buffer, start: number): boolean =>
  holds(bytes, SUB_PREFIX, start) && holds(bytes, ID_PREFIX, start + EVENT_ID_AT - ID_PREFIX.length)

/** A delivered EVENT laid out otherwise (another relay, with `--url`), parsed: its subscription's local index and event index. */
const parsedDelivery = (frame: Buffer, ids: IdTable): { local: number; index: number } => {
  const [, sub, event] = JSON.parse(frame.toString('utf8')) as [string, string, { id?: string }]
  return { local: Number(sub.slice(1)), index: ids.get(Buffer.from(`${event.id ?? ''}`.padEnd(13, 'x'), 'latin1'), 0) }
}

/** Opens the subscriber connections and waits for every subscription's EOSE. */
const subscribe = async (url: string, layout: FanoutLayout): Promise<BenchSocket[]> => {
  const sockets = await openSockets(url, Math.ceil(layout.subscribers / layout.perConnection))
  await Promise.all(
    sockets.map(
      (socket, c) =>
        new Promise<void>((resolve, reject) => {
          const count = Math.min(layout.perConnection, layout.subscribers - c * layout.perConnection)
          let pending = count
          socket.onFrame = frame => {
            const verb = verbOf(frame)
            if (verb === 'CLOSED' || verb === 'NOTICE') reject(new Error(`subscription refused: ${frame.toString()}`))
            if (verb === 'EOSE' && --pending === 0) resolve()
          }
          // limit 0: no backfill from the (large) store, just the live subscription (NIP-01).
          const filter = layout.authors ? { kinds: [1], authors: layout.authors, limit: 0 } : { kinds: [1], limit: 0 }
          for (let i = 0; i < count; i++) socket.send(JSON.stringify(['REQ', subId(i), filter]))
        }),
    ),
  )
  return sockets
}

/** Publishes the warm-up events (untimed, so that JIT and buffers are warm) and waits until they were delivered. */
const warmUp = async (sockets: BenchSocket[], publishers: BenchSocket[], frames: readonly Buffer[], layout: FanoutLayout): Promise<void> => {
  if (frames.length === 0) return
  let delivered = 0
  let last = performance.now()
  let target = frames.length * layout.subscribers
  let allIn: () => void = () => undefined
  const everything = new Promise<void>(resolve => (allIn = resolve))
  for (const socket of sockets)
    socket.onFrame = frame => {
      if (verbOf(frame) !== 'EVENT') return
      last = performance.now()
      if (++delivered >= target) allIn()
    }
  const published = await publish(publishers, frames, layout.window)
  // Rate-limited warm-up events are never delivered: wait only for the accepted ones.
  target = (published.stored + published.duplicates) * layout.subscribers
  if (delivered >= target) allIn()
  await settled(everything, () => last, IDLE_MS)
}

/**
 * Runs one fan-out round: subscribe, publish `warmup` untimed, then publish `frames` (kind 1) from `publishers`
 * separate connections (a contiguous slice each) and count and check off every delivery. `onSettled` runs once the
 * last delivery arrived (or none came for IDLE_MS), before the latencies are sorted: where a CPU reading ends.
 */
export const measureFanout = async (
  url: string, frames: readonly Buffer[], warmup: readonly Buffer[], layout: FanoutLayout, onSettled?: () => void,
): Promise<FanoutResult> => {
  const events = frames.length
  const ids = new IdTable(events)
  if (!frames.every((f, i) => ids.add(f, PUBLISHED_ID_AT, i))) throw new Error('fan-out events share an id prefix; rerun (new keys, new events)')
  const subscribeStarted = performance.now()
  const sockets = await subscribe(url, layout)
  const subscribeSeconds = (performance.now() - subscribeStarted) / 1000
  const publishers = await openSockets(url, layout.publishers)
  await warmUp(sockets, publishers, warmup, layout)

  const sentAt = new Float64Array(events)
  const notAccepted = new Set<string>()
  const latencies = new Float64Array(layout.subscribers * events)
  const lanes = layout.publishers
  const perLane = laneSize(events, lanes)
  let timed = 0
  let expected = layout.subscribers * events
  let delivered = 0
  let duplicates = 0
  let outOfOrder = 0
  let unique = 0
  let lastDelivery = 0
  let stray = 0
  let allIn: () => void = () => undefined
  const everything = new Promise<void>(resolve => (allIn = resolve))
  for (const socket of sockets) {
    const seen = new Uint8Array(layout.perConnection * events)
    // Per (subscription, publisher): the index of the last event received, to check each publisher's order.
    const last = new Int32Array(layout.perConnection * lanes).fill(-1)
    const count = (local: number, index: number): void => {
      const now = socket.readAt
      lastDelivery = now
      delivered++
      if (index < 0) return void stray++
      const slot = local * events + index
      if (seen[slot] === 1) return void duplicates++
      seen[slot] = 1
      const lane = local * lanes + Math.floor(index / perLane)
      if (index < (last[lane] as number)) outOfOrder++
      else last[lane] = index
      latencies[timed++] = now - (sentAt[index] as number)
      if (++unique >= expected) allIn()
    }
    const parsed = (frame: Buffer) => {
      const { local, index } = parsedDelivery(frame, ids)
      count(local, index)
    }
    // The hot path: fixed offsets in the bytes read, no Buffer per frame.
    socket.onText = (bytes, start, end) => {
      if (bytes[start + 2] !== 0x45 || bytes[start + 3] !== 0x56) return // not ["EV…
      if (!compactEvent(bytes, start)) return parsed(bytes.subarray(start, end))
      count(localIndexAt(bytes, start + SUB_DIGITS_AT), ids.get(bytes, start + EVENT_ID_AT))
    }
    socket.onFrame = frame => {
      if (verbOf(frame) !== 'EVENT') return
      if (!compactEvent(frame, 0)) return parsed(frame)
      count(localIndexAt(frame, SUB_DIGITS_AT), ids.get(frame, EVENT_ID_AT))
    }
  }

  const started = performance.now()
  lastDelivery = started
  const published = await publish(publishers, frames, layout.window, { sentAt, notAccepted })
  // Events the relay did not accept (rate limited) are not expected anywhere.
  expected = layout.subscribers * (events - notAccepted.size)
  if (unique >= expected) allIn()
  await settled(everything, () => lastDelivery, IDLE_MS)
  const seconds = (lastDelivery - started) / 1000
  const closedByRelay = sockets.filter(s => s.closeCode !== undefined).length
  onSettled?.()
  for (const socket of sockets) socket.onText = undefined
  await closeSockets([...sockets, ...publishers])
  return {
    subscribers: layout.subscribers,
    publishers: layout.publishers,
    window: layout.window,
    filter: layout.authors ? `{kinds:[1],authors:[${layout.authors.length} bench keys]}` : '{kinds:[1]}',
    connections: sockets.length,
    events,
    expected,
    delivered,
    missing: Math.max(0, expected - unique),
    duplicates,
    outOfOrder,
    stray,
    seconds,
    deliveriesPerSecond: seconds > 0 ? delivered / seconds : 0,
    subscribeSeconds,
    publish: published,
    closedByRelay,
    publishToDeliver: summarize(latencies.subarray(0, timed)),
  }
}

/** Resolves when `done` does, or once `last()` (a performance.now() timestamp) is older than `idleMs`. */
const settled = (done: Promise<void>, last: () => number, idleMs: number): Promise<void> =>
  new Promise(resolve => {
    const timer = setInterval(() => performance.now() - last() > idleMs && finish(), 100)
    const finish = () => (clearInterval(timer), resolve())
    void done.then(finish)
  })
