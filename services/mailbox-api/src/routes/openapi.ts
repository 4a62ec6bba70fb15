import { z } from 'zod'
import { dmHintsQuery, groupBody, groupListQuery, keyPackageBody, pickupQuery, welcomeBody } from './schemas.js'

const schema = (s: z.ZodType) => z.toJSONSchema(s, { io: 'input', unrepresentable: 'any', target: 'openapi-3.0' })

/** Query parameters of a strict query schema, as OpenAPI parameters. */
const queryParameters = (s: z.ZodObject) =>
  Object.entries((schema(s) as { properties: Record<string, object>; required?: string[] }).properties).map(([name, prop]) => ({
    name,
    in: 'query',
    required: (schema(s) as { required?: string[] }).required?.includes(name) ?? false,
    schema: prop,
  }))

const error = (description: string) => ({ description, content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } } })
const ok = (description: string, properties: Record<string, object> = {}) => ({
  description,
  content: { 'application/json': { schema: { type: 'object', properties: { ok: { type: 'boolean', enum: [true] }, ...properties } } } },
})
const json = (s: z.ZodType) => ({ required: true, content: { 'application/json': { schema: schema(s) } } })
const userErrors = {
  '400': error('Invalid input (VALIDATION_FAILED, TTL_TOO_LONG)'),
  '401': error('NIP-98 authentication failed (AUTH_*)'),
  '403': error('Authenticated as someone else (FORBIDDEN)'),
  '415': error('A body that is not application/json (UNSUPPORTED_MEDIA_TYPE)'),
  '429': error('Rate limited (RATE_LIMITED); see Retry-After'),
  '503': error('The signature could not be checked or the database cannot be reached (UNAVAILABLE): nothing was stored; see Retry-After'),
}
const nip98 = [{ nip98: [] }]
const admin = [{ admin: [] }]
const item = { type: 'object', additionalProperties: true }

