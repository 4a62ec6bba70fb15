import express, { type RequestHandler } from 'express'
import helmet from 'helmet'
import type { Pool } from 'pg'
import { safeEqual, type Logger } from '@msr/telemetry'
import { requireAdmin } from './auth/admin.js'
import { requireNip98 } from './auth/nip98.js'
import type { SignatureCheck } from './auth/signatures.js'
import { pushAuthSettings, requirePushAuth, type CertsSource } from './auth/push.js'
import type { MailboxConfig } from './config.js'
import { crossOrigin } from './cors.js'
import { LATEST_VERSION, schemaVersion } from './db/migrate.js'
import { createHintReceiver } from './domain/hints.js'
import { KEYPACKAGES, WELCOMES } from './domain/mailbox.js'
import { ApiError, errorMiddleware } from './errors.js'
import { refuseDeclaredOver } from './http-edge.js'
import type { MailboxMetrics } from './metrics.js'
import { createRateLimits, type RateLimits } from './rate-limits.js'
import { dmHintRoutes } from './routes/dm-hints.js'
import { groupRoutes } from './routes/groups.js'
import { mailboxRoutes } from './routes/mailbox.js'
import { openApiDocument } from './routes/openapi.js'
import { PUSH_BODY_LIMIT, pushRoutes } from './routes/push.js'
import { keyPackageBody, welcomeBody } from './routes/schemas.js'

/** What the app is built from; main.ts wires these, tests build their own. */
export interface AppDeps {
  config: MailboxConfig
  pool: Pool
  /** The NIP-98 gate's pool (asynchronous commit; see db/database.ts); `pool` when absent. */
  gatePool?: Pool
  signatures: SignatureCheck
  metrics: MailboxMetrics
  logger: Logger
  /** Where OIDC signing certificates come from (default: Google's); tests inject their own key. */
  pushCerts?: CertsSource
}

/** The body limit: two artifacts of the maximum size as base64, plus room for the other fields. */
const bodyLimit = (maxArtifactBytes: number): number => 2 * Math.ceil(maxArtifactBytes / 3) * 4 + 64 * 1024

/**
 * The admin routes under /api/v1 (GET and POST /groups in routes/groups.ts), as express matches them: any
 * case, and runs of slashes (`/groups//` reaches them too) taken as one.
 */
const ADMIN_PATH = /^\/groups\/?$/i
const isAdminPath = (path: string): boolean => ADMIN_PATH.test(path.replace(/\/{2,}/g, '/'))

/** Times and counts each request by route (never logging bodies or tokens). */
const timing = (metrics: MailboxMetrics): RequestHandler => (req, res, next) => {
  const stop = metrics.requestSeconds.startTimer()
  res.on('finish', () => {
    const labels = { method: req.method, route: (req.baseUrl + (req.route?.path ?? '')) || 'unmatched', status: String(res.statusCode) }
    stop(labels)
    metrics.requests.inc(labels)
  })
  next()
}

