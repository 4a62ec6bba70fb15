import { z } from 'zod'
import { decodeHint, type Hint } from './hint.js'

/**
 * The wrapped push envelope Pub/Sub POSTs to a push endpoint (and the local transport imitates):
 * `{ message: { data, attributes, messageId, publishTime }, subscription }`. Pub/Sub also sends the
 * snake_case twins (`message_id`, `publish_time`) and may add fields, so unknown fields are allowed here.
 */
export interface PushEnvelope {
  message: {
    data: string
    attributes?: Record<string, string>
    messageId: string
    message_id?: string
    publishTime: string
    publish_time?: string
    orderingKey?: string
  }
  subscription: string
  deliveryAttempt?: number
}

const envelopeSchema = z.looseObject({
  message: z.looseObject({
    data: z.string().max(10 * 1024 * 1024).optional(),
    attributes: z.record(z.string(), z.string()).optional(),
    messageId: z.string().optional(),
    message_id: z.string().optional(),
    publishTime: z.string().optional(),
    publish_time: z.string().optional(),
    orderingKey: z.string().optional(),
  }),
  subscription: z.string().optional(),
  deliveryAttempt: z.number().optional(),
})

/** Wraps a message the way Pub/Sub push does. */
export const encodePushEnvelope = (msg: {
  data: Buffer
  attributes: Record<string, string>
  messageId: string
  publishTime?: Date
  orderingKey?: string | undefined
  subscription: string
}): PushEnvelope => {
  const publishTime = (msg.publishTime ?? new Date()).toISOString()
  return {
    message: {
      data: msg.data.toString('base64'),
      attributes: msg.attributes,
      messageId: msg.messageId,
      message_id: msg.messageId,
      publishTime,
      publish_time: publishTime,
      ...(msg.orderingKey !== undefined && { orderingKey: msg.orderingKey }),
    },
    subscription: msg.subscription,
  }
}

/** What a push body held: a hint, or why it is not one (either way the message is to be acknowledged). */
export type DecodedPush =
  | { ok: true; hint: Hint; messageId: string; attributes: Record<string, string> }
  | { ok: false; reason: string; messageId?: string }

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/

/** Unwraps a push envelope and parses its hint. */
export const decodePushEnvelope = (body: unknown): DecodedPush => {
  const parsed = envelopeSchema.safeParse(body)
  if (!parsed.success) return { ok: false, reason: 'not a Pub/Sub push envelope' }
  const { message } = parsed.data
  const messageId = message.messageId ?? message.message_id
  if (message.data === undefined) return { ok: false, reason: 'message.data is missing', ...(messageId !== undefined && { messageId }) }
  if (message.data.length % 4 !== 0 || !BASE64.test(message.data))
    return { ok: false, reason: 'message.data is not base64', ...(messageId !== undefined && { messageId }) }
  const decoded = decodeHint(Buffer.from(message.data, 'base64'))
  if (!decoded.ok) return { ok: false, reason: decoded.reason, ...(messageId !== undefined && { messageId }) }
  return { ok: true, hint: decoded.hint, messageId: messageId ?? '', attributes: message.attributes ?? {} }
}
