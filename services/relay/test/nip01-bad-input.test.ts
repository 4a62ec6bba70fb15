// Malformed and hostile input: always a prefixed answer, never a dropped connection, never harm to other clients.
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { newSigner, sign, startTestRelay, TestClient, type NostrEvent, type RelayMessage, type TestRelay } from './harness.js'

const MAX_MESSAGE = 256 * 1024
const MAX_TAGS = 10_000

let relay: TestRelay
/** Sends the bad input. */
let attacker: TestClient
/** Holds a live subscription throughout and must see every marker event, nothing else. */
let bystander: TestClient
const marker = newSigner()
const markers: NostrEvent[] = []

before(async () => {
  relay = await startTestRelay({ 'limitation.max_message_length': MAX_MESSAGE, 'limitation.max_event_tags': MAX_TAGS })
  attacker = await TestClient.connect(relay.url)
  bystander = await TestClient.connect(relay.url)
  assert.deepEqual(await bystander.req('watch', { authors: [marker.pubkey] }), [])
})

after(async () => {
  // The bystander saw every marker, in order, and nothing else.
  if (bystander?.isOpen) {
    const seen: NostrEvent[] = []
    for (let i = 0; i < markers.length; i++) seen.push(await bystander.nextEvent('watch'))
    assert.deepEqual(
      seen.map(e => e.id),
      markers.map(e => e.id),
    )
    await bystander.sync()
    assert.deepEqual(bystander.takeAll(), [])
  }
  await attacker?.close()
  await bystander?.close()
  await relay?.close()
})

/** Proves the attacker's connection still works: it publishes a marker event and gets OK true. */
const stillServes = async (client = attacker) => {
  assert.ok(client.isOpen, 'the connection is still open')
  const event = sign(marker, { content: `marker ${markers.length}` })
  markers.push(event)
  await client.publishOk(event)
}

const expectNotice = async (frame: string | Buffer): Promise<RelayMessage> => {
  attacker.sendRaw(frame)
  const notice = await attacker.next(m => m[0] === 'NOTICE')
  assert.equal(notice.length, 2)
  assert.match(String(notice[1]), /^invalid: /)
  return notice
}

const expectClosed = async (subId: string, frame: unknown[]) => {
  attacker.send(frame)
  const closed = await attacker.next(m => m[0] === 'CLOSED' && m[1] === subId)
  assert.equal(closed.length, 3)
  assert.match(String(closed[2]), /^invalid: /)
}

describe('frames that are not relay messages', () => {
  it('malformed JSON gets NOTICE "invalid:"', async () => {
    for (const frame of ['', '[', '["REQ", "x", {]', 'null]', '{"a":1', '\u0000', '["EVENT", {"id": "x"} ']) await expectNotice(frame)
    await stillServes()
  })

  it('JSON that is not an array starting with a verb gets NOTICE "invalid:"', async () => {
    for (const frame of ['{}', '"EVENT"', '42', 'null', 'true', '[]', '[1, 2]', '[null]', '[["EVENT"]]', '[{"verb":"REQ"}]'])
      await expectNotice(frame)
    await stillServes()
  })

  it('an unknown verb gets NOTICE "invalid:"', async () => {
    for (const frame of [['HELLO'], ['event', {}], ['req', 'x', {}], ['OK', 'x', true, ''], ['EOSE', 'x'], ['V'.repeat(5000)]])
      await expectNotice(JSON.stringify(frame))
    await stillServes()
  })

  it('a binary frame gets NOTICE "invalid:"', async () => {
    await expectNotice(Buffer.from(JSON.stringify(['REQ', 'bin', { kinds: [1] }])))
    await expectNotice(Buffer.from([0xff, 0x00, 0x13]))
    await attacker.sync()
    assert.deepEqual(attacker.takeAll(m => m[1] === 'bin'), [])
    await stillServes()
  })

  it('deeply nested JSON gets NOTICE "invalid:"', async () => {
    const depth = 100_000
    await expectNotice('['.repeat(depth) + ']'.repeat(depth))
    await stillServes()
  })
})

