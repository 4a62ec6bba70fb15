import { Router, type RequestHandler } from 'express'
import type { Pool } from 'pg'
import { getGroup, listGroups, upsertGroupMetadata } from '../domain/groups.js'
import { ApiError } from '../errors.js'
import type { MailboxMetrics } from '../metrics.js'
import { tracedRoute } from '../tracing.js'
import { groupBody, groupId, groupListQuery, parse } from './schemas.js'

/**
 * The group registry: GET /:id for any NIP-98-authenticated caller (knowing the id is the capability);
 * GET / and POST / for admins only, since a public list would expose every group id.
 */
export const groupRoutes = (deps: { pool: Pool; metrics: MailboxMetrics; user: RequestHandler[]; admin: RequestHandler[] }): Router => {
  const router = Router()
  router.get('/', ...deps.admin, tracedRoute('mailbox.registry.list', {}, async (req, res) => {
    const query = parse(groupListQuery, req.query, 'query')
    const groups = await listGroups(deps.pool, query.limit + 1, query.cursor ?? '')
    const page = groups.slice(0, query.limit)
    const next = groups.length > query.limit ? page[page.length - 1]?.group_id : undefined
    res.json({ ok: true, items: page, ...(next && { next_cursor: next }) })
  }))
  router.post('/', ...deps.admin, tracedRoute('mailbox.registry.update', { 'mailbox.source': 'admin' }, async (req, res) => {
    const group = await upsertGroupMetadata(deps.pool, parse(groupBody, req.body, 'body'))
    deps.metrics.groupUpserts.inc({ source: 'admin' })
    res.json({ ok: true, group })
  }))
  router.get('/:id', ...deps.user, tracedRoute('mailbox.registry.get', {}, async (req, res) => {
    const group = await getGroup(deps.pool, parse(groupId, req.params.id, 'path'))
    if (!group) throw new ApiError(404, 'GROUP_NOT_FOUND', 'no such group')
    res.json({ ok: true, group })
  }))
  return router
}
