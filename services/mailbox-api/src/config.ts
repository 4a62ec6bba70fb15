import { isIP } from 'node:net'
import { MAX_DURATION, parseDuration } from '@msr/config'
import { z } from 'zod'
import { originProblem } from './cors.js'

/** A duration variable in milliseconds, from `min` to `max` (written as durations; an interval's timer takes at most MAX_DURATION). */
const duration = (def: string, { min = '0', max }: { min?: string; max?: string } = {}) =>
  z
    .string()
    .default(def)
    .transform((value, ctx) => {
      const ms = parseDuration(value)
      if (ms === undefined) ctx.addIssue({ code: 'custom', message: 'expected a duration like "7d", "12h", "30m"' })
      else if (ms < (parseDuration(min) ?? 0) || (max !== undefined && ms > (parseDuration(max) ?? 0)))
        ctx.addIssue({ code: 'custom', message: `expected a duration ${max === undefined ? `of at least ${min}` : `from ${min} to ${max}`}` })
      return ms ?? 0
    })

const integer = (def: number, min: number, max = Number.MAX_SAFE_INTEGER) =>
  z.coerce
    .number({ error: issue => (issue.code === 'invalid_type' ? 'expected an integer' : undefined) })
    .int({ error: 'expected an integer' })
    .min(min)
    .max(max)
    .default(def)

const ipOrRange = (value: string): boolean => {
  const [address, prefix, extra] = value.split('/')
  const family = isIP(address ?? '')
  if (family === 0 || extra !== undefined) return false
  return prefix === undefined || (/^\d+$/.test(prefix) && Number(prefix) <= (family === 4 ? 32 : 128))
}

const EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/
const SUBSCRIPTION = /^(projects\/[^/\s]+\/subscriptions\/)?[^/\s]+$/