const mailboxPaths = (path: string, name: string, body: z.ZodType) => ({
  [path]: {
    post: {
      summary: `Deposit a ${name} for a recipient (by the sender, NIP-98)`,
      security: nip98,
      requestBody: json(body),
      responses: { '201': ok('Stored (committed)', { id: { type: 'string', format: 'uuid' } }), '413': error('An artifact is over MAILBOX_MAX_ARTIFACT_BYTES (PAYLOAD_TOO_LARGE)'), ...userErrors },
    },
    get: {
      summary: `Pick up your unexpired ${name}s, oldest first (marks first pickup)`,
      security: nip98,
      parameters: queryParameters(pickupQuery),
      responses: { '200': ok('A page', { items: { type: 'array', items: item }, next_cursor: { type: 'string' } }), ...userErrors },
    },
  },
  [`${path}/{id}/ack`]: {
    post: {
      summary: `Acknowledge (delete) one of your ${name}s; a second ack is 404 MAILBOX_NOT_FOUND`,
      security: nip98,
      parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'string', format: 'uuid' } }],
      responses: { '200': ok('Deleted'), '404': error('No such item in your mailbox (MAILBOX_NOT_FOUND)'), ...userErrors },
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
const pushPath = (publicUrl: string) => ({
  servers: [{ url: publicUrl }],
  post: {
    summary: 'Receive a routing hint from Pub/Sub push or the relay\'s local transport (applied at most once per event id)',
    security: [{ pushToken: [] }, { pushTokenQuery: [] }, { pushOidc: [] }],
    requestBody: { required: true, content: { 'application/json': { schema: pushEnvelope } } },
    responses: {
      '204': { description: 'Acknowledged: the hint is committed, was already applied, or is malformed (counted and logged, never retried)' },
      '401': error('Push authentication failed or is not configured (PUSH_AUTH_REQUIRED, PUSH_AUTH_INVALID)'),
      '413': error('A body over 1 MiB (PAYLOAD_TOO_LARGE)'),
      '429': error('Too many refused pushes from this address (RATE_LIMITED); see Retry-After'),
      '500': error('Database failure (INTERNAL): not acknowledged, Pub/Sub redelivers'),
      '503': error('The OIDC signing keys could not be fetched, or the database cannot be reached (UNAVAILABLE): not acknowledged, Pub/Sub redelivers'),
    },
  },
})

/** The OpenAPI 3.0 document of /api/v1 (and the hint push route), with request schemas generated from the validators themselves. */
export const openApiDocument = (opts: { publicUrl: string; maxArtifactBytes: number; maxTtlSeconds: number }) => ({
  openapi: '3.0.3',
  info: {
    title: 'mls-secure-relay mailbox API',
    version: '1.0.0',
    description:
      'MLS KeyPackage and Welcome mailboxes, the non-authoritative group registry and DM hints. ' +
      'Authenticate with NIP-98: Authorization: Nostr <base64 kind-27235 event> whose u tag is the absolute URL ' +
      '(server URL + path + query), method tag the method, payload tag the sha256 of the body (required with a body), ' +
      'created_at within 60 s; each event is accepted once. Errors are {"error":{"code","message"}}.',
  },
  servers: [{ url: `${opts.publicUrl}/api/v1` }],
  components: {
    securitySchemes: {
      nip98: { type: 'apiKey', in: 'header', name: 'Authorization', description: 'Nostr <base64 NIP-98 event>' },
      admin: { type: 'http', scheme: 'bearer', description: 'ADMIN_TOKEN, from an address in ADMIN_IP_ALLOWLIST' },
      pushToken: { type: 'http', scheme: 'bearer', description: 'HINTS_PUSH_TOKEN (the relay\'s local transport)' },
      pushTokenQuery: { type: 'apiKey', in: 'query', name: 'token', description: 'HINTS_PUSH_TOKEN in the push endpoint URL' },
      pushOidc: {
        type: 'http',
        scheme: 'bearer',
        bearerFormat: 'JWT',
        description: 'Google-signed OIDC token of HINTS_PUSH_SERVICE_ACCOUNT (verified in-app when HINTS_PUSH_AUDIENCE is set, else by Cloud Run IAM)',
      },
    },
    schemas: {
      Error: {
        type: 'object',
        required: ['error'],
        properties: { error: { type: 'object', required: ['code', 'message'], properties: { code: { type: 'string' }, message: { type: 'string' } } } },
      },
    },
  },
  paths: {
    '/internal/pubsub/push': pushPath(opts.publicUrl),
    ...mailboxPaths('/keypackages', 'KeyPackage', keyPackageBody(opts.maxArtifactBytes, opts.maxTtlSeconds)),
    ...mailboxPaths('/welcome', 'Welcome', welcomeBody(opts.maxArtifactBytes, opts.maxTtlSeconds)),
    '/groups': {
      get: {
        summary: 'List groups (admin)',
        security: admin,
        parameters: queryParameters(groupListQuery),
        responses: { '200': ok('A page', { items: { type: 'array', items: item }, next_cursor: { type: 'string' } }), '401': error('ADMIN_AUTH_REQUIRED') },
      },
      post: {
        summary: 'Create or update group metadata (admin); epoch and last event come only from relay hints',
        security: admin,
        requestBody: json(groupBody),
        responses: { '200': ok('Upserted', { group: item }), '400': error('VALIDATION_FAILED'), '401': error('ADMIN_AUTH_REQUIRED') },
      },
    },
    '/groups/{id}': {
      get: {
        summary: 'One group (any authenticated caller: knowing the id is the capability)',
        security: nip98,
        parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'string', maxLength: 256 } }],
        responses: { '200': ok('The group', { group: item }), '404': error('GROUP_NOT_FOUND'), ...userErrors },
      },
    },
    '/dm-hints': {
      get: {
        summary: 'Ids of kind-446 events waiting on the relay for you',
        security: nip98,
        parameters: queryParameters(dmHintsQuery),
        responses: { '200': ok('Hints, oldest first', { items: { type: 'array', items: item }, next_cursor: { type: 'string' } }), ...userErrors },
      },
    },
  },
})
