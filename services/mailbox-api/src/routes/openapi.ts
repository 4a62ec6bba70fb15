import { z } from 'zod'
import type { ErrorCode } from '../errors.js'
import { ERROR_CODES, errorBody, HEALTH_TEXT, metricsText, NAMED_RESPONSES, openApiShape } from './responses.js'
import { dmHintsQuery, groupBody, groupId, groupListQuery, itemId, keyPackageBody, pickupQuery, welcomeBody } from './schemas.js'

const TARGET = { unrepresentable: 'any', target: 'openapi-3.0' } as const

/** A request schema as the client sends it (`input`), or a response schema as the server answers it (`output`). */
const schema = (s: z.ZodType, io: 'input' | 'output' = 'input') => z.toJSONSchema(s, { ...TARGET, io }) as Record<string, unknown>

/** `components.schemas`: the named response schemas, referring to each other by `$ref`. */
const componentSchemas = (): Record<string, object> => {
  const registry = z.registry<{ id: string }>()
  for (const [id, s] of Object.entries(NAMED_RESPONSES)) registry.add(s, { id })
  const { schemas } = z.toJSONSchema(registry, { ...TARGET, io: 'output', uri: id => `#/components/schemas/${id}` }) as {
    schemas: Record<string, Record<string, unknown>>
  }
  // `$id` is JSON Schema's, not OpenAPI 3.0's: the name under components.schemas identifies it.
  return Object.fromEntries(Object.entries(schemas).map(([id, { $id: _id, ...rest }]) => [id, rest]))
}

const ref = (name: keyof typeof NAMED_RESPONSES) => ({ $ref: `#/components/schemas/${name}` })

/** Query parameters of a strict query schema, as OpenAPI parameters. */
const queryParameters = (s: z.ZodObject) => {
  const { properties, required = [] } = schema(s) as { properties: Record<string, object>; required?: string[] }
  return Object.entries(properties).map(([name, prop]) => ({ name, in: 'query', required: required.includes(name), schema: prop }))
}

const pathId = (s: z.ZodType, description: string) => [{ name: 'id', in: 'path', required: true, description, schema: schema(s) }]

const json = (s: z.ZodType) => ({ required: true, content: { 'application/json': { schema: schema(s) } } })
const answer = (description: string, name: keyof typeof NAMED_RESPONSES) => ({ description, content: { 'application/json': { schema: ref(name) } } })
const text = (description: string, s: z.ZodType) => ({ description, content: { 'text/plain': { schema: schema(s, 'output') } } })

const retryAfter = { 'Retry-After': { description: 'Seconds to wait before trying again.', schema: { type: 'integer', minimum: 1 } } }

/** An error answer whose `code` is one of `codes` (named in the description too). */
const error = (why: string, codes: readonly ErrorCode[], headers?: object) => ({
  description: `${why} (${codes.join(', ')})`,
  ...(headers && { headers }),
  content: {
    'application/json': {
      schema: codes.length === ERROR_CODES.length ? ref('Error') : schema(errorBody(codes), 'output'),
      example: { error: { code: codes[0], message: why } },
    },
  },
})

const NIP98_CODES: readonly ErrorCode[] = ['AUTH_REQUIRED', 'AUTH_INVALID', 'AUTH_EXPIRED', 'AUTH_URL_MISMATCH', 'AUTH_METHOD_MISMATCH', 'AUTH_PAYLOAD_MISMATCH', 'AUTH_BAD_SIGNATURE', 'AUTH_REPLAYED']

