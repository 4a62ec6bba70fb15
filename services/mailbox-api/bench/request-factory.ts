// What the signing threads make: NIP-98 Authorization headers, and KeyPackage deposit bodies with theirs.
import { createHash, randomBytes } from 'node:crypto'
import type { Signer } from '@msr/bench'

/** The kind of a NIP-98 HTTP authorization event. */
const HTTP_AUTH_KIND = 27235

/** A request to authorize: the signing key (index into the run's keys), method, path with query, body. */
export interface AuthRequest {
  key: number
  method: 'GET' | 'POST'
  path: string
  body?: Uint8Array | undefined
}

/** The run's keys: recipients first (0 … recipients-1), then senders. */
export interface Keyring {
  secrets: Buffer[]
  pubkeys: string[]
}

/** A slice of KeyPackage deposits: deposit i goes from sender i % senders to recipient i % recipients. */
export interface DepositJob {
  start: number
  count: number
  recipients: number
  senders: number
  /** Size of the random KeyPackage before base64. */
  contentBytes: number
  path: string
}

/** Deposits of a job: bodies back to back (`offsets` has count + 1 entries) and one header each. */
export interface SignedDeposits {
  bytes: Uint8Array
  offsets: Uint32Array
  headers: string[]
  createdAt: number
}

/** Work for a signing thread. */
export type SignWork = { type: 'deposits'; job: DepositJob } | { type: 'sign'; requests: AuthRequest[] }

/** Messages to a signing thread. */
export type SignMessage = SignWork & { id: number }

/** Answers of a signing thread. */
export type SignAnswer = { id: number; type: 'deposits'; deposits: SignedDeposits } | { id: number; type: 'sign'; headers: string[]; createdAt: number }

/** Whom deposit `i` is from and for (key indexes). */
export const depositParties = (i: number, job: Pick<DepositJob, 'recipients' | 'senders'>): { recipient: number; sender: number } => ({
  recipient: i % job.recipients,
  sender: job.recipients + (i % job.senders),
})

/** The keyring of a list of secrets (64 hex). */
export const keyringOf = (secrets: readonly string[], signer: Signer): Keyring => {
  const buffers = secrets.map(s => Buffer.from(s, 'hex'))
  return { secrets: buffers, pubkeys: buffers.map(s => signer.publicKey(s)) }
}

const sha256 = (data: Uint8Array | string): Buffer => createHash('sha256').update(data).digest()

/** `Nostr <base64 kind-27235 event>` for a request, created at `createdAt` (unix seconds). */
export const authorization = (request: AuthRequest, publicUrl: string, keys: Keyring, signer: Signer, createdAt: number): string => {
  const tags = [['u', publicUrl + request.path], ['method', request.method]]
  if (request.body && request.body.length > 0) tags.push(['payload', sha256(request.body).toString('hex')])
  const pubkey = keys.pubkeys[request.key] as string
  const tagsJson = JSON.stringify(tags)
  const id = sha256(`[0,"${pubkey}",${createdAt},${HTTP_AUTH_KIND},${tagsJson},""]`)
  const sig = signer.sign(id, keys.secrets[request.key] as Buffer)
  const event = `{"id":"${id.toString('hex')}","pubkey":"${pubkey}","created_at":${createdAt},"kind":${HTTP_AUTH_KIND},"tags":${tagsJson},"content":"","sig":"${sig}"}`
  return `Nostr ${Buffer.from(event).toString('base64')}`
}

// KeyPackage metadata as clients send it (opaque to the API, stored with the item).
const TAGS = JSON.stringify([['mls_protocol_version', '1.0'], ['ciphersuite', '0x0001'], ['extensions', '0x0003,0x000a']])

/** Builds and signs a job's deposits: random KeyPackages, each body's sha256 in its event's payload tag. */
export const signDeposits = (job: DepositJob, publicUrl: string, keys: Keyring, signer: Signer): SignedDeposits => {
  const createdAt = Math.floor(Date.now() / 1000)
  const bodies: Buffer[] = []
  const headers: string[] = []
  for (let i = job.start; i < job.start + job.count; i++) {
    const { recipient, sender } = depositParties(i, job)
    const content = randomBytes(job.contentBytes).toString('base64')
    const body = Buffer.from(`{"recipient":"${keys.pubkeys[recipient]}","content_b64":"${content}","tags":${TAGS}}`)
    bodies.push(body)
    headers.push(authorization({ key: sender, method: 'POST', path: job.path, body }, publicUrl, keys, signer, createdAt))
  }
  const offsets = new Uint32Array(bodies.length + 1)
  bodies.forEach((b, i) => (offsets[i + 1] = (offsets[i] as number) + b.length))
  const bytes = Buffer.allocUnsafeSlow(offsets[bodies.length] as number)
  bodies.forEach((b, i) => b.copy(bytes, offsets[i] as number))
  return { bytes, offsets, headers, createdAt }
}