/** The express app: security headers, health, metrics, OpenAPI, the hint push route, and /api/v1 behind rate limits and auth. */
export const buildApp = (deps: AppDeps): express.Express => {
  const { config, pool, metrics } = deps
  const app = express()
  app.disable('x-powered-by')
  // Every answer is per caller and short-lived: hashing each body for an ETag is CPU spent for nothing.
  app.set('etag', false)
  app.set('trust proxy', config.trustedProxies)
  app.set('query parser', 'simple')
  app.use(helmet())
  app.use(timing(metrics))
  app.get('/healthz', (_req, res) => void res.type('text/plain').send('ok\n'))
  app.get('/readyz', async (_req, res) => {
    const ready = await schemaVersion(pool).then(v => v >= LATEST_VERSION, () => false)
    res.status(ready ? 200 : 503).type('text/plain').send(ready ? 'ready\n' : 'not ready\n')
  })
  app.get('/metrics', async (req, res) => {
    const presented = /^Bearer\s+(.+)$/i.exec(req.headers.authorization ?? '')?.[1]?.trim() ?? (typeof req.query.auth === 'string' ? req.query.auth : undefined)
    if (!config.metricsAuth || !presented || !safeEqual(presented, config.metricsAuth)) throw new ApiError(404, 'NOT_FOUND', 'not found')
    res.type(metrics.metrics.contentType).send(await metrics.metrics.render())
  })
  // Browsers only on /api/v1, never its admin routes: those and the push route serve tools, not pages.
  app.use('/api/v1', crossOrigin({ origins: config.corsOrigins, except: isAdminPath }))
  // Any other OPTIONS (no CORS preflight) gets an empty 204, not express's automatic text/plain list of
  // methods, which it would give even on routes whose credentials it never checked.
  app.options(/.*/, (_req, res) => void res.status(204).end())
  const document = openApiDocument(config)
  app.get('/api/v1/openapi.json', (_req, res) => void res.json(document))
  const limits = createRateLimits(pool, config.rateLimitPerIp, metrics)
  app.use('/internal/pubsub/push', refuseDeclaredOver(PUSH_BODY_LIMIT), pushRouter(deps, limits))
  app.use('/api/v1', refuseDeclaredOver(bodyLimit(config.maxArtifactBytes)), apiRouter(deps, limits))
  app.use((_req, _res, next) => next(new ApiError(404, 'NOT_FOUND', 'no such route')))
  app.use(errorMiddleware(deps.logger))
  return app
}

const pushRouter = (deps: AppDeps, limits: RateLimits): express.Router => {
  const { config, metrics, logger } = deps
  const auth = requirePushAuth({
    ...pushAuthSettings(config),
    ...(deps.pushCerts && { certs: deps.pushCerts }),
    metrics,
    logger,
    penalize: limits.penalize,
  })
  return pushRoutes({ auth, receive: createHintReceiver({ pool: deps.pool, metrics, logger, dmHintTtlSeconds: config.defaultTtlSeconds }) })
}

const apiRouter = (deps: AppDeps, limits: RateLimits): express.Router => {
  const { config, pool, metrics } = deps
  const nip98 = requireNip98({
    publicUrl: config.publicUrl,
    signatures: deps.signatures,
    pool: deps.gatePool ?? pool,
    metrics,
    limits: { perIp: config.rateLimitPerIp, perPubkey: config.rateLimitPerPubkey },
    penalize: limits.penalize,
  })
  const user = [nip98]
  const admin = [limits.byIp, requireAdmin({ token: config.adminToken, allowlist: config.adminIpAllowlist, metrics })]
  const mailboxDeps = { pool, metrics, defaultTtlSeconds: config.defaultTtlSeconds, maxTtlSeconds: config.maxTtlSeconds, maxArtifactBytes: config.maxArtifactBytes }
  const router = express.Router()
  router.use(
    express.json({
      limit: bodyLimit(config.maxArtifactBytes),
      strict: true,
      // NIP-98's payload tag is the sha256 of the body as sent; body-parser would hand `verify` the inflated
      // bytes of a compressed one. A Content-Encoding other than identity is refused (415) instead.
      inflate: false,
      verify: (req, _res, buf) => void ((req as express.Request).rawBody = buf),
    }),
  )
  // A body the JSON parser skipped (another content type) would escape the NIP-98 payload check.
  router.use((req, _res, next) => {
    const hasBody = req.headers['transfer-encoding'] !== undefined || Number(req.headers['content-length'] ?? 0) > 0
    next(hasBody && !req.is('application/json') ? new ApiError(415, 'UNSUPPORTED_MEDIA_TYPE', 'send the body as application/json') : undefined)
  })
  router.use('/keypackages', ...user, mailboxRoutes(KEYPACKAGES, keyPackageBody(config.maxArtifactBytes, config.maxTtlSeconds), ['content_b64'], mailboxDeps))
  router.use('/welcome', ...user, mailboxRoutes(WELCOMES, welcomeBody(config.maxArtifactBytes, config.maxTtlSeconds), ['welcome_b64', 'ratchet_tree_b64'], mailboxDeps))
  router.use('/dm-hints', ...user, dmHintRoutes({ pool }))
  router.use('/groups', groupRoutes({ pool, metrics, user, admin }))
  return router
}