/** What any /api/v1 route may answer besides its own errors. */
const anyRoute = {
  '413': error('A body over the limit (Content-Length over twice MAILBOX_MAX_ARTIFACT_BYTES as base64 plus 64 KiB; on deposits, an artifact over MAILBOX_MAX_ARTIFACT_BYTES decoded)', ['PAYLOAD_TOO_LARGE']),
  '415': error('A body that is not application/json, or in a charset or Content-Encoding the API does not decode', ['UNSUPPORTED_MEDIA_TYPE']),
  '429': error('Rate limited; see Retry-After', ['RATE_LIMITED'], retryAfter),
  '500': error('A database failure on an open connection (a commit may have happened), or a bug', ['INTERNAL']),
  '503': error('Unavailable: the database cannot be reached or a NIP-98 signature could not be checked; nothing was stored, see Retry-After', ['UNAVAILABLE'], retryAfter),
}
const userErrors = { '401': error('NIP-98 authentication failed', NIP98_CODES), ...anyRoute }
const adminErrors = { '401': error('Not the admin token, or not from an address in ADMIN_IP_ALLOWLIST', ['ADMIN_AUTH_REQUIRED']), ...anyRoute }
const invalid = (what: string) => ({ '400': error(what, ['VALIDATION_FAILED']) })

const nip98 = [{ nip98: [] }]
const admin = [{ admin: [] }]

const mailboxPaths = (path: string, name: 'KeyPackage' | 'Welcome', body: z.ZodType) => ({
  [path]: {
    post: {
      operationId: `deposit${name}`,
      tags: ['mailboxes'],
      summary: `Deposit a ${name} for a recipient (by the sender, NIP-98)`,
      security: nip98,
      requestBody: json(body),
      responses: {
        '201': answer('Stored (committed)', 'Deposited'),
        '400': error('An invalid body (every problem listed), or ttl_seconds over MAILBOX_MAX_TTL', ['VALIDATION_FAILED', 'TTL_TOO_LONG']),
        '403': error('sender is not the NIP-98 pubkey', ['FORBIDDEN']),
        ...userErrors,
      },
    },
    get: {
      operationId: `list${name}s`,
      tags: ['mailboxes'],
      summary: `Pick up your unexpired ${name}s, oldest first (marks first pickup)`,
      security: nip98,
      parameters: queryParameters(pickupQuery),
      responses: {
        '200': answer('A page', `${name}Page`),
        ...invalid('An invalid query, or a cursor this API did not issue'),
        '403': error('recipient is not the NIP-98 pubkey', ['FORBIDDEN']),
        ...userErrors,
      },
    },
  },
  [`${path}/{id}/ack`]: {
    post: {
      operationId: `ack${name}`,
      tags: ['mailboxes'],
      summary: `Acknowledge (delete) one of your ${name}s; a second ack is 404 MAILBOX_NOT_FOUND`,
      security: nip98,
      parameters: pathId(itemId, 'The id the deposit answered.'),
      responses: {
        '200': answer('Deleted', 'Acknowledged'),
        ...invalid('The id is not a UUID, or a body was sent'),
        '404': error('No such item in your mailbox: already acknowledged, expired, or not yours', ['MAILBOX_NOT_FOUND']),
        ...userErrors,
      },
    },
  },
})

/** The wrapped Pub/Sub push envelope (Pub/Sub may add fields; all are accepted). */
const pushEnvelope = {
  type: 'object',
  required: ['message'],
  properties: {
    message: {
      type: 'object',
      required: ['data'],
      properties: {
        data: { type: 'string', format: 'byte', description: 'base64 of the hint JSON {v:1,id,kind,pubkey,created_at,group?,epoch?,recipients?}' },
        attributes: { type: 'object', additionalProperties: { type: 'string' } },
        messageId: { type: 'string' },
        publishTime: { type: 'string', format: 'date-time' },
      },
    },
    subscription: { type: 'string' },
  },
}

