import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import type { WebSocket } from 'ws'
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

const setup = (maxOutboundBytes = 1000, slowGraceMs = 5000) => {
  const socket = new SocketDouble()
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

const frame = Buffer.from('["EVENT","s",{}]')

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
    client.send(frame)
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
    client.send(frame)
    client.eose('s')
    assert.equal(socket.sent.length, 0)
    await new Promise(resolve => setImmediate(resolve))
    assert.deepEqual(socket.sent.map(String), ['["EVENT","s",{}]', '["EOSE","s"]'])
    assert.deepEqual(socket.binary, [false, false], 'Buffer frames go out as text frames')
  })
})
