import type { Request, RequestHandler } from 'express'
import { OAuth2Client, type Certificates } from 'google-auth-library'
import { safeEqual, type Logger } from '@msr/telemetry'
import type { MailboxConfig } from '../config.js'
import { ApiError } from '../errors.js'
import type { MailboxMetrics } from '../metrics.js'

/** The PEM certificates that sign OIDC tokens, by key id (`kid`). */
export type CertsSource = () => Promise<Certificates>

/** Google's OIDC signing certificates; the client caches them as long as Google's Cache-Control allows. */
export const googleCerts = (client: OAuth2Client = new OAuth2Client()): CertsSource => async () => (await client.getFederatedSignonCertsAsync()).certs

/** The issuers Google puts in the OIDC tokens of push subscriptions. */
const GOOGLE_ISSUERS = ['accounts.google.com', 'https://accounts.google.com']

/** Why a push was refused (the metric label). */
export type PushAuthFailure =
  | 'not_configured'
  | 'missing'
  | 'token'
  | 'malformed'
  | 'unknown_key'
  | 'signature'
  | 'expired'
  | 'not_yet_valid'
  | 'lifetime'
  | 'issuer'
  | 'audience'
  | 'email'
  | 'email_unverified'

/** The push settings: a shared token, and/or the push service account (with an audience: verified in-app). */
export interface PushAuthSettings {
  token: string | undefined
  serviceAccount: string | undefined
  audience: string | undefined
}

/** The push settings of the configuration. */
export const pushAuthSettings = (config: Pick<MailboxConfig, 'hintsPushToken' | 'hintsPushServiceAccount' | 'hintsPushAudience'>): PushAuthSettings => ({
  token: config.hintsPushToken,
  serviceAccount: config.hintsPushServiceAccount,
  audience: config.hintsPushAudience,
})

/** The push authentication modes in force, for the start-up log (names only, never secrets). */
export const pushAuthModes = (s: PushAuthSettings): string[] => [
  ...(s.token ? ['token'] : []),
  ...(s.serviceAccount ? [s.audience ? 'oidc-verified' : 'cloud-run-iam'] : []),
]

type Check = { ok: true } | { ok: false; reason: PushAuthFailure }
const refused = (reason: PushAuthFailure): Check => ({ ok: false, reason })

/** The claims of a JWT, unverified; undefined when it is not three segments with a JSON object in the middle. */
const decodeClaims = (jwt: string): Record<string, unknown> | undefined => {
  const parts = jwt.split('.')
  if (parts.length !== 3 || !parts[1]) return undefined
  try {
    const claims: unknown = JSON.parse(Buffer.from(parts[1], 'base64url').toString('utf8'))
    return typeof claims === 'object' && claims !== null && !Array.isArray(claims) ? (claims as Record<string, unknown>) : undefined
  } catch {
    return undefined
  }
}

/** The token must name the push service account, with its email verified by Google. */
const checkIdentity = (claims: Record<string, unknown>, serviceAccount: string): Check => {
  if (claims.email !== serviceAccount) return refused('email')
  if (claims.email_verified !== true) return refused('email_unverified')
  return { ok: true }
}

/** google-auth-library reports each failed check as an Error whose message starts the same way (and may quote the token). */
const VERIFY_FAILURES: [RegExp, PushAuthFailure][] = [
  [/^No pem found/, 'unknown_key'],
  [/^Invalid token signature/, 'signature'],
  [/^Token used too late/, 'expired'],
  [/^Token used too early/, 'not_yet_valid'],
  [/^Expiration time too far/, 'lifetime'],
  [/^Invalid issuer/, 'issuer'],
  [/^Wrong recipient/, 'audience'],
]

const failureOf = (error: unknown): PushAuthFailure => {
  const message = error instanceof Error ? error.message : ''
  return VERIFY_FAILURES.find(([pattern]) => pattern.test(message))?.[1] ?? 'malformed'
}

/**
 * The OIDC token check. With an audience: signature against `certs`, audience, issuer, expiry, then the
 * identity. Without one the service sits behind Cloud Run IAM, which has verified the token already: only
 * the identity is read from it (unsafe if the service allows unauthenticated invocations).
 */
