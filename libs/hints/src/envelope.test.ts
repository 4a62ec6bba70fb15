import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { decodePushEnvelope, encodePushEnvelope } from './envelope.js'
import { encodeHint, hintAttributes, type Hint } from './hint.js'

const hint: Hint = { v: 1, id: 'a'.repeat(64), kind: 445, pubkey: 'b'.repeat(64), created_at: 1_700_000_000, group: 'g1', epoch: 2 }
const SUBSCRIPTION = 'projects/p/subscriptions/s'

const envelope = () =>
  encodePushEnvelope({
    data: encodeHint(hint),
    attributes: hintAttributes(hint),
    messageId: '123',
    publishTime: new Date('2025-01-02T03:04:05.678Z'),
    orderingKey: 'g1',
    subscription: SUBSCRIPTION,
  })

/** The envelope as the endpoint receives it: through JSON, with the message fields replaced. */
const withMessage = (fields: Record<string, unknown>): unknown => {
  const body = JSON.parse(JSON.stringify(envelope())) as { message: Record<string, unknown> }
  return { ...body, message: { ...body.message, ...fields } }
}

describe('encodePushEnvelope', () => {
  it('wraps the message as Pub/Sub push does, with both spellings of id and time', () => {
    assert.deepEqual(envelope(), {
      message: {
        data: encodeHint(hint).toString('base64'),
        attributes: { kind: '445', event_id: hint.id, group: 'g1' },
        messageId: '123',
        message_id: '123',
        publishTime: '2025-01-02T03:04:05.678Z',
        publish_time: '2025-01-02T03:04:05.678Z',
        orderingKey: 'g1',
      },
      subscription: SUBSCRIPTION,
    })
  })

  it('omits the ordering key when there is none and stamps the current time by default', () => {
    const before = Date.now()
    const { message } = encodePushEnvelope({ data: Buffer.from('x'), attributes: {}, messageId: '1', subscription: SUBSCRIPTION })
    assert.equal('orderingKey' in message, false)
    assert.ok(Date.parse(message.publishTime) >= before - 1)
  })
})

describe('decodePushEnvelope', () => {
  it('round-trips a hint with its message id and attributes', () => {
    assert.deepEqual(decodePushEnvelope(JSON.parse(JSON.stringify(envelope()))), {
      ok: true,
      hint,
      messageId: '123',
      attributes: { kind: '445', event_id: hint.id, group: 'g1' },
    })
  })

  it('accepts the snake_case message_id alone, extra fields, and no attributes', () => {
    const body = { message: { data: encodeHint(hint).toString('base64'), message_id: '9', extra: true }, subscription: SUBSCRIPTION, deliveryAttempt: 2 }
    assert.deepEqual(decodePushEnvelope(body), { ok: true, hint, messageId: '9', attributes: {} })
  })

  it('refuses bodies that are not envelopes', () => {
    for (const body of [undefined, null, 'text', [], {}, { subscription: SUBSCRIPTION }, { message: null }, { message: 'x' }])
      assert.deepEqual(decodePushEnvelope(body), { ok: false, reason: 'not a Pub/Sub push envelope' }, JSON.stringify(body))
    assert.equal(decodePushEnvelope(withMessage({ attributes: { kind: 445 } })).ok, false)
  })

  it('says when data is missing or not base64, keeping the message id for the log', () => {
    assert.deepEqual(decodePushEnvelope(withMessage({ data: undefined })), { ok: false, reason: 'message.data is missing', messageId: '123' })
    for (const data of ['abc', 'ab$=', '====', 'YWJj\n', 'YW=j'])
      assert.deepEqual(decodePushEnvelope(withMessage({ data })), { ok: false, reason: 'message.data is not base64', messageId: '123' }, data)
  })

  it('says why data that is base64 is not a hint', () => {
    const notJson = decodePushEnvelope(withMessage({ data: Buffer.from('hello').toString('base64') }))
    assert.deepEqual(notJson, { ok: false, reason: 'data is not JSON', messageId: '123' })
    const notHint = decodePushEnvelope(withMessage({ data: Buffer.from(JSON.stringify({ ...hint, v: 2 })).toString('base64') }))
    assert.equal(notHint.ok, false)
    if (!notHint.ok) assert.match(notHint.reason, /^v: /)
  })
})
