// The three timed scenarios (deposits, pickups, mixed) and the untimed signing of the deposits they send.
import { drive, listSource, newTally, type BenchRequest, type Tally } from './driver.js'
import type { HttpClient } from './http-client.js'
import { MailboxReaders, type ReaderFigures, type ReaderSettings, type Recipient } from './mailbox-readers.js'
import { depositParties, type DepositJob } from './request-factory.js'
import type { SignPool } from './sign-pool.js'

/** The route every scenario uses: KeyPackages, the busiest mailbox of MLS onboarding. */
export const KEYPACKAGES = '/api/v1/keypackages'

/** Builds and signs deposits on the signing threads (not timed); created_at is the signing time. */
export const prepareDeposits = async (signer: SignPool, job: Omit<DepositJob, 'path'>): Promise<{ requests: BenchRequest[]; seconds: number }> => {
  const started = performance.now()
  const slices = await signer.deposits({ ...job, path: KEYPACKAGES })
  const requests: BenchRequest[] = []
  let i = job.start
  for (const { bytes, offsets, headers, createdAt } of slices) {
    const all = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
    headers.forEach((authorization, k) => {
      const body = all.subarray(offsets[k], offsets[k + 1])
      const { sender } = depositParties(i++, job)
      requests.push({ op: 'deposit', auth: { key: sender, method: 'POST', path: KEYPACKAGES, body }, authorization, createdAt })
    })
  }
  return { requests, seconds: (performance.now() - started) / 1000 }
}

/** Scenario 1: every deposit from `lanes` keep-alive clients. */
export const runDeposits = async (client: HttpClient, signer: SignPool, deposits: readonly BenchRequest[], lanes: number): Promise<Tally> => {
  const tally = newTally()
  await drive(client, listSource(deposits), lanes, tally, signer)
  return tally
}

/** What a pickup run saw. */
export interface PickupRun {
  tally: Tally
  readers: ReaderFigures
}

const readerSettings = (limit: number, mode: ReaderSettings['mode']): ReaderSettings => ({ path: KEYPACKAGES, limit, mode, pollMs: 200 })

/** Scenario 2: each recipient reads its mailbox once (pages, following next_cursor) and acks every item. */
export const runPickups = async (client: HttpClient, signer: SignPool, recipients: readonly Recipient[], limit: number, lanes: number): Promise<PickupRun> => {
  const readers = new MailboxReaders(signer, recipients, readerSettings(limit, 'once'))
  const tally = newTally()
  readers.start()
  await drive(client, readers, lanes, tally, signer)
  return { tally, readers: readers.figures }
}

/**
 * Scenario 3: deposits on `depositLanes` while the recipients read and ack on `pickupLanes`, until every
 * deposit is answered and a pass after that finds each mailbox empty.
 */
export const runMixed = async (
  client: HttpClient,
  signer: SignPool,
  deposits: readonly BenchRequest[],
  recipients: readonly Recipient[],
  settings: { limit: number; depositLanes: number; pickupLanes: number },
): Promise<PickupRun> => {
  const readers = new MailboxReaders(signer, recipients, readerSettings(settings.limit, 'until-settled'))
  const tally = newTally()
  readers.start()
  await Promise.all([
    drive(client, listSource(deposits), settings.depositLanes, tally, signer).then(() => readers.settle()),
    drive(client, readers, settings.pickupLanes, tally, signer),
  ])
  return { tally, readers: readers.figures }
}
