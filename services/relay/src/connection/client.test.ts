import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import type { WebSocket } from 'ws'
import { liveFrame } from '../subscriptions/subscription.js'
import { Client, type DropCause } from './client.js'

/** The few members of a ws WebSocket that Client touches, with a settable backlog. */
class SocketDouble {
  readonly OPEN = 1
  readyState = 1
  bufferedAmount = 0
  paused = false
  closedWith: number | undefined
  sent: Array<string | Buffer> = []
  binary: unknown[] = []
  send(frame: string | Buffer, options?: { binary?: boolean }) {
    this.sent.push(frame)
    this.binary.push(options?.binary)
  }
  pause() {
    this.paused = true
  }
  resume() {
    this.paused = false
  }
  close(code: number) {
    this.closedWith = code
    this.readyState = 3
  }
  terminate() {}
}

/** A socket double with no extension negotiated and a raw TCP side that records its writes. */
class WireSocketDouble extends SocketDouble {
  readonly extensions = ''
  readonly writes: Buffer[] = []
  corked = 0
  readonly _socket = {
    cork: () => void this.corked++,
    uncork: () => void this.corked--,
    write: (bytes: Buffer) => {
      assert.equal(this.corked, 1, 'written while corked')
      this.writes.push(Buffer.from(bytes))
    },
  }
  override send(frame: string | Buffer, options?: { binary?: boolean }) {
    assert.equal(this.corked, 1, 'sent while corked')
    super.send(frame, options)
    this.writes.push(Buffer.concat([Buffer.from([0x81, Buffer.byteLength(frame)]), Buffer.from(frame)]))
  }
}

const setup = <S extends SocketDouble = SocketDouble>(maxOutboundBytes = 1000, slowGraceMs = 5000, socket: S = new SocketDouble() as S) => {
  let clock = 0
  const drops: DropCause[] = []
  const client = new Client(socket as unknown as WebSocket, '127.0.0.1', {
    maxOutboundBytes,
    slowGraceMs,
    onDrop: (_c, cause) => drops.push(cause),
    now: () => clock,
  })
  return { socket, client, drops, advance: (ms: number) => (clock += ms) }
}

const frame = liveFrame(Buffer.from('["EVENT","s",'), Buffer.from('{}'))
const reply = Buffer.from('["EVENT","s",{}]')

describe('Client outbound bounds', () => {
  it('keeps a client that is behind for less than the grace period', () => {
    const { socket, client, drops, advance } = setup()
    socket.bufferedAmount = 2000
    client.sendLive(frame)
    advance(4000)
    client.sendLive(frame)
    assert.deepEqual(drops, [])
    socket.bufferedAmount = 10
    advance(10_000)
    client.sendLive(frame)
    assert.deepEqual(drops, [], 'catching up resets the grace period')
  })

  it('drops a client that stays behind past the grace period while live events arrive', () => {
    const { socket, client, drops, advance } = setup()
    socket.bufferedAmount = 2000
    client.sendLive(frame)
    advance(5001)
    client.sendLive(frame)
    assert.deepEqual(drops, ['slow'])
    assert.equal(socket.closedWith, 1008)
  })

  it('drops a client at once past four times the bound', () => {
    const { socket, client, drops } = setup()
    socket.bufferedAmount = 4001
    client.sendLive(frame)
    assert.deepEqual(drops, ['slow'])
  })

  it('never drops for replies, whatever the backlog', () => {
    const { socket, client, drops } = setup()
    socket.bufferedAmount = 1_000_000
    client.send(reply)
    client.ok('a'.repeat(64), true, '')
    assert.deepEqual(drops, [])
  })

  it('holds reading until every hold reason is released', () => {
    const { socket, client } = setup()
    client.hold('ingest')
    client.hold('outbound')
    assert.equal(socket.paused, true)
    client.release('ingest')
    assert.equal(socket.paused, true)
    client.release('outbound')
    assert.equal(socket.paused, false)
  })

  it('writes queued frames once per turn, as text', async () => {
    const { socket, client } = setup()
    client.send(reply)
    client.eose('s')
    assert.equal(socket.sent.length, 0)
    await new Promise(resolve => setImmediate(resolve))
    assert.deepEqual(socket.sent.map(String), ['["EVENT","s",{}]', '["EOSE","s"]'])
    assert.deepEqual(socket.binary, [false, false], 'Buffer frames go out as text frames')
  })

  it('writes live frames to the socket as complete WebSocket frames, corked, in order with replies', async () => {
    const { socket, client } = setup(1000, 5000, new WireSocketDouble())
    const other = liveFrame(Buffer.from('["EVENT","t",'), Buffer.from('{"a":1}'))
    client.sendLive(frame)
    client.sendLive(other)
    client.eose('u')
    client.sendLive(frame)
    await new Promise(resolve => setImmediate(resolve))
    assert.equal(socket.corked, 0)
    assert.deepEqual(socket.writes.map(b => b.toString('latin1')), [
      '\x81\x10["EVENT","s",{}]',
      '\x81\x15["EVENT","t",{"a":1}]',
      '\x81\x0c["EOSE","u"]',
      '\x81\x10["EVENT","s",{}]',
    ])
  })

  it('hands live frames to ws without their header when an extension is negotiated', async () => {
    const { socket, client } = setup()
    client.sendLive(frame)
    await new Promise(resolve => setImmediate(resolve))
    assert.deepEqual(socket.sent.map(String), ['["EVENT","s",{}]'])
  })
})

describe('liveFrame', () => {
  it('writes the WebSocket header for each payload length class (RFC 6455 §5.2)', () => {
    for (const [size, header] of [[100, [0x81, 116]], [1000, [0x81, 126, 0x03, 0xf8]], [70_000, [0x81, 127, 0, 0, 0, 0, 0, 0x01, 0x11, 0x80]]] as const) {
      const json = Buffer.alloc(size, 0x20)
      const f = liveFrame(Buffer.from('["EVENT","sub",'), json)
      const length = '["EVENT","sub",'.length + size + 1
      assert.deepEqual([...f.wire.subarray(0, f.headerLength)], header, `payload of ${length} bytes`)
      assert.equal(f.payload.length, length)
      assert.equal(f.payload.toString('latin1', 0, 15), '["EVENT","sub",')
      assert.equal(f.wire.at(-1), 0x5d)
    }
  })
})
