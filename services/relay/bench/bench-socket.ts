// A lean WebSocket client for the load generator: frames are classified by their first bytes, never parsed
// unless a figure needs their content, because the generator shares the CPU with the relay it measures.
import { connect, type Socket, type TcpNetConnectOpts } from 'node:net'
import WebSocket, { type ClientOptions } from 'ws'

/** The relay-to-client verbs the benchmark tells apart. */
export type Verb = 'EVENT' | 'OK' | 'EOSE' | 'CLOSED' | 'NOTICE' | 'OTHER'

const QUOTE = 0x22

/**
 * The verb of a relay frame. The relay writes frames with JSON.stringify, so each starts with `["VERB"`
 * and no whitespace; anything else is reported as OTHER.
 */
export const verbOf = (frame: Buffer): Verb => {
  if (frame[0] !== 0x5b || frame[1] !== QUOTE) return frame[0] === 0x5b ? spacedVerbOf(frame) : 'OTHER'
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

const VERBS: readonly Verb[] = ['EVENT', 'OK', 'EOSE', 'CLOSED', 'NOTICE']

/** The slow path of verbOf for a relay (not this one) that writes whitespace inside its JSON: `[ "OK", …]`. */
const spacedVerbOf = (frame: Buffer): Verb => {
  const verb = /^\[\s*"([A-Z]+)"/.exec(frame.toString('latin1', 0, 24))?.[1]
  return VERBS.find(v => v === verb) ?? 'OTHER'
}

// `["OK","<64 hex>",true,"…"]`: the accepted flag starts at byte 73 and its message at byte 78.
const OK_ID_AT = 7
const OK_FLAG_AT = 73
const OK_MESSAGE_AT = 78

/** Whether an OK frame is laid out as this relay writes it (compact JSON), so that the fixed offsets hold. */
const compactOk = (frame: Buffer): boolean => frame[OK_FLAG_AT - 1] === 0x2c && frame[OK_FLAG_AT - 2] === QUOTE && frame[OK_ID_AT - 1] === QUOTE

/** What an OK frame says, read from fixed offsets; `stored` is an accepted OK with an empty message. */
export const okOutcome = (frame: Buffer): 'stored' | 'duplicate' | 'rejected' => {
  if (!compactOk(frame)) {
    const [, , accepted, message] = JSON.parse(frame.toString('utf8')) as [string, string, boolean, string?]
    return accepted !== true ? 'rejected' : message ? 'duplicate' : 'stored'
  }
  if (frame[OK_FLAG_AT] !== 0x74) return 'rejected'
  return frame[OK_MESSAGE_AT + 1] === QUOTE ? 'stored' : 'duplicate'
}

/** The event id an OK frame answers. */
const okId = (frame: Buffer): string => (compactOk(frame) ? frame.toString('latin1', OK_ID_AT, OK_FLAG_AT - 2) : String((JSON.parse(frame.toString('utf8')) as unknown[])[1]))

/** True for a relay's OK false whose message says it was rate limited (NIP-01 prefix `rate-limited:`). */
export const isRateLimited = (message: string): boolean => message.startsWith('rate-limited:')

/**
 * NIP-42 for `--url`: answers a relay's AUTH challenge with a kind-22242 event signed by one of the bench's
 * keys (tags `relay` = the URL given, `challenge`), and counts what happened.
 */
export interface Authenticator {
  /** The `["AUTH",{…}]` frame answering `challenge`, and its event id. */
  answer(challenge: string): { frame: string; id: string }
  /** Whether the relay sends its challenge on connect (learnt on the first connections; undefined until then). */
  onConnect: boolean | undefined
  stats: AuthStats
}

/** What NIP-42 came to over a run. */
export interface AuthStats {
  challenges: number
  accepted: number
  refused: number
  /** The first refusal's message. */
  refusedExample?: string
}

/** How long the first connections wait for a challenge before deciding that the relay sends none on connect. */
const FIRST_CHALLENGE_MS = 1000
/** How long a connection waits for its challenge once the relay is known to send one, and for the OK to AUTH. */
const AUTH_MS = 10_000

/** The message of an OK, CLOSED or NOTICE frame (parses the frame: use only off the hot path). */
export const messageOf = (frame: Buffer): string => {
  const parsed = JSON.parse(frame.toString('utf8')) as unknown[]
  const last = parsed[parsed.length - 1]
  return typeof last === 'string' ? last : JSON.stringify(last)
}

const TEXT = { binary: false, compress: false } as const

/** What readLean uses of ws's internals: the socket, and the receiver that gets whatever is not a plain text frame. */
interface WsInternals {
  _socket?: Socket
  _receiver?: { write(chunk: Buffer): boolean }
}

/**
 * Reads the connection's frames instead of ws's receiver, so that the generator's cost per frame stays far below
 * the relay's: a complete, unmasked, unfragmented text frame is handed to `onText` as a range of the bytes received
 * (no copy, no event, no Buffer); `onRead` runs before each read is parsed. Anything else (ping, close, fragments, a masked frame) goes whole to ws's receiver, which
 * answers pings and closes, and emits fragmented messages as usual. Called from the 'open' handler, before the
 * socket has emitted any data. Returns false (ws keeps reading) when ws's internals are not as expected.
 */
export const readLean = (ws: WebSocket, onText: OnText, onRead: () => void): boolean => {
  const { _socket: socket, _receiver: receiver } = ws as unknown as WsInternals
  const own = socket?.listeners('data')
  if (!socket || !receiver || own?.length !== 1) return false
  socket.removeListener('data', own[0] as (chunk: Buffer) => void)
  const read = frameReader(onText, frame => void receiver.write(frame))
  const lean = (chunk: Buffer) => (onRead(), read(chunk))
  // What arrived with the handshake's answer comes as 'data' (ws unshifted it); later reads, on a socket
  // that reads into the shared buffer, come straight here.
  socket.on('data', lean)
  leanReaders.set(socket, lean)
  return true
}

/**
 * Where every plain (ws://) bench connection reads: one buffer, shared, since each read is parsed before the
 * next is made. A read into a fresh buffer per read (Node's default) is memory outside V8's heap, and V8
 * collects for it: 24–78 collections of the generator per 2,000 REQs of 350 KB.
 */
const READ_BUFFER = Buffer.allocUnsafe(64 * 1024)

/** The lean reader of each connection once readLean installed it. */
const leanReaders = new WeakMap<Socket, (chunk: Buffer) => void>()

/**
 * ws's `createConnection` for ws:// URLs: a TCP socket that reads into READ_BUFFER. Until readLean takes over
 * (the HTTP upgrade, or a connection it could not take), each read is handed on as a 'data' event of its own
 * copy, as the socket would have emitted it.
 */
const sharedReadConnection = (options: TcpNetConnectOpts & { path?: string }): Socket => {
  // The HTTP options' `path` is the URL's, not a Unix socket's (ws's own connect drops it too).
  const { path: _urlPath, ...tcp } = options
  const socket: Socket = connect({
    ...tcp,
    onread: {
      buffer: READ_BUFFER,
      callback: (bytes: number, buffer: Uint8Array) => {
        const chunk = Buffer.from(buffer.buffer, buffer.byteOffset, bytes)
        const lean = leanReaders.get(socket)
        if (lean) lean(chunk)
        else socket.emit('data', Buffer.from(chunk))
        return true
      },
    },
  })
  return socket
}

/** A text frame's payload: bytes[start, end) of a read (no Buffer made for it). */
export type OnText = (bytes: Buffer, start: number, end: number) => void

/**
 * A 'data' listener that cuts the byte stream into frames (see eachFrame), whatever the reads' boundaries: a frame
 * split across reads is completed by copying its own bytes only, not the whole next read. A read's bytes may be
 * reused once it returns (the shared read buffer): what it keeps of them (a frame's start, a frame for ws's
 * receiver) it copies, and `onText` gets its range only for the time of the call.
 */
export const frameReader = (onText: OnText, other: (frame: Buffer) => void): ((chunk: Buffer) => void) => {
  let pending: Buffer | undefined
  const kept = (frame: Buffer) => other(Buffer.from(frame))
  return chunk => {
    let from = 0
    if (pending) {
      const head = pending.length >= MAX_HEADER ? pending : Buffer.concat([pending, chunk.subarray(0, MAX_HEADER - pending.length)])
      const end = frameEnd(head, 0)
      if (end < 0 || end > pending.length + chunk.length) return void (pending = Buffer.concat([pending, chunk]))
      from = end - pending.length
      eachFrame(Buffer.concat([pending, chunk.subarray(0, from)]), 0, onText, other)
      pending = undefined
    }
    const at = eachFrame(chunk, from, onText, kept)
    if (at < chunk.length) pending = Buffer.from(chunk.subarray(at))
  }
}

/** The longest frame header: 2 bytes, 8 of length, 4 of mask. */
const MAX_HEADER = 14

/** Where the frame starting at `at` ends, or -1 when its header is not all there. */
const frameEnd = (bytes: Buffer, at: number): number => {
  if (at + 2 > bytes.length) return -1
  const second = bytes[at + 1] as number
  const mask = (second & 0x80) !== 0 ? 4 : 0
  const length = second & 0x7f
  if (length < 126) return at + 2 + mask + length
  if (length === 126) return at + 4 > bytes.length ? -1 : at + 4 + mask + bytes.readUInt16BE(at + 2)
  return at + 10 > bytes.length ? -1 : at + 10 + mask + bytes.readUInt32BE(at + 2) * 2 ** 32 + bytes.readUInt32BE(at + 6)
}

/**
 * Hands each complete frame of `bytes` from `at` on to `onText` (a plain text frame: its payload) or `other` (the
 * whole frame); returns where the first incomplete one starts.
 */
const eachFrame = (bytes: Buffer, at: number, onText: OnText, other: (frame: Buffer) => void): number => {
  for (;;) {
    const end = frameEnd(bytes, at)
    if (end < 0 || end > bytes.length) return at
    const first = bytes[at] as number
    const second = bytes[at + 1] as number
    // Unmasked (second < 0x80): the header is 2, 4 or 10 bytes by the length's form.
    if (first === 0x81 && second < 0x80) onText(bytes, at + (second < 126 ? 2 : second === 126 ? 4 : 10), end)
    else other(bytes.subarray(at, end))
    at = end
  }
}

/** One connection to the relay. */
export class BenchSocket {
  /** Called with every frame the relay sends; replace it per scenario. */
  onFrame: (frame: Buffer) => void = () => undefined
  /**
   * When set, text frames are handed here as a range of the bytes read instead of to onFrame (a scenario's hot
   * path: no Buffer per frame). Frames that ws assembles (fragmented ones) still go to onFrame.
   */
  onText: OnText | undefined
  /** performance.now() when the frames being handed over were read (one reading per socket read, not per frame). */
  readAt = 0
  /** Close code once the connection is closed (1008: dropped by the relay as too slow). */
  closeCode: number | undefined

  /** AUTH events sent and not answered yet (their OKs are the socket's, not the scenario's). */
  private readonly pendingAuth = new Set<string>()
  private challenged = false
  private authDone = false
  private readonly authWaiters: Array<() => void> = []

  private constructor(private readonly ws: WebSocket, private readonly auth?: Authenticator) {
    const receive = (data: Buffer) => {
      if (auth && this.intercept(data, auth)) return
      this.onFrame(data)
    }
    ws.on('message', (data: Buffer) => ((this.readAt = performance.now()), receive(data)))
    readLean(
      ws,
      (bytes, start, end) => (this.onText && !auth ? this.onText(bytes, start, end) : receive(bytes.subarray(start, end))),
      () => (this.readAt = performance.now()),
    )
    ws.on('close', code => (this.closeCode = code))
    ws.on('error', () => undefined) // 'close' follows; scenarios report closeCode
  }

  /** Handles AUTH challenges and the OKs to our AUTH events; true when the frame was one of them. */
  private intercept(frame: Buffer, auth: Authenticator): boolean {
    if (frame[2] === 0x41 && frame[3] === 0x55 && frame[1] === QUOTE) {
      // ["AUTH","<challenge>"]
      const challenge = (JSON.parse(frame.toString('utf8')) as unknown[])[1]
      if (typeof challenge !== 'string') return true
      const { frame: answer, id } = auth.answer(challenge)
      auth.stats.challenges++
      this.challenged = true
      this.pendingAuth.add(id)
      this.send(answer)
      this.notify()
      return true
    }
    if (this.pendingAuth.size === 0 || verbOf(frame) !== 'OK') return false
    const id = okId(frame)
    if (!this.pendingAuth.delete(id)) return false
    if (okOutcome(frame) === 'rejected') {
      auth.stats.refused++
      auth.stats.refusedExample ??= messageOf(frame)
    } else auth.stats.accepted++
    this.authDone = true
    this.notify()
    return true
  }

  private notify(): void {
    for (const wake of this.authWaiters.splice(0)) wake()
  }

  /** Resolves once `done()` holds, or with false after `ms`. */
  private waitFor(done: () => boolean, ms: number): Promise<boolean> {
    if (done()) return Promise.resolve(true)
    return new Promise(resolve => {
      const timer = setTimeout(() => resolve(done()), ms)
      const check = () => (done() ? (clearTimeout(timer), resolve(true)) : this.authWaiters.push(check))
      this.authWaiters.push(check)
    })
  }

  /**
   * With an authenticator: waits for the relay's challenge (the first connections up to a second, to learn
   * whether the relay sends one on connect; later ones only if it does), then for the OK to our AUTH.
   * A challenge sent later (lazily) is answered whenever it comes.
   */
  private async authenticate(auth: Authenticator): Promise<void> {
    if (auth.onConnect === false) return
    const challenged = await this.waitFor(() => this.challenged, auth.onConnect ? AUTH_MS : FIRST_CHALLENGE_MS)
    if (auth.onConnect === undefined) auth.onConnect = challenged
    if (!challenged) {
      if (auth.onConnect) throw new Error(`the relay sent no NIP-42 challenge within ${AUTH_MS} ms on this connection (it did on earlier ones)`)
      return
    }
    if (!(await this.waitFor(() => this.authDone, AUTH_MS))) throw new Error(`the relay did not answer our NIP-42 AUTH within ${AUTH_MS} ms`)
  }

  /** Connects; the masking key is all zeros so that `ws` skips masking (loopback only, the relay does not care). */
  static open(url: string, timeoutMs = 10_000, auth?: Authenticator): Promise<BenchSocket> {
    const ws = new WebSocket(url, {
      perMessageDeflate: false,
      skipUTF8Validation: true,
      handshakeTimeout: timeoutMs,
      generateMask: mask => void mask.fill(0),
      ...(url.startsWith('ws:') && { createConnection: sharedReadConnection as ClientOptions['createConnection'] }),
    })
    const opened = new Promise<BenchSocket>((resolve, reject) => {
      ws.once('open', () => resolve(new BenchSocket(ws, auth)))
      ws.once('error', reject)
    })
    if (!auth) return opened
    return opened.then(async socket => {
      await socket.authenticate(auth)
      return socket
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

/** With `--url`: NIP-42 answers for every connection the bench opens (set once, before the scenarios). */
let authenticator: Authenticator | undefined

/** Makes every later `openSockets` answer AUTH challenges with `auth` (`--url` only). */
export const useAuthenticator = (auth: Authenticator | undefined): void => {
  authenticator = auth
}

/** Opens `count` connections, at most `parallel` handshakes at a time (and authenticates them, with `--url`). */
export const openSockets = async (url: string, count: number, parallel = 50): Promise<BenchSocket[]> => {
  const sockets: BenchSocket[] = []
  try {
    for (let at = 0; at < count; at += parallel)
      sockets.push(...(await Promise.all(Array.from({ length: Math.min(parallel, count - at) }, () => BenchSocket.open(url, 10_000, authenticator)))))
  } catch (error) {
    await closeSockets(sockets)
    const why = error instanceof Error ? error.message : String(error)
    if (/\b429\b/.test(why))
      throw new Error(`${url} refused connection ${sockets.length + 1} of ${count} with HTTP 429 (too many connections from this address): ` +
        'lower --connections, --req-connections or --subscribers, raise --subs-per-connection, or use --no-separate')
    throw error
  }
  return sockets
}

/** Closes every connection. */
export const closeSockets = (sockets: readonly BenchSocket[]): Promise<void> => Promise.all(sockets.map(s => s.close())).then(() => undefined)