/** The hint push route, outside /api/v1 (hence its own server URL). */
const pushPath = (root: object[]) => ({
  servers: root,
  post: {
    operationId: 'pushHint',
    tags: ['hints in'],
    summary: "Receive a routing hint from Pub/Sub push or the relay's local transport (applied at most once per event id)",
    security: [{ pushToken: [] }, { pushTokenQuery: [] }, { pushOidc: [] }],
    requestBody: { required: true, content: { 'application/json': { schema: pushEnvelope } } },
    responses: {
      '204': { description: 'Acknowledged: the hint is committed, was already applied, or is malformed (counted and logged, never retried)' },
      '401': error('Push authentication failed or is not configured', ['PUSH_AUTH_REQUIRED', 'PUSH_AUTH_INVALID']),
      '413': error('A body over 1 MiB', ['PAYLOAD_TOO_LARGE']),
      '415': error('A Content-Encoding the API does not decode', ['UNSUPPORTED_MEDIA_TYPE']),
      '429': error('Too many refused pushes from this address; see Retry-After', ['RATE_LIMITED'], retryAfter),
      '500': error('Database failure: not acknowledged, Pub/Sub redelivers', ['INTERNAL']),
      '503': error('The OIDC signing keys could not be fetched, or the database cannot be reached: not acknowledged, Pub/Sub redelivers', ['UNAVAILABLE']),
    },
  },
})

/** Health, readiness and metrics, at the root (hence their own server URL). */
const operationsPaths = (root: object[]) => ({
  '/healthz': {
    servers: root,
    get: { operationId: 'healthz', tags: ['operations'], summary: 'Liveness: the process answers', responses: { '200': text('Alive', HEALTH_TEXT.alive) } },
  },
  '/readyz': {
    servers: root,
    get: {
      operationId: 'readyz',
      tags: ['operations'],
      summary: 'Readiness: the database is reachable and its schema is current',
      responses: { '200': text('Ready', HEALTH_TEXT.ready), '503': text('Not ready: the database cannot be reached or is not migrated yet', HEALTH_TEXT.notReady) },
    },
  },
  '/metrics': {
    servers: root,
    get: {
      operationId: 'metrics',
      tags: ['operations'],
      summary: 'Prometheus metrics (text exposition format 0.0.4), with the METRICS_AUTH key',
      security: [{ metricsAuth: [] }, { metricsAuthQuery: [] }],
      responses: {
        '200': text('The metrics', metricsText),
        '404': error('No METRICS_AUTH configured, or a missing or wrong key: the route does not reveal itself', ['NOT_FOUND']),
      },
    },
  },
})

/**
 * The OpenAPI 3.0 document of /api/v1, the hint push route, health and metrics: request schemas generated
 * from the validators themselves, response schemas from routes/responses.ts.
 */
