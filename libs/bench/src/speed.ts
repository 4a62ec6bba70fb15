/**
 * How fast the machine is at the moment of a run, measured before the service starts, so that figures from
 * different days can be told apart from changes in the code. On the 2-vCPU machines here the same build
 * moved by a factor of two from one day to the next (the mailbox API's mixed phase 3,639 requests/s one
 * day, 1,016–1,094 the next), with nothing else running: the machine line (CPU model, load average) does
 * not show that. Two readings do:
 * - a unit of single-threaded JavaScript work (what the services' event loops do per event);
 * - a one-byte TCP round trip on loopback to another process (what each request, answer and database
 *   statement costs in the kernel, and what dominates the mailbox API's event loop on a slow day).
 */
import { spawn } from 'node:child_process'
import { createHash } from 'node:crypto'
import { once } from 'node:events'
import { connect, type Socket } from 'node:net'

/** The two readings. */
export interface MachineSpeed {
  /** Microseconds per unit of work: parse an event's JSON, serialize its id preimage, SHA-256 it (best of the rounds). */
  workMicros: number
  /** Microseconds per one-byte round trip over loopback TCP to an echoing child process. */
  roundTripMicros: { p50: number; p90: number }
}

/** How much to measure (the defaults take about half a second). */
export interface SpeedOptions {
  /** Units of work per round (default 20,000), in `rounds` rounds (default 5). */
  workUnits?: number
  rounds?: number
  /** Round trips, after 200 untimed ones (default 2,000). */
  roundTrips?: number
}

const EVENT = JSON.stringify({
  id: 'a'.repeat(64),
  pubkey: 'b'.repeat(64),
  created_at: 1_700_000_000,
  kind: 1,
  tags: [['t', 'bench'], ['p', 'c'.repeat(64)]],
  content: 'hello, relay '.repeat(16),
  sig: 'd'.repeat(128),
})

/** The least time per unit of work over the rounds: the machine's speed without the rounds another process took from it. */
const workMicros = (units: number, rounds: number): number => {
  let best = Infinity
  for (let round = 0; round < rounds; round++) {
    const start = process.hrtime.bigint()
    for (let i = 0; i < units; i++) {
      const e = JSON.parse(EVENT) as { pubkey: string; created_at: number; kind: number; tags: string[][]; content: string }
      createHash('sha256').update(JSON.stringify([0, e.pubkey, e.created_at, e.kind, e.tags, e.content])).digest()
    }
    best = Math.min(best, Number(process.hrtime.bigint() - start) / 1000 / units)
  }
  return best
}

// The child echoes every byte back at once, and prints its port when it listens.
const ECHO = `
  const server = require('node:net').createServer(c => { c.setNoDelay(true); c.on('data', d => c.write(d)); c.on('error', () => {}) })
  server.listen(0, '127.0.0.1', () => process.stdout.write(server.address().port + '\\n'))
  process.stdin.on('end', () => process.exit(0)).resume()
`

const percentile = (sorted: number[], p: number): number => sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] ?? NaN

/** Round trips of one byte to an echoing child process on loopback; the child ends with the measurement (its stdin closes). */
const roundTripMicros = async (count: number): Promise<MachineSpeed['roundTripMicros']> => {
  const child = spawn(process.execPath, ['-e', ECHO], { stdio: ['pipe', 'pipe', 'inherit'] })
  const exited = once(child, 'exit')
  let socket: Socket | undefined
  try {
    const [first] = (await Promise.race([once(child.stdout, 'data'), exited.then(() => [undefined])])) as [Buffer | undefined]
    if (!first) throw new Error('the echo process for the round-trip reading exited before listening')
    socket = connect(Number(first.toString().trim()), '127.0.0.1')
    socket.setNoDelay(true)
    await once(socket, 'connect')
    const byte = Buffer.from('x')
    const times: number[] = []
    for (let i = 0; i < count + 200; i++) {
      const start = process.hrtime.bigint()
      const answered = once(socket, 'data')
      socket.write(byte)
      await answered
      if (i >= 200) times.push(Number(process.hrtime.bigint() - start) / 1000)
    }
    times.sort((a, b) => a - b)
    return { p50: percentile(times, 0.5), p90: percentile(times, 0.9) }
  } finally {
    socket?.destroy()
    child.stdin.end()
    await exited
  }
}

/** Measures the machine as it is now (about half a second with the defaults). */
export const measureMachineSpeed = async (opts: SpeedOptions = {}): Promise<MachineSpeed> => ({
  workMicros: workMicros(opts.workUnits ?? 20_000, opts.rounds ?? 5),
  roundTripMicros: await roundTripMicros(opts.roundTrips ?? 2000),
})

/** `JavaScript work 4.10 µs per unit (…); loopback round trip to another process p50 45.0 µs, p90 93.4 µs`. */
export const speedText = (speed: MachineSpeed): string =>
  `JavaScript work ${speed.workMicros.toFixed(2)} µs per unit (parse, serialize, SHA-256 an event; best round); ` +
  `loopback TCP round trip to another process p50 ${speed.roundTripMicros.p50.toFixed(1)} µs, p90 ${speed.roundTripMicros.p90.toFixed(1)} µs`
