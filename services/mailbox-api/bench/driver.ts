// The load loop: C lanes, each one keep-alive connection sending one request at a time from a shared source,
// and the tally of every answer by operation (status counts, latency, failures with the API's error code).
import { clientAddress, type Answer, type HttpClient } from './http-client.js'
import type { AuthRequest } from './request-factory.js'
import type { SignPool } from './sign-pool.js'

/** The authenticated operations the bench drives. */
export type Op = 'deposit' | 'pickup' | 'ack'

/** The answer each operation must get; anything else is a failure. */
export const EXPECTED: Readonly<Record<Op, number>> = { deposit: 201, pickup: 200, ack: 200 }

/** A request ready to send, with its NIP-98 header. */
export interface BenchRequest {
  op: Op
  auth: AuthRequest
  authorization: string
  /** created_at of the header's event (unix seconds). */
  createdAt: number
  /** Scenario bookkeeping once the answer is in (pickups read their page here). */
  onAnswer?: (answer: Answer) => void
}

/** Where lanes take their requests from. */
export interface RequestSource {
  /** The next request; undefined once there are no more. May wait while more are being prepared. */
  next(): BenchRequest | undefined | Promise<BenchRequest | undefined>
}

/** The answers to one operation. */
export interface OpTally {
  latencies: number[]
  statuses: Map<number, number>
  /** Non-expected answers by `status CODE`, with the first message seen. */
  failures: Map<string, { count: number; example: string }>
}

/** Every answer of a phase. */
export interface Tally {
  ops: Record<Op, OpTally>
  /** Pre-signed headers that had grown too old and were signed again just before sending. */
  resigned: number
  startedAt: number
  lastAnswerAt: number
}

/** An empty tally; the phase's clock starts now. */
export const newTally = (): Tally => {
  const op = (): OpTally => ({ latencies: [], statuses: new Map(), failures: new Map() })
  const now = performance.now()
  return { ops: { deposit: op(), pickup: op(), ack: op() }, resigned: 0, startedAt: now, lastAnswerAt: now }
}

/** Answers that were not the expected status, over all operations. */
export const failureCount = (tally: Tally): number =>
  Object.values(tally.ops).reduce((sum, op) => sum + [...op.failures.values()].reduce((s, f) => s + f.count, 0), 0)

/** `401 AUTH_REPLAYED` and the message, from an API error body (or the network error). */
const describeFailure = (answer: Answer): { key: string; message: string } => {
  if (answer.status === 0) return { key: 'no answer', message: answer.body.toString('utf8') }
  try {
    const { error } = JSON.parse(answer.body.toString('utf8')) as { error?: { code?: string; message?: string } }
    return { key: `${answer.status} ${error?.code ?? '?'}`, message: error?.message ?? '' }
  } catch {
    return { key: `${answer.status}`, message: answer.body.toString('utf8').slice(0, 120) }
  }
}

const record = (tally: Tally, request: BenchRequest, answer: Answer): void => {
  const op = tally.ops[request.op]
  op.latencies.push(answer.ms)
  op.statuses.set(answer.status, (op.statuses.get(answer.status) ?? 0) + 1)
  tally.lastAnswerAt = performance.now()
  if (answer.status === EXPECTED[request.op]) return
  const { key, message } = describeFailure(answer)
  const seen = op.failures.get(key)
  if (seen) seen.count++
  else op.failures.set(key, { count: 1, example: message })
}

/** The API accepts created_at within 60 s of its clock; older pre-signed headers are signed again. */
const MAX_AGE_SECONDS = 45

const fresh = async (request: BenchRequest, signer: SignPool, tally: Tally): Promise<BenchRequest> => {
  if (Date.now() / 1000 - request.createdAt <= MAX_AGE_SECONDS) return request
  // A copy of the body: posting a view of the phase's big body buffer to a thread would copy all of it.
  const { body } = request.auth
  const { headers, createdAt } = await signer.sign([{ ...request.auth, body: body && new Uint8Array(body) }])
  tally.resigned++
  return { ...request, authorization: headers[0] as string, createdAt }
}

/** The headers of a request (the client address stands for the signer's device). */
const headersOf = (request: BenchRequest): Record<string, string> => {
  const headers: Record<string, string> = { authorization: request.authorization, 'x-forwarded-for': clientAddress(request.auth.key) }
  if (request.auth.body) headers['content-type'] = 'application/json'
  return headers
}

/** Runs `lanes` lanes until the source is exhausted; every answer lands in the tally. */
export const drive = async (client: HttpClient, source: RequestSource, lanes: number, tally: Tally, signer: SignPool): Promise<void> => {
  const lane = async (): Promise<void> => {
    for (let next = await source.next(); next; next = await source.next()) {
      const request = await fresh(next, signer, tally)
      const answer = await client.send(request.auth.method, request.auth.path, headersOf(request), request.auth.body)
      record(tally, request, answer)
      request.onAnswer?.(answer)
    }
  }
  await Promise.all(Array.from({ length: lanes }, lane))
}

/** A source over a fixed list of requests. */
export const listSource = (requests: readonly BenchRequest[]): RequestSource => {
  let at = 0
  return { next: () => requests[at++] }
}
