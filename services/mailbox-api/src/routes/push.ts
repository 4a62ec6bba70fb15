import express, { Router, type RequestHandler } from 'express'
import { decodePushEnvelope } from '@msr/hints'
import type { HintReceiver, ReceivedHint } from '../domain/hints.js'

/** The largest push body read: a hint is a few KiB; the envelope adds base64 and attributes. */
export const PUSH_BODY_LIMIT = 1024 * 1024

/** The hint a raw push body carries, or why it carries none (not JSON counts as malformed, not as a 400). */
const decodeBody = (body: unknown): ReceivedHint => {
  let value: unknown
  try {
    value = JSON.parse(Buffer.isBuffer(body) ? body.toString('utf8') : '')
  } catch {
    return { ok: false, reason: 'the body is not JSON' }
  }
  return decodePushEnvelope(value)
}

/**
 * POST /internal/pubsub/push: a Pub/Sub push envelope (or the relay's local transport). Authentication
 * comes before the body is read. 204 once the hint is committed, was already seen, or is malformed (so
 * Pub/Sub stops delivering it); a database failure surfaces as 500, and Pub/Sub redelivers.
 */
export const pushRoutes = (deps: { auth: RequestHandler; receive: HintReceiver }): Router => {
  const router = Router()
  router.post('/', deps.auth, express.raw({ type: () => true, limit: PUSH_BODY_LIMIT, inflate: false }), async (req, res) => {
    await deps.receive(decodeBody(req.body), 'push')
    res.status(204).end()
  })
  return router
}