/** Every environment variable the mailbox API reads, with its default and meaning (README lists them). */
export const mailboxEnvSchema = z.object({
  PORT: integer(8081, 0, 65535).describe('Listen port (Cloud Run sets it).'),
  HOST: z.string().default('127.0.0.1').describe('Listen address; 0.0.0.0 in a container.'),
  DATABASE_URL: z.string().optional().describe('PostgreSQL connection string; unset: an embedded PostgreSQL under MAILBOX_DATA_DIR.'),
  MAILBOX_DATA_DIR: z.string().default('./data/postgres').describe('Data directory of the embedded PostgreSQL.'),
  MAILBOX_EMBEDDED_PG_PORT: integer(54329, 1).describe('Loopback port of the embedded PostgreSQL.'),
  PUBLIC_URL: z.string().optional().describe('External base URL (e.g. https://mailbox.example.com); NIP-98 `u` tags must be this plus the path and query. Default http://127.0.0.1:PORT.'),
  ADMIN_TOKEN: z.string().optional().describe('Bearer token of the admin routes (GET/POST /api/v1/groups); unset: admin routes refuse everyone. At least 16 characters.'),
  ADMIN_IP_ALLOWLIST: z.string().default('').describe('Comma-separated addresses/CIDR ranges allowed to use admin routes (empty: any address with the token).'),
  CORS_ORIGINS: z
    .string()
    .default('')
    .describe(
      'Browser origins allowed to call /api/v1 (CORS), comma-separated and exact as browsers send them (e.g. https://app.example.com), or * for any; empty: no CORS headers, so browsers refuse cross-origin calls. Never the admin routes nor the push route.',
    ),
  METRICS_AUTH: z.string().optional().describe('Key for GET /metrics (Bearer or ?auth=); unset: /metrics is a 404. At least 16 characters.'),
  MAILBOX_DEFAULT_TTL: duration('7d', { min: '1s' }).describe('Lifetime of a mailbox item without ttl_seconds (at least 1s).'),
  MAILBOX_MAX_TTL: duration('30d', { min: '1s' }).describe('Longest ttl_seconds accepted (at least 1s).'),
  MAILBOX_MAX_ARTIFACT_BYTES: integer(262144, 1).describe('Largest decoded artifact (content_b64, welcome_b64, ratchet_tree_b64) in bytes.'),
  MAILBOX_RATE_LIMIT_PER_IP: integer(1200, 0).describe('Requests per minute per client IP, shared by all instances (0: no limit).'),
  MAILBOX_RATE_LIMIT_PER_PUBKEY: integer(600, 0).describe('Requests per minute per NIP-98 pubkey, shared by all instances (0: no limit).'),
  MAILBOX_JANITOR_INTERVAL: duration('1m', { min: '100ms', max: MAX_DURATION }).describe(`How often expired items, dm hints, seen hint ids and NIP-98 replay entries are purged (100ms to ${MAX_DURATION}).`),
  TRUSTED_PROXIES: integer(0, 0).describe('Proxies in front: 2 behind the Google Cloud load balancer (it appends client and load balancer), 1 on Cloud Run alone or behind the compose gateway. The client IP is the N-th X-Forwarded-For entry from the right.'),
  DB_POOL_SIZE: integer(10, 1).describe('PostgreSQL connections per instance.'),
  VERIFY_WORKERS: integer(0, 0).describe(
    'Worker threads checking NIP-98 signatures; 0: on the event loop, cheaper on one or two cores (a thread more waits for a core, and each check costs a message each way). 1 on a machine with cores to spare.',
  ),
  HINTS_PUSH_TOKEN: z.string().optional().describe('Shared secret of POST /internal/pubsub/push (Bearer, or ?token= in the push URL): the local transport of the relay. At least 16 characters.'),
  HINTS_PUSH_SERVICE_ACCOUNT: z.string().optional().describe('Email of the Pub/Sub push service account. Needs HINTS_PUSH_AUDIENCE (the push OIDC token is then verified in the app), or HINTS_PUSH_IAM_VERIFIED=true.'),
  HINTS_PUSH_AUDIENCE: z.string().optional().describe("Audience of the push OIDC token; set: the token's signature (Google's keys), audience, issuer and expiry are verified in the app (for a public endpoint). Needs HINTS_PUSH_SERVICE_ACCOUNT."),
  HINTS_PUSH_IAM_VERIFIED: z
    .enum(['true', 'false'])
    .default('false')
    .describe('true: Cloud Run IAM verifies the push OIDC token before the app (the service allows no unauthenticated invocations), so without HINTS_PUSH_AUDIENCE the app only checks its email; anyone could forge such a token otherwise.'),
  HINTS_SUBSCRIPTION: z
    .string()
    .optional()
    .describe('Pub/Sub subscriptions to pull hints from, comma-separated (names, or projects/P/subscriptions/S), e.g. one per hint topic; unset: no pull consumer (push only).'),
  HINTS_MAX_MESSAGES: integer(100, 1).describe('Hints the pull consumer handles at once (flow control).'),
  GOOGLE_CLOUD_PROJECT: z.string().optional().describe("Project of a short HINTS_SUBSCRIPTION name (unset: the client library's detection), and the one log lines name in their trace field (projects/ID/traces/TRACE)."),
  PUBSUB_EMULATOR_HOST: z.string().optional().describe('host:port of a Pub/Sub emulator for the pull consumer (no TLS, no credentials).'),
  LOG_LEVEL: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal']).default('info').describe('Lowest log level written.'),
})

/** The validated configuration of the mailbox API. */
export interface MailboxConfig {
  port: number
  host: string
  databaseUrl: string | undefined
  dataDir: string
  embeddedPgPort: number
  publicUrl: string
  adminToken: string | undefined
  adminIpAllowlist: string[]
  /** CORS_ORIGINS split at commas: exact origins, `['*']` for any, or empty (no cross-origin access). */
  corsOrigins: string[]
  metricsAuth: string | undefined
  defaultTtlSeconds: number
  maxTtlSeconds: number
  maxArtifactBytes: number
  rateLimitPerIp: number
  rateLimitPerPubkey: number
  janitorIntervalMs: number
  trustedProxies: number
  dbPoolSize: number
  verifyWorkers: number
  logLevel: string
  hintsPushToken: string | undefined
  hintsPushServiceAccount: string | undefined
  hintsPushAudience: string | undefined
  /** HINTS_SUBSCRIPTION split at commas (empty: no pull consumer). */
  hintsSubscriptions: string[]
  hintsMaxMessages: number
  googleCloudProject: string | undefined
  pubsubEmulatorHost: string | undefined
}