export const openApiDocument = (opts: { publicUrl: string; maxArtifactBytes: number; maxTtlSeconds: number }) => {
  const root = [{ url: opts.publicUrl }]
  return {
    openapi: '3.0.3',
    info: {
      title: 'mls-secure-relay mailbox API',
      version: '1.0.0',
      description:
        'MLS KeyPackage and Welcome mailboxes, the non-authoritative group registry and DM hints. ' +
        'Authenticate with NIP-98: Authorization: Nostr <base64 kind-27235 event> whose u tag is the absolute URL ' +
        '(server URL + path + query), method tag the method, payload tag the sha256 of the body (required with a body), ' +
        'created_at within 60 s; each event is accepted once. Errors are {"error":{"code","message"}}; times are unix seconds. ' +
        'Any route may also answer 404 NOT_FOUND (no such route), and requests HTTP cannot parse get 400 VALIDATION_FAILED, ' +
        '408 REQUEST_TIMEOUT or 431 HEADERS_TOO_LARGE.',
    },
    servers: [{ url: `${opts.publicUrl}/api/v1` }],
    tags: [
      { name: 'mailboxes', description: 'KeyPackages and Welcomes: deposit for someone, pick up and acknowledge your own' },
      { name: 'groups', description: 'The group registry (non-authoritative: MLS is the authority)' },
      { name: 'dm hints', description: 'Kind-446 events waiting on the relay for you' },
      { name: 'hints in', description: "The relay's routing hints, by Pub/Sub push or its local transport" },
      { name: 'operations', description: 'Health, readiness, metrics and this document' },
    ],
    components: {
      securitySchemes: {
        nip98: { type: 'apiKey', in: 'header', name: 'Authorization', description: 'Nostr <base64 NIP-98 event>' },
        admin: { type: 'http', scheme: 'bearer', description: 'ADMIN_TOKEN, from an address in ADMIN_IP_ALLOWLIST' },
        pushToken: { type: 'http', scheme: 'bearer', description: "HINTS_PUSH_TOKEN (the relay's local transport)" },
        pushTokenQuery: { type: 'apiKey', in: 'query', name: 'token', description: 'HINTS_PUSH_TOKEN in the push endpoint URL' },
        pushOidc: {
          type: 'http',
          scheme: 'bearer',
          bearerFormat: 'JWT',
          description: 'Google-signed OIDC token of HINTS_PUSH_SERVICE_ACCOUNT (verified in-app when HINTS_PUSH_AUDIENCE is set, else by Cloud Run IAM)',
        },
        metricsAuth: { type: 'http', scheme: 'bearer', description: 'METRICS_AUTH' },
        metricsAuthQuery: { type: 'apiKey', in: 'query', name: 'auth', description: 'METRICS_AUTH in the URL' },
      },
      schemas: componentSchemas(),
    },
    paths: {
      ...mailboxPaths('/keypackages', 'KeyPackage', keyPackageBody(opts.maxArtifactBytes, opts.maxTtlSeconds)),
      ...mailboxPaths('/welcome', 'Welcome', welcomeBody(opts.maxArtifactBytes, opts.maxTtlSeconds)),
      '/groups': {
        get: {
          operationId: 'listGroups',
          tags: ['groups'],
          summary: 'List groups by id (admin)',
          security: admin,
          parameters: queryParameters(groupListQuery),
          responses: { '200': answer('A page', 'GroupPage'), ...invalid('An invalid query'), ...adminErrors },
        },
        post: {
          operationId: 'upsertGroup',
          tags: ['groups'],
          summary: 'Create or update group metadata (admin); fields left out keep their value; epoch, last event and message count come only from relay hints',
          security: admin,
          requestBody: json(groupBody),
          responses: { '200': answer('Upserted: the group as stored', 'GroupAnswer'), ...invalid('An invalid body (every problem listed)'), ...adminErrors },
        },
      },
      '/groups/{id}': {
        get: {
          operationId: 'getGroup',
          tags: ['groups'],
          summary: 'One group (any authenticated caller: knowing the id is the capability)',
          security: nip98,
          parameters: pathId(groupId, 'The group id.'),
          responses: {
            '200': answer('The group', 'GroupAnswer'),
            ...invalid('An invalid id (over 256 characters, or not storable text)'),
            '404': error('No such group', ['GROUP_NOT_FOUND']),
            ...userErrors,
          },
        },
      },
      '/dm-hints': {
        get: {
          operationId: 'listDmHints',
          tags: ['dm hints'],
          summary: 'Ids of kind-446 events waiting on the relay for you, oldest first',
          security: nip98,
          parameters: queryParameters(dmHintsQuery),
          responses: {
            '200': answer('A page', 'DmHintPage'),
            ...invalid('An invalid query, or a cursor this API did not issue'),
            '403': error('recipient is not the NIP-98 pubkey', ['FORBIDDEN']),
            ...userErrors,
          },
        },
      },
      '/openapi.json': {
        get: {
          operationId: 'openApiDocument',
          tags: ['operations'],
          summary: 'This document',
          responses: { '200': { description: 'The OpenAPI 3.0 document', content: { 'application/json': { schema: schema(openApiShape, 'output') } } } },
        },
      },
      '/internal/pubsub/push': pushPath(root),
      ...operationsPaths(root),
    },
  }
}
