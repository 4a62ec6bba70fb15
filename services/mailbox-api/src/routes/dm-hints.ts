import { Router } from 'express'
import type { Pool } from 'pg'
import { listDmHints } from '../domain/dm-hints.js'
import { ApiError } from '../errors.js'
import { dmHintsQuery, parse } from './schemas.js'

/** GET /dm-hints: ids of kind-446 events waiting on the relay for the caller (the recipient only). */
export const dmHintRoutes = (deps: { pool: Pool }): Router => {
  const router = Router()
  router.get('/', async (req, res) => {
    const query = parse(dmHintsQuery, req.query, 'query')
    if (req.pubkey !== query.recipient) throw new ApiError(403, 'FORBIDDEN', 'only the recipient may read its DM hints')
    res.json({ ok: true, items: await listDmHints(deps.pool, query.recipient, query.since, query.limit) })
  })
  return router
}
