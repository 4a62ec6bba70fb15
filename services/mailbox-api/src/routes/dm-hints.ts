import { Router } from 'express'
import type { Pool } from 'pg'
import { listDmHints } from '../domain/dm-hints.js'
import { decodeCursor } from '../domain/mailbox.js'
import { ApiError } from '../errors.js'
import { tracedRoute } from '../tracing.js'
import { dmHintsQuery, parse } from './schemas.js'

/** GET /dm-hints: ids of kind-446 events waiting on the relay for the caller (the recipient only). */
export const dmHintRoutes = (deps: { pool: Pool }): Router => {
  const router = Router()
  router.get('/', tracedRoute('mailbox.dm_hints.list', {}, async (req, res) => {
    const query = parse(dmHintsQuery, req.query, 'query')
    if (req.pubkey !== query.recipient) throw new ApiError(403, 'FORBIDDEN', 'only the recipient may read its DM hints')
    const after = query.cursor === undefined ? 0 : decodeCursor(query.cursor)
    if (after === undefined) throw new ApiError(400, 'VALIDATION_FAILED', 'invalid query: cursor: not a cursor this API issued')
    const page = await listDmHints(deps.pool, query.recipient, query.since, after, query.limit)
    res.json({ ok: true, items: page.items, ...(page.nextCursor && { next_cursor: page.nextCursor }) })
  }))
  return router
}
