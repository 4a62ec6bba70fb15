import type { RequestHandler } from 'express'
import { BlockList, isIP } from 'node:net'
import { safeEqual } from '@msr/telemetry'
import { ApiError } from '../errors.js'
import type { MailboxMetrics } from '../metrics.js'

/** Admin routes: `Authorization: Bearer <ADMIN_TOKEN>` (constant-time) and, when set, an address in ADMIN_IP_ALLOWLIST. */
export const requireAdmin = (deps: { token: string | undefined; allowlist: string[]; metrics: MailboxMetrics }): RequestHandler => {
  const allowed = new BlockList()
  for (const entry of deps.allowlist) {
    const [address = '', prefix] = entry.split('/')
    const family = isIP(address) === 6 ? 'ipv6' : 'ipv4'
    if (prefix === undefined) allowed.addAddress(address, family)
    else allowed.addSubnet(address, Number(prefix), family)
  }
  return (req, _res, next) => {
    const refuse = (reason: string) => {
      deps.metrics.authFailures.inc({ reason })
      next(new ApiError(401, 'ADMIN_AUTH_REQUIRED', 'this route needs the admin token from an allowed address'))
    }
    const presented = /^Bearer\s+(.+)$/i.exec(req.headers.authorization ?? '')?.[1]?.trim()
    if (!deps.token || !presented || !safeEqual(presented, deps.token)) return refuse('admin_token')
    const ip = (req.ip ?? '').replace(/^::ffff:(\d+\.\d+\.\d+\.\d+)$/, '$1')
    const family = isIP(ip)
    if (deps.allowlist.length > 0 && (family === 0 || !allowed.check(ip, family === 6 ? 'ipv6' : 'ipv4'))) return refuse('admin_ip')
    next()
  }
}
