// What the benchmark's events look like: a realistic mix of notes, reactions and MLS group messages.
import { createHash, randomBytes } from 'node:crypto'
import type { Signer } from '@msr/bench'

/** `notes`: kind 1 only (the ingest scenario). `mixed`: kinds 1, 7 and 445 (the rest of the store). */
export type Mix = 'notes' | 'mixed'

/** Tag values the events draw from, so that REQ filters have something to find. */
export interface Pools {
  /** Pubkeys mentioned in `p` tags (64 hex). */
  p: string[]
  /** MLS group ids for kind 445 `h` tags (64 hex). */
  h: string[]
  /** Hashtags for `t` tags. */
  t: string[]
}

/** One slice of events for a signing thread. */
export interface CorpusJob {
  mix: Mix
  /** Global index of the first event: seeds its shape and makes its content unique. */
  start: number
  count: number
  /** Secret keys (64 hex); each event's author is drawn from them. */
  secrets: string[]
  pools: Pools
  /** created_at is drawn uniformly from [createdFrom, createdTo]. */
  createdFrom: number
  createdTo: number
  /** Distinguishes this run's events from any earlier run's. */
  runTag: string
}

/** A signing thread's answer: the `["EVENT",…]` frames back to back, and where each one starts. */
export interface SignedFrames {
  bytes: Uint8Array
  /** count + 1 byte offsets into `bytes`. */
  offsets: Uint32Array
}

interface Template {
  author: number
  created_at: number
  kind: number
  tags: string[][]
  content: string
}

const WORDS = ('lorem ipsum dolor sit amet relay group message encrypted nostr mls epoch commit welcome key package ' +
  'proposal update secure channel private forward secrecy ratchet tree leaf node member client server').split(' ')

/** A small seeded PRNG (mulberry32): same index, same shape, run after run. */
export const mulberry32 = (seed: number): (() => number) => {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

const pick = <T>(rng: () => number, items: readonly T[]): T => items[Math.floor(rng() * items.length)] as T

const randomHex = (rng: () => number, bytes: number): string => {
  let out = ''
  for (let i = 0; i < bytes; i += 4) out += Math.floor(rng() * 4294967296).toString(16).padStart(8, '0')
  return out.slice(0, bytes * 2)
}

const words = (rng: () => number, count: number): string => Array.from({ length: count }, () => pick(rng, WORDS)).join(' ')

const note = (job: CorpusJob, index: number, rng: () => number): Pick<Template, 'kind' | 'tags' | 'content'> => {
  const tags: string[][] = []
  if (rng() < 0.5) tags.push(['p', pick(rng, job.pools.p)])
  if (rng() < 0.3) tags.push(['t', pick(rng, job.pools.t)])
  if (rng() < 0.2) tags.push(['e', randomHex(rng, 32), '', 'reply'])
  return { kind: 1, tags, content: `${words(rng, 8 + Math.floor(rng() * 40))} (${job.runTag}/${index})` }
}

const reaction = (job: CorpusJob, rng: () => number): Pick<Template, 'kind' | 'tags' | 'content'> => ({
  kind: 7,
  tags: [['e', randomHex(rng, 32)], ['p', pick(rng, job.pools.p)]],
  content: rng() < 0.8 ? '+' : '🤙',
})

const groupMessage = (job: CorpusJob, rng: () => number): Pick<Template, 'kind' | 'tags' | 'content'> => ({
  kind: 445,
  tags: [['h', pick(rng, job.pools.h)]],
  content: randomBytes(150 + Math.floor(rng() * 450)).toString('base64'),
})

/** The unsigned shape of the event at a global index. */
const templateFor = (job: CorpusJob, index: number): Template => {
  const rng = mulberry32(index * 2654435761 + 1)
  const author = Math.floor(rng() * job.secrets.length)
  const created_at = job.createdFrom + Math.floor(rng() * (job.createdTo - job.createdFrom + 1))
  const roll = job.mix === 'notes' ? 0 : rng()
  const body = roll < 0.45 ? note(job, index, rng) : roll < 0.7 ? reaction(job, rng) : groupMessage(job, rng)
  return { author, created_at, ...body }
}

/** Builds, hashes (node:crypto) and signs one event; returns its `["EVENT",…]` frame. */
const signedFrame = (t: Template, pubkey: string, secret: Buffer, signer: Signer): string => {
  const tags = JSON.stringify(t.tags)
  const content = JSON.stringify(t.content)
  const id = createHash('sha256').update(`[0,"${pubkey}",${t.created_at},${t.kind},${tags},${content}]`).digest()
  const sig = signer.sign(id, secret)
  const json = `{"id":"${id.toString('hex')}","pubkey":"${pubkey}","created_at":${t.created_at},"kind":${t.kind},"tags":${tags},"content":${content},"sig":"${sig}"}`
  return `["EVENT",${json}]`
}

/** Signs a job's events into one buffer of frames (transferable to the main thread without a copy). */
export const signJob = (job: CorpusJob, signer: Signer): SignedFrames => {
  const secrets = job.secrets.map(s => Buffer.from(s, 'hex'))
  const pubkeys = secrets.map(s => signer.publicKey(s))
  const frames: string[] = []
  for (let i = job.start; i < job.start + job.count; i++) {
    const t = templateFor(job, i)
    frames.push(signedFrame(t, pubkeys[t.author] as string, secrets[t.author] as Buffer, signer))
  }
  const offsets = new Uint32Array(frames.length + 1)
  frames.forEach((f, i) => (offsets[i + 1] = (offsets[i] as number) + Buffer.byteLength(f)))
  const bytes = Buffer.allocUnsafeSlow(offsets[frames.length] as number)
  frames.forEach((f, i) => bytes.write(f, offsets[i] as number))
  return { bytes, offsets }
}