/** Problems the schema cannot see: secret lengths, allowlist and origin entries, the public URL, TTL default vs max, hint settings. */
const valueProblems = (env: Record<string, string | undefined>): string[] => {
  const problems: string[] = []
  for (const entry of commaList(env.ADMIN_IP_ALLOWLIST))
    if (!ipOrRange(entry)) problems.push(`ADMIN_IP_ALLOWLIST: "${entry}" is not an IP address or CIDR range`)
  const origins = commaList(env.CORS_ORIGINS)
  if (origins.includes('*') && origins.length > 1) problems.push('CORS_ORIGINS: * allows every origin; give it alone')
  for (const origin of origins.filter(o => o !== '*')) {
    const problem = originProblem(origin)
    if (problem !== undefined) problems.push(`CORS_ORIGINS: ${problem}`)
  }
  if (env.ADMIN_TOKEN !== undefined && env.ADMIN_TOKEN.length < 16) problems.push('ADMIN_TOKEN: must be at least 16 characters')
  if (env.METRICS_AUTH !== undefined && env.METRICS_AUTH.length < 16) problems.push('METRICS_AUTH: must be at least 16 characters')
  if (env.HINTS_PUSH_TOKEN !== undefined && env.HINTS_PUSH_TOKEN.length < 16) problems.push('HINTS_PUSH_TOKEN: must be at least 16 characters')
  if (env.HINTS_PUSH_SERVICE_ACCOUNT !== undefined && !EMAIL.test(env.HINTS_PUSH_SERVICE_ACCOUNT))
    problems.push('HINTS_PUSH_SERVICE_ACCOUNT: expected a service account email')
  if (env.HINTS_PUSH_AUDIENCE !== undefined && env.HINTS_PUSH_SERVICE_ACCOUNT === undefined)
    problems.push('HINTS_PUSH_AUDIENCE: needs HINTS_PUSH_SERVICE_ACCOUNT (the email the token must carry)')
  // Verified by default: reading the token without checking its signature is an explicit choice.
  if (env.HINTS_PUSH_SERVICE_ACCOUNT !== undefined && env.HINTS_PUSH_AUDIENCE === undefined && env.HINTS_PUSH_IAM_VERIFIED !== 'true')
    problems.push(
      'HINTS_PUSH_SERVICE_ACCOUNT: needs HINTS_PUSH_AUDIENCE (the push token is then verified in the app), or HINTS_PUSH_IAM_VERIFIED=true when Cloud Run IAM verifies it (no unauthenticated invocations)',
    )
  for (const name of commaList(env.HINTS_SUBSCRIPTION))
    if (!SUBSCRIPTION.test(name)) problems.push(`HINTS_SUBSCRIPTION: "${name}" is not a subscription name or projects/PROJECT/subscriptions/NAME`)
  const ttl = (name: 'MAILBOX_DEFAULT_TTL' | 'MAILBOX_MAX_TTL') => mailboxEnvSchema.shape[name].safeParse(env[name]).data
  const [defaultTtl, maxTtl] = [ttl('MAILBOX_DEFAULT_TTL'), ttl('MAILBOX_MAX_TTL')]
  if (defaultTtl !== undefined && maxTtl !== undefined && defaultTtl > maxTtl) problems.push('MAILBOX_DEFAULT_TTL: must not exceed MAILBOX_MAX_TTL')
  if (env.PUBLIC_URL !== undefined && !/^https?:\/\/[^/?#]+(\/[^?#]*)?$/.test(env.PUBLIC_URL.replace(/\/+$/, '')))
    problems.push('PUBLIC_URL: expected an http(s) base URL without query or fragment')
  return problems
}

/** Reads the environment once; every problem is listed. */
export const loadMailboxConfig = (env: Record<string, string | undefined>): { ok: true; value: MailboxConfig } | { ok: false; errors: string[] } => {
  const known = Object.fromEntries(Object.keys(mailboxEnvSchema.shape).map(k => [k, env[k] === '' ? undefined : env[k]]))
  const parsed = mailboxEnvSchema.safeParse(known)
  // The checks beyond the schema run even when a value is malformed, so one run lists every problem.
  const errors = [...(parsed.success ? [] : parsed.error.issues.map(i => `${i.path.join('.')}: ${i.message}`)), ...valueProblems(known)]
  if (!parsed.success || errors.length > 0) return { ok: false, errors }
  const e = parsed.data
  const publicUrl = (e.PUBLIC_URL ?? `http://127.0.0.1:${e.PORT}`).replace(/\/+$/, '')
  return {
    ok: true,
    value: Object.freeze({
      port: e.PORT,
      host: e.HOST,
      databaseUrl: e.DATABASE_URL,
      dataDir: e.MAILBOX_DATA_DIR,
      embeddedPgPort: e.MAILBOX_EMBEDDED_PG_PORT,
      publicUrl,
      adminToken: e.ADMIN_TOKEN,
      adminIpAllowlist: commaList(e.ADMIN_IP_ALLOWLIST),
      corsOrigins: commaList(e.CORS_ORIGINS),
      metricsAuth: e.METRICS_AUTH,
      defaultTtlSeconds: Math.round(e.MAILBOX_DEFAULT_TTL / 1000),
      maxTtlSeconds: Math.round(e.MAILBOX_MAX_TTL / 1000),
      maxArtifactBytes: e.MAILBOX_MAX_ARTIFACT_BYTES,
      rateLimitPerIp: e.MAILBOX_RATE_LIMIT_PER_IP,
      rateLimitPerPubkey: e.MAILBOX_RATE_LIMIT_PER_PUBKEY,
      janitorIntervalMs: e.MAILBOX_JANITOR_INTERVAL,
      trustedProxies: e.TRUSTED_PROXIES,
      dbPoolSize: e.DB_POOL_SIZE,
      verifyWorkers: e.VERIFY_WORKERS,
      logLevel: e.LOG_LEVEL,
      hintsPushToken: e.HINTS_PUSH_TOKEN,
      hintsPushServiceAccount: e.HINTS_PUSH_SERVICE_ACCOUNT,
      hintsPushAudience: e.HINTS_PUSH_AUDIENCE,
      hintsSubscriptions: commaList(e.HINTS_SUBSCRIPTION),
      hintsMaxMessages: e.HINTS_MAX_MESSAGES,
      googleCloudProject: e.GOOGLE_CLOUD_PROJECT,
      pubsubEmulatorHost: e.PUBSUB_EMULATOR_HOST,
    }),
  }
}

/** The name of the README section generated from this schema (`npm run docs`). */
export const ENV_SECTION = 'mailbox-env-reference'

/** The environment reference as a Markdown table (README). */
export const envReference = (): string => {
  type Def = { defaultValue?: unknown; in?: { _zod: { def: Def } } }
  const defaultOf = (def: Def): unknown => def.defaultValue ?? (def.in ? defaultOf(def.in._zod.def) : undefined)
  const rows = Object.entries(mailboxEnvSchema.shape).map(([name, schema]) => {
    const def = defaultOf((schema as unknown as { _zod: { def: Def } })._zod.def)
    return `| \`${name}\` | ${def === undefined ? '' : `\`${String(def)}\``} | ${schema.description ?? ''} |`
  })
  return ['| variable | default | meaning |', '| --- | --- | --- |', ...rows].join('\n') + '\n'
}

/** The entries of a comma-separated variable (ADMIN_IP_ALLOWLIST, CORS_ORIGINS, HINTS_SUBSCRIPTION), trimmed, empty entries ignored. */
function commaList(value: string | undefined): string[] {
  return (value ?? '')
    .split(',')
    .map(entry => entry.trim())
    .filter(entry => entry !== '')
}
