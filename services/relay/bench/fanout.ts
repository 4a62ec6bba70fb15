// Fan-out: live subscribers to {kinds:[1]}, one publisher, every EVENT frame counted and checked off per subscription.
import { summarize, type Summary } from '@msr/bench'
import { closeSockets, openSockets, verbOf, type BenchSocket } from './bench-socket.js'
import { publish, type PublishResult } from './publish.js'

/** How the subscribers are laid out. */
export interface FanoutLayout {
  subscribers: number
  perConnection: number
  /** EVENTs the publisher keeps unanswered. */
  window: number
  /** `--url`: subscribe to `{kinds:[1], authors}` (the bench's keys), so that other users' notes are not delivered. */
  authors?: string[] | undefined
}

/** What the subscribers received. */
export interface FanoutResult {
  subscribers: number
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
const ID_KEY_CHARS = 13 // 52 bits of the id: a collision among a few thousand events is vanishingly rare

const NIBBLE = new Int8Array(256).fill(-1)
for (let i = 0; i < 16; i++) NIBBLE['0123456789abcdef'.charCodeAt(i)] = i

/** The first 13 hex digits of the id at `at`, as a number. */
const idKey = (frame: Buffer, at: number): number => {
  let v = 0
  for (let i = at; i < at + ID_KEY_CHARS; i++) v = v * 16 + (NIBBLE[frame[i] as number] as number)
  return v
}

const subId = (local: number): string => `s${String(local).padStart(3, '0')}`

const localIndexOf = (frame: Buffer): number =>
  ((frame[SUB_DIGITS_AT] as number) - 48) * 100 + ((frame[SUB_DIGITS_AT + 1] as number) - 48) * 10 + ((frame[SUB_DIGITS_AT + 2] as number) - 48)

const ID_PREFIX = Buffer.from('{"id":"')
const SUB_PREFIX = Buffer.from('["EVENT","s')

/**
 * The subscription (local index) and id key of a delivered EVENT: at fixed offsets when the relay writes compact
 * JSON with `id` first (this relay does), parsed otherwise (another relay, with `--url`).
 */
const deliveryOf = (frame: Buffer): { local: number; key: number } => {
  if (frame.compare(SUB_PREFIX, 0, SUB_PREFIX.length, 0, SUB_PREFIX.length) === 0 && frame.compare(ID_PREFIX, 0, ID_PREFIX.length, EVENT_ID_AT - ID_PREFIX.length, EVENT_ID_AT) === 0)
    return { local: localIndexOf(frame), key: idKey(frame, EVENT_ID_AT) }
  const [, sub, event] = JSON.parse(frame.toString('utf8')) as [string, string, { id?: string }]
  const id = Buffer.from(`${event.id ?? ''}`.padEnd(ID_KEY_CHARS, 'x'), 'latin1')
  return { local: Number(sub.slice(1)), key: idKey(id, 0) }
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
const warmUp = async (sockets: BenchSocket[], publisher: BenchSocket, frames: readonly Buffer[], layout: FanoutLayout): Promise<void> => {
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
  const published = await publish([publisher], frames, layout.window)
  // Rate-limited warm-up events are never delivered: wait only for the accepted ones.
  target = (published.stored + published.duplicates) * layout.subscribers
  if (delivered >= target) allIn()
  await settled(everything, () => last, IDLE_MS)
}

/**
 * Runs one fan-out round: subscribe, publish `warmup` untimed, then publish `frames` (kind 1) from a separate
 * connection and count and check off every delivery.
 */
export const measureFanout = async (url: string, frames: readonly Buffer[], warmup: readonly Buffer[], layout: FanoutLayout): Promise<FanoutResult> => {
  const events = frames.length
  const indexOf = new Map<number, number>(frames.map((f, i) => [idKey(f, PUBLISHED_ID_AT), i]))
  if (indexOf.size !== events) throw new Error('fan-out events share an id prefix; rerun (new keys, new events)')
  const subscribeStarted = performance.now()
  const sockets = await subscribe(url, layout)
  const subscribeSeconds = (performance.now() - subscribeStarted) / 1000
  const [publisher] = await openSockets(url, 1)
  if (!publisher) throw new Error('could not open the publisher connection')
  await warmUp(sockets, publisher, warmup, layout)

  const sentAt = new Float64Array(events)
  const notAccepted = new Set<string>()
  const latencies = new Float64Array(layout.subscribers * events)
  let timed = 0
  let expected = layout.subscribers * events
  let delivered = 0
  let duplicates = 0
  let unique = 0
  let lastDelivery = 0
  let stray = 0
  let allIn: () => void = () => undefined
  const everything = new Promise<void>(resolve => (allIn = resolve))
  for (const socket of sockets) {
    const seen = new Uint8Array(layout.perConnection * events)
    socket.onFrame = frame => {
      if (verbOf(frame) !== 'EVENT') return
      const now = performance.now()
      lastDelivery = now
      delivered++
      const { local, key } = deliveryOf(frame)
      const index = indexOf.get(key)
      if (index === undefined) return void stray++
      const slot = local * events + index
      if (seen[slot] === 1) return void duplicates++
      seen[slot] = 1
      latencies[timed++] = now - (sentAt[index] as number)
      if (++unique >= expected) allIn()
    }
  }

  const started = performance.now()
  lastDelivery = started
  const published = await publish([publisher], frames, layout.window, { sentAt, notAccepted })
  // Events the relay did not accept (rate limited) are not expected anywhere.
  expected = layout.subscribers * (events - notAccepted.size)
  if (unique >= expected) allIn()
  await settled(everything, () => lastDelivery, IDLE_MS)
  const seconds = (lastDelivery - started) / 1000
  const closedByRelay = sockets.filter(s => s.closeCode !== undefined).length
  await closeSockets([...sockets, publisher])
  return {
    subscribers: layout.subscribers,
    filter: layout.authors ? `{kinds:[1],authors:[${layout.authors.length} bench keys]}` : '{kinds:[1]}',
    connections: sockets.length,
    events,
    expected,
    delivered,
    missing: Math.max(0, expected - unique),
    duplicates,
    stray,
    seconds,
    deliveriesPerSecond: seconds > 0 ? delivered / seconds : 0,
    subscribeSeconds,
    publish: published,
    closedByRelay,
    publishToDeliver: summarize(Array.from(latencies.subarray(0, timed))),
  }
}

/** Resolves when `done` does, or once `last()` (a performance.now() timestamp) is older than `idleMs`. */
const settled = (done: Promise<void>, last: () => number, idleMs: number): Promise<void> =>
  new Promise(resolve => {
    const timer = setInterval(() => performance.now() - last() > idleMs && finish(), 100)
    const finish = () => (clearInterval(timer), resolve())
    void done.then(finish)
  })
