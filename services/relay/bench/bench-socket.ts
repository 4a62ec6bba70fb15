// A lean WebSocket client for the load generator: frames are classified by their first bytes, never parsed
// unless a figure needs their content, because the generator shares the CPU with the relay it measures.
import type { Socket } from 'node:net'
import WebSocket from 'ws'

/** The relay-to-client verbs the benchmark tells apart. */
export type Verb = 'EVENT' | 'OK' | 'EOSE' | 'CLOSED' | 'NOTICE' | 'OTHER'

const QUOTE = 0x22

/**
 * The verb of a relay frame. The relay writes frames with JSON.stringify, so each starts with `["VERB"`
 * and no whitespace; anything else is reported as OTHER.
 */
export const verbOf = (frame: Buffer): Verb => {
  if (frame[0] !== 0x5b || frame[1] !== QUOTE) return 'OTHER'
  switch (frame[2]) {
    case 0x45: // E
      return frame[3] === 0x56 ? 'EVENT' : frame[3] === 0x4f ? 'EOSE' : 'OTHER'
    case 0x4f: // O
      return 'OK'
    case 0x43: // C
      return frame[3] === 0x4c ? 'CLOSED' : 'OTHER'
    case 0x4e: // N
      return 'NOTICE'
    default:
      return 'OTHER'
  }
}

// `["OK","<64 hex>",true,"…"]`: the accepted flag starts at byte 73 and its message at byte 78.
const OK_FLAG_AT = 73
const OK_MESSAGE_AT = 78

/** What an OK frame says, read from fixed offsets; `stored` is an accepted OK with an empty message. */
export const okOutcome = (frame: Buffer): 'stored' | 'duplicate' | 'rejected' => {
  if (frame[OK_FLAG_AT] !== 0x74) return 'rejected'
  return frame[OK_MESSAGE_AT + 1] === QUOTE ? 'stored' : 'duplicate'
}

/** The message of an OK, CLOSED or NOTICE frame (parses the frame: use only off the hot path). */
export const messageOf = (frame: Buffer): string => {
  const parsed = JSON.parse(frame.toString('utf8')) as unknown[]
  const last = parsed[parsed.length - 1]
  return typeof last === 'string' ? last : JSON.stringify(last)
}

const TEXT = { binary: false, compress: false } as const

/** One connection to the relay. */
export class BenchSocket {
  /** Called with every frame the relay sends; replace it per scenario. */
  onFrame: (frame: Buffer) => void = () => undefined
  /** Close code once the connection is closed (1008: dropped by the relay as too slow). */
  closeCode: number | undefined

  private constructor(private readonly ws: WebSocket) {
    ws.on('message', (data: Buffer) => this.onFrame(data))
    ws.on('close', code => (this.closeCode = code))
    ws.on('error', () => undefined) // 'close' follows; scenarios report closeCode
  }

  /** Connects; the masking key is all zeros so that `ws` skips masking (loopback only, the relay does not care). */
  static open(url: string, timeoutMs = 10_000): Promise<BenchSocket> {
    const ws = new WebSocket(url, {
      perMessageDeflate: false,
      skipUTF8Validation: true,
      handshakeTimeout: timeoutMs,
      generateMask: mask => void mask.fill(0),
    })
    return new Promise((resolve, reject) => {
      ws.once('open', () => resolve(new BenchSocket(ws)))
      ws.once('error', reject)
    })
  }

  /** Sends one text frame. */
  send(frame: Buffer | string): void {
    this.ws.send(frame, TEXT)
  }

  /** Sends frames[from, to) as text frames, corked so that a burst is one write. */
  sendMany(frames: readonly Buffer[], from: number, to: number): void {
    // ws has no public cork; its underlying socket is the documented-in-source `_socket`.
    const raw = (this.ws as unknown as { _socket?: Socket })._socket
    raw?.cork()
    for (let i = from; i < to; i++) this.ws.send(frames[i] as Buffer, TEXT)
    raw?.uncork()
  }

  /** True while the connection is open. */
  get open(): boolean {
    return this.ws.readyState === WebSocket.OPEN
  }

  /** Closes the connection and waits for the close handshake (or gives up after a second). */
  close(): Promise<void> {
    if (this.ws.readyState === WebSocket.CLOSED) return Promise.resolve()
    return new Promise(resolve => {
      const timer = setTimeout(() => (this.ws.terminate(), resolve()), 1000)
      this.ws.once('close', () => (clearTimeout(timer), resolve()))
      this.ws.close(1000)
    })
  }
}

/** Opens `count` connections, at most `parallel` handshakes at a time. */
export const openSockets = async (url: string, count: number, parallel = 50): Promise<BenchSocket[]> => {
  const sockets: BenchSocket[] = []
  for (let at = 0; at < count; at += parallel)
    sockets.push(...(await Promise.all(Array.from({ length: Math.min(parallel, count - at) }, () => BenchSocket.open(url)))))
  return sockets
}

/** Closes every connection. */
export const closeSockets = (sockets: readonly BenchSocket[]): Promise<void> => Promise.all(sockets.map(s => s.close())).then(() => undefined)
