// Pipelined publishing: each connection keeps up to `window` EVENTs unanswered and counts the OKs.
import { summarize, type Summary } from '@msr/bench'
import { isRateLimited, messageOf, okOutcome, verbOf, type BenchSocket } from './bench-socket.js'

/** What the relay answered to a burst of EVENTs. */
export interface PublishResult {
  sent: number
  /** `OK true` with an empty message. */
  stored: number
  /** `OK true "duplicate: …"`. */
  duplicates: number
  /** `OK false` other than rate limiting, by reason prefix, with the first message seen for each. */
  rejected: number
  rejectReasons: Map<string, { count: number; example: string }>
  /** `OK false "rate-limited: …"`: the relay's policy, not a wrong answer (counted apart, never a fault). */
  rateLimited: number
  rateLimitedExample?: string
  notices: string[]
  /** From the first EVENT sent to the last OK received. */
  seconds: number
  /** Time from sending an EVENT to its OK (dominated by queueing when the window is full). */
  ackLatency: Summary
}

/** Connections that stopped answering for this long are reported as stuck. */
const STALL_MS = 30_000

interface Lane {
  socket: BenchSocket
  from: number
  to: number
  sent: number
  acked: number
  sentAt: Float64Array
}

/** What a caller may want beyond the result: when each frame went out, which events were not accepted. */
export interface PublishTrace {
  /** Filled with the performance.now() at which frames[i] was sent. */
  sentAt?: Float64Array
  /** Filled with the performance.now() at which the OK to frames[i] arrived. */
  okAt?: Float64Array
  /** Filled with the ids (64 hex) of the events answered `OK false`, rate limited included. */
  notAccepted?: Set<string>
  /** Filled with the message of each `OK false`, by event id. */
  refusals?: Map<string, string>
}

/** Frames per socket when `count` frames are split over `sockets` (contiguous slices; the last may be shorter). */
export const laneSize = (count: number, sockets: number): number => Math.max(1, Math.ceil(count / sockets))

/** Publishes `frames` over the sockets (contiguous slices, one per socket) with at most `window` in flight each. */
export const publish = async (sockets: readonly BenchSocket[], frames: readonly Buffer[], window: number, trace: PublishTrace = {}): Promise<PublishResult> => {
  const result: PublishResult = {
    sent: frames.length, stored: 0, duplicates: 0, rejected: 0, rejectReasons: new Map(), rateLimited: 0, notices: [], seconds: 0, ackLatency: summarize([]),
  }
  const per = laneSize(frames.length, sockets.length)
  const lanes: Lane[] = sockets.map((socket, k) => {
    const from = Math.min(frames.length, k * per)
    const to = Math.min(frames.length, from + per)
    return { socket, from, to, sent: from, acked: from, sentAt: new Float64Array(to - from) }
  })
  const latencies: number[] = []
  const started = performance.now()
  let lastOk = started
  await Promise.all(lanes.map(lane => runLane(lane, frames, window, result, latencies, at => (lastOk = at), trace)))
  result.seconds = (lastOk - started) / 1000
  result.ackLatency = summarize(latencies)
  return result
}

const runLane = (
  lane: Lane,
  frames: readonly Buffer[],
  window: number,
  result: PublishResult,
  latencies: number[],
  onOk: (at: number) => void,
  trace: PublishTrace,
): Promise<void> =>
  new Promise((resolve, reject) => {
    if (lane.from === lane.to) return resolve()
    let refillScheduled = false
    let progressAt = performance.now()
    const refill = () => {
      refillScheduled = false
      const upTo = Math.min(lane.to, lane.acked + window)
      if (upTo <= lane.sent) return
      const now = performance.now()
      for (let i = lane.sent; i < upTo; i++) lane.sentAt[i - lane.from] = now
      if (trace.sentAt) trace.sentAt.fill(now, lane.sent, upTo)
      lane.socket.sendMany(frames, lane.sent, upTo)
      lane.sent = upTo
    }
    const watchdog = setInterval(() => {
      if (!lane.socket.open || performance.now() - progressAt > STALL_MS) {
        clearInterval(watchdog)
        reject(new Error(`publishing stalled: ${lane.acked - lane.from}/${lane.to - lane.from} answered (close code ${lane.socket.closeCode ?? 'none'})`))
      }
    }, 1000)
    lane.socket.onFrame = frame => {
      const verb = verbOf(frame)
      if (verb === 'NOTICE') return void (result.notices.length < 20 && result.notices.push(messageOf(frame)))
      if (verb !== 'OK') return
      const now = performance.now()
      progressAt = now
      latencies.push(now - (lane.sentAt[lane.acked - lane.from] as number))
      if (trace.okAt) trace.okAt[lane.acked] = now
      lane.acked++
      tally(frame, result, trace)
      onOk(now)
      if (lane.acked === lane.to) return void (clearInterval(watchdog), resolve())
      if (!refillScheduled) {
        refillScheduled = true
        setImmediate(refill)
      }
    }
    refill()
  })

const tally = (frame: Buffer, result: PublishResult, trace: PublishTrace): void => {
  const outcome = okOutcome(frame)
  if (outcome === 'stored') return void result.stored++
  if (outcome === 'duplicate') return void result.duplicates++
  const id = String((JSON.parse(frame.toString('utf8')) as unknown[])[1])
  const message = messageOf(frame)
  trace.notAccepted?.add(id)
  trace.refusals?.set(id, message)
  if (isRateLimited(message)) {
    result.rateLimited++
    result.rateLimitedExample ??= message
    return
  }
  result.rejected++
  const prefix = message.split(':')[0] ?? message
  const seen = result.rejectReasons.get(prefix)
  if (seen) seen.count++
  else result.rejectReasons.set(prefix, { count: 1, example: message })
}