describe('wrong arity and types', () => {
  it('EVENT without an event, or with too many parts', async () => {
    await expectNotice(JSON.stringify(['EVENT']))
    const event = sign(newSigner())
    attacker.send(['EVENT', event, event])
    const ok = await attacker.next(m => m[0] === 'OK' && m[1] === event.id)
    assert.equal(ok[2], false)
    assert.match(String(ok[3]), /^invalid: /)
    assert.deepEqual(await attacker.query({ ids: [event.id] }), [])
    await stillServes()
  })

  it('REQ, COUNT and CLOSE with missing or non-string subscription ids', async () => {
    for (const frame of [
      ['REQ'],
      ['REQ', 1, {}],
      ['REQ', null, {}],
      ['REQ', { id: 'x' }, {}],
      ['REQ', '', {}],
      ['COUNT'],
      ['COUNT', 7, {}],
      ['CLOSE'],
      ['CLOSE', 1],
      ['CLOSE', 'a', 'b'],
    ])
      await expectNotice(JSON.stringify(frame))
    await stillServes()
  })

  it('REQ and COUNT without filters get CLOSED "invalid:"', async () => {
    await expectClosed('nofilter', ['REQ', 'nofilter'])
    await expectClosed('nofilter-count', ['COUNT', 'nofilter-count'])
    await stillServes()
  })

  it('filters with unknown fields, wrong types or non-hex #e/#p get CLOSED "invalid:"', async () => {
    const hex = 'a'.repeat(64)
    const bad: unknown[] = [
      { search: 'x' },
      { kind: [1] },
      { '#tt': ['x'] },
      { '#': ['x'] },
      { ids: 'x' },
      { ids: [hex.toUpperCase()] },
      { ids: ['abc'] },
      { authors: [1] },
      { authors: ['not hex'.padEnd(64, 'z')] },
      { kinds: '1' },
      { kinds: [1.5] },
      { kinds: [-1] },
      { kinds: [70000] },
      { since: 'yesterday' },
      { until: -5 },
      { limit: -1 },
      { limit: 1.5 },
      { limit: '10' },
      { '#e': ['not-hex'] },
      { '#e': [hex.slice(1)] },
      { '#p': [hex.toUpperCase()] },
      { '#t': [1] },
      { '#t': 'x' },
      [],
      null,
      'filter',
      42,
    ]
    for (const [i, filter] of bad.entries()) await expectClosed(`bad${i}`, ['REQ', `bad${i}`, filter])
    // A bad filter after a good one still refuses the whole REQ.
    await expectClosed('mixed', ['REQ', 'mixed', { kinds: [1] }, { bogus: true }])
    await attacker.sync()
    assert.deepEqual(attacker.takeAll(m => m[1] === 'mixed'), [])
    await stillServes()
  })
})

describe('oversized input', () => {
  it('a frame above the WebSocket maxPayload may close that connection (1009), but others keep working', async t => {
    const victim = await TestClient.connect(relay.url)
    victim.sendRaw(JSON.stringify(['REQ', 'huge', { '#t': ['x'.repeat(2 * MAX_MESSAGE + 1024)] }]))
    const outcome = await Promise.race([victim.closed, victim.next(m => m[0] === 'NOTICE').then(() => undefined)])
    t.diagnostic(outcome ? `oversized frame: connection closed with ${outcome.code}` : 'oversized frame: NOTICE, connection kept')
    if (outcome) assert.equal(outcome.code, 1009)
    else await stillServes(victim)
    await victim.close()
    await stillServes()
    const fresh = await TestClient.connect(relay.url)
    await stillServes(fresh)
    await fresh.close()
  })

  it(`an event with ${MAX_TAGS} tags (the limit) is stored and served`, async () => {
    const signer = newSigner()
    const tags = Array.from({ length: MAX_TAGS }, (_, i) => ['t', `many-${i}`])
    const event = sign(signer, { tags })
    await attacker.publishOk(event)
    assert.deepEqual(await attacker.query({ authors: [signer.pubkey] }), [event])
    assert.deepEqual(await attacker.query({ '#t': [`many-${MAX_TAGS - 1}`] }), [event])
    const over = sign(signer, { tags: [...tags, ['t', 'one more']] })
    const ok = await attacker.publish(over)
    assert.equal(ok[2], false)
    assert.match(ok[3], /^invalid: /)
    await stillServes()
  })

  it('huge tag values are indexed: a #t query with a 1000-character value finds the event, stored and live', async () => {
    const signer = newSigner()
    const long = 'v'.repeat(1000)
    const longer = `${'é'.repeat(5000)}!`
    const live = await TestClient.connect(relay.url)
    try {
      assert.deepEqual(await live.req('long', { '#t': [long] }), [])
      const event = sign(signer, { tags: [['t', long], ['t', longer], ['e', 'x'.repeat(3000)]] })
      const decoy = sign(signer, { tags: [['t', `${long}w`]] })
      await attacker.publishOk(decoy)
      await attacker.publishOk(event)
      assert.deepEqual(await live.nextEvent('long'), event)
      assert.deepEqual(await attacker.query({ '#t': [long] }), [event])
      assert.deepEqual(await attacker.query({ '#t': [longer] }), [event])
      assert.deepEqual(await attacker.query({ '#t': [long.slice(1)] }), [])
      await live.sync()
      assert.deepEqual(live.takeAll(m => m[0] === 'EVENT'), [])
    } finally {
      await live.close()
    }
    await stillServes()
  })
})
