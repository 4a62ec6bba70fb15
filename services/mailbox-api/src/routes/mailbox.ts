import { Router, type Request } from 'express'
import { trace } from '@opentelemetry/api'
import type { Pool } from 'pg'
import { createBatcher } from '../db/batcher.js'
import { ackMany, decodeCursor, depositMany, pickup, type Ack, type Deposit, type MailboxKind } from '../domain/mailbox.js'
import { ApiError } from '../errors.js'
import type { MailboxMetrics } from '../metrics.js'
import { tracedRoute } from '../tracing.js'
import { decodedLength, itemId, parse, pickupQuery } from './schemas.js'
import type { z } from 'zod'

/** What a mailbox route family needs. */
export interface MailboxRouteDeps {
  pool: Pool
  metrics: MailboxMetrics
  defaultTtlSeconds: number
  maxTtlSeconds: number
  maxArtifactBytes: number
}

type Body = { recipient: string; sender?: string; ttl_seconds?: number } & Record<string, unknown>

/** Only the recipient acts on its own mailbox. */
const asRecipient = (req: Request, recipient: string): void => {
  if (req.pubkey !== recipient) throw new ApiError(403, 'FORBIDDEN', 'only the recipient may read or acknowledge this mailbox')
}

/** Artifacts past the configured cap are refused whole (413), naming the field. */
const checkSizes = (body: Record<string, unknown>, fields: readonly string[], max: number): void => {
  for (const field of fields) {
    const value = body[field]
    if (typeof value === 'string' && decodedLength(value) > max)
      throw new ApiError(413, 'PAYLOAD_TOO_LARGE', `${field} decodes to more than ${max} bytes`)
  }
}

/**
 * POST / (deposit, by the sender), GET / (pickup, by the recipient) and POST /:id/ack (by the recipient)
 * for one mailbox kind. Handlers run after NIP-98 authentication, so `req.pubkey` is set.
 */
export const mailboxRoutes = (kind: MailboxKind, body: z.ZodType<Body>, artifactFields: readonly string[], deps: MailboxRouteDeps): Router => {
  const router = Router()
  const attributes = { 'mailbox.kind': kind.name }
  // Deposits and acks arriving while earlier ones are in flight share one statement and one commit.
  const deposit = createBatcher((items: Deposit[]) => depositMany(deps.pool, kind, items))
  const ack = createBatcher((acks: Ack[]) => ackMany(deps.pool, kind, acks))
  router.post('/', tracedRoute('mailbox.deposit', attributes, async (req, res) => {
    const input = parse(body, req.body, 'body')
    if (input.sender !== undefined && input.sender !== req.pubkey) throw new ApiError(403, 'FORBIDDEN', 'sender must be the NIP-98 pubkey')
    if (input.ttl_seconds !== undefined && input.ttl_seconds > deps.maxTtlSeconds)
      throw new ApiError(400, 'TTL_TOO_LONG', `ttl_seconds may be at most ${deps.maxTtlSeconds}`)
    checkSizes(input, artifactFields, deps.maxArtifactBytes)
    const { recipient, sender: _sender, ttl_seconds, ...fields } = input
    const id = await deposit({ recipient, sender: req.pubkey as string, ttlSeconds: ttl_seconds ?? deps.defaultTtlSeconds, fields })
    deps.metrics.deposits.inc({ kind: kind.name })
    res.status(201).json({ ok: true, id })
  }))
  router.get('/', tracedRoute('mailbox.list', attributes, async (req, res) => {
    const query = parse(pickupQuery, req.query, 'query')
    asRecipient(req, query.recipient)
    const after = query.cursor === undefined ? 0 : decodeCursor(query.cursor)
    if (after === undefined) throw new ApiError(400, 'VALIDATION_FAILED', 'invalid query: cursor: not a cursor this API issued')
    const page = await pickup(deps.pool, kind, query.recipient, query.limit, after)
    deps.metrics.pickups.inc({ kind: kind.name }, page.items.length)
    trace.getActiveSpan()?.setAttribute('mailbox.items', page.items.length)
    res.json({ ok: true, items: page.items, ...(page.nextCursor && { next_cursor: page.nextCursor }) })
  }))
  router.post('/:id/ack', tracedRoute('mailbox.ack', attributes, async (req, res) => {
    // UUIDs are read in any case (RFC 9562); the API issues and stores them in lowercase.
    const id = parse(itemId, req.params.id, 'path').toLowerCase()
    if (req.body !== undefined && Object.keys(req.body as object).length > 0)
      throw new ApiError(400, 'VALIDATION_FAILED', 'invalid body: an ack takes no body')
    if (!(await ack({ recipient: req.pubkey as string, id })))
      throw new ApiError(404, 'MAILBOX_NOT_FOUND', 'no such item in your mailbox (already acknowledged, expired, or not yours)')
    deps.metrics.acks.inc({ kind: kind.name })
    res.json({ ok: true })
  }))
  return router
}