const oidcCheck = (s: PushAuthSettings & { serviceAccount: string }, certs: CertsSource, logger: Logger): ((jwt: string) => Promise<Check>) => {
  const client = new OAuth2Client()
  return async jwt => {
    const claims = decodeClaims(jwt)
    if (!claims) return refused('malformed')
    if (s.audience === undefined) return checkIdentity(claims, s.serviceAccount)
    const keys = await certs().catch((error: unknown) => {
      logger.error({ err: error }, 'could not fetch the OIDC signing certificates')
      throw new ApiError(503, 'UNAVAILABLE', 'the push token cannot be verified right now')
    })
    try {
      const ticket = await client.verifySignedJwtWithCertsAsync(jwt, keys, s.audience, GOOGLE_ISSUERS)
      return checkIdentity((ticket.getPayload() ?? {}) as Record<string, unknown>, s.serviceAccount)
    } catch (error) {
      return refused(failureOf(error))
    }
  }
}

const bearerOf = (req: Request): string | undefined => /^Bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? '')?.[1]

/**
 * POST /internal/pubsub/push: the shared token (`Authorization: Bearer` or `?token=`, constant time) or a
 * Google OIDC token of the push service account; either is enough. Nothing configured: every push is
 * refused. Any failure: 401 PUSH_AUTH_REQUIRED (nothing usable presented) or PUSH_AUTH_INVALID, counted by
 * reason and against the IP's budget (429 RATE_LIMITED once spent). A valid push is never counted.
 */
export const requirePushAuth = (
  deps: PushAuthSettings & {
    certs?: CertsSource
    metrics: MailboxMetrics
    logger: Logger
    /** Counts a refused push against the client IP's budget; the seconds to wait when spent (429 then). */
    penalize?: (ip: string) => Promise<number | undefined>
  },
): RequestHandler => {
  const { token, serviceAccount } = deps
  const oidc = serviceAccount === undefined ? undefined : oidcCheck({ ...deps, serviceAccount }, deps.certs ?? googleCerts(), deps.logger)
  const refuse = (reason: PushAuthFailure): ApiError => {
    deps.metrics.pushAuthFailures.inc({ reason })
    if (reason === 'not_configured') return new ApiError(401, 'PUSH_AUTH_REQUIRED', 'hint pushes are not accepted: no push authentication is configured')
    if (reason === 'missing') return new ApiError(401, 'PUSH_AUTH_REQUIRED', 'this route needs the push token or a Google OIDC token of the push service account')
    return new ApiError(401, 'PUSH_AUTH_INVALID', `the push credentials were refused (${reason})`)
  }
  /** A refusal also spends the address's budget, as a refused NIP-98 authentication does: a flood of bad pushes is throttled. */
  const refused = async (req: Request, reason: PushAuthFailure): Promise<ApiError> => {
    const error = refuse(reason)
    const wait = await deps.penalize?.(req.ip ?? '').catch(() => undefined)
    if (wait === undefined) return error
    deps.metrics.rateLimited.inc({ scope: 'ip' })
    return new ApiError(429, 'RATE_LIMITED', 'too many refused pushes from this address; retry later', { 'Retry-After': String(wait) })
  }
  return async (req, _res, next) => {
    if (token === undefined && oidc === undefined) return next(await refused(req, 'not_configured'))
    const bearer = bearerOf(req)
    const queryToken = typeof req.query.token === 'string' ? req.query.token : undefined
    const offered = [bearer, queryToken].filter((v): v is string => v !== undefined)
    if (token !== undefined && offered.some(v => safeEqual(v, token))) return next()
    // A bearer that is not a JWT can only have been meant as the shared token.
    const jwt = oidc && bearer !== undefined && bearer.split('.').length === 3 ? bearer : undefined
    if (oidc && jwt !== undefined) {
      const checked = await oidc(jwt)
      return next(checked.ok ? undefined : await refused(req, checked.reason))
    }
    if (token !== undefined && offered.length > 0) return next(await refused(req, 'token'))
    next(await refused(req, bearer !== undefined ? 'malformed' : 'missing'))
  }
}
