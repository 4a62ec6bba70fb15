import { isIP } from 'node:net'
import { duration, loadConfig } from '@msr/config'
import { normalizeRelayUrl, parsePubkey } from '@msr/nostr'
import { z } from 'zod'

const int = (min: number, def: number, description: string) => z.number().int().min(min).default(def).describe(description)
const text = (def: string, description: string) => z.string().default(def).describe(description)

const information = z
  .strictObject({
    name: text('MLS Secure Relay', 'Relay name shown in the NIP-11 document.'),
    description: text('High-security MLS-over-Nostr relay', 'Free-text description in the NIP-11 document.'),
    pubkey: text('', "Operator's pubkey (64-char hex) for the NIP-11 document; empty to omit."),
    contact: text('', 'Operator contact (URI) for the NIP-11 document; empty to omit.'),
    software: text('https://github.com/mls-secure-relay/mls-secure-relay', 'Software URL in the NIP-11 document.'),
    icon: text('', 'Icon URL for the NIP-11 document; empty to omit.'),
  })
  .prefault({})

const data = z
  .strictObject({
    path: text('./data', 'Directory of the LMDB store (created when absent).'),
    db_query_timeout: duration('100ms', 'Longest scan of one REQ (all its filters) or COUNT; past it the subscription ends with CLOSED "error:".'),
    expiration_sweep_interval: duration('1m', 'How often NIP-40 expired events are deleted from the store.', { min: '100ms' }),
    query_workers: int(0, 0, 'Worker threads answering REQ backfills and COUNTs from the store (0: one per CPU core).'),
    query_inline: duration(
      '5ms',
      "Longest scan of a REQ page done on the event loop for a connection querying alone (no query running on a worker, no other connection's REQ in the last 20 ms), which saves the hand-off to a worker and back; a page not done by then is answered by a worker from the start. 0: always a worker.",
    ),
    max_size: int(
      0,
      0,
      'Bytes of LMDB pages the store may use (0: no cap). Once reached, EVENTs are refused OK false "error: the relay\'s storage is full; try again later" (deletions still stored, ephemeral events still relayed, REQs served) until deletions or expiry bring it under; reloadable. Cap below the memory of an instance whose store is in memory (Cloud Run).',
    ),
    write_map: z
      .boolean()
      .default(false)
      .describe(
        "Write the store through LMDB's writable memory map (MDB_WRITEMAP) rather than with a write call per page: faster ingest for a store in memory. Only on tmpfs (/dev/shm, a Cloud Run in-memory volume): the relay does not start with it on any other file system. A page written through the map into a full tmpfs ends the process (SIGBUS) where a write call fails, so while on, the store is also capped at 90 % of the tmpfs (max_size, when lower, still applies), and EVENTs are refused the same way while the tmpfs has less than a tenth of its size (at most 64 MiB) free, whatever filled it. Every command on the store (serve, import, export, fingerprint) opens it the same way.",
      ),
  })
  .prefault({})

const network = z
  .strictObject({
    host: text('127.0.0.1', 'Listen address; use 0.0.0.0 in a container (Cloud Run).'),
    port: z.number().int().min(0).max(65535).default(8080).describe('Listen port; the PORT environment variable wins.'),
    max_outbound_buffer: int(
      65536,
      8 * 1024 * 1024,
      'Unsent bytes to one client above which it is behind: its requests wait, and live events may drop it (see slow_client_grace).',
    ),
    slow_client_grace: duration(
      '5s',
      'How long a client may stay above max_outbound_buffer while live events arrive before it is disconnected (1008); 4x the buffer drops it at once.',
    ),
    ping_interval: duration('30s', 'WebSocket ping interval; a client that misses a pong is dropped.', { min: '100ms' }),
    permessage_deflate: z.boolean().default(false).describe('Offer permessage-deflate compression (costs about 6x CPU per frame).'),
    public_url: text(
      '',
      'The URL clients connect to (e.g. wss://relay.example.com); NIP-42 relay tags must name it. Required when auth is enabled.',
    ),
    trusted_proxies: int(
      0,
      0,
      'Proxies in front of the relay: 2 behind the Google Cloud load balancer (it appends client and load balancer), 1 on Cloud Run alone or behind the compose gateway. The client IP is the N-th X-Forwarded-For entry from the right; 0: the TCP peer.',
    ),
  })
  .prefault({})

const kindList = (def: number[], description: string) => z.array(z.number().int().min(0).max(65535)).default(def).describe(description)

const limitation = z
  .strictObject({
    max_message_length: int(1024, 1048576, 'Largest client message in bytes; larger ones get NOTICE/OK "invalid:".'),
    max_subscriptions: int(1, 50, 'Open subscriptions per connection; one more gets CLOSED "blocked:".'),
    max_filters: int(1, 20, 'Filters per REQ or COUNT; more gets CLOSED "invalid:".'),
    max_filter_values: int(
      1,
      10000,
      'Filter values (ids, authors, kinds and tag values, counted over every filter) the open subscriptions of one connection may hold together; a REQ past it gets CLOSED "blocked:".',
    ),
    max_filter_values_per_ip: int(
      1,
      40000,
      'The same budget for all connections from one address together (each held value is kept in memory and tried against every live event).',
    ),
    max_limit: int(1, 1000, 'Largest `limit` served per filter; larger limits are clamped to it.'),
    default_limit: int(1, 500, 'Events served per filter when the filter has no `limit` (clamped to max_limit).'),
    history_kinds: kindList(
      [445, 1059],
      'A filter without `limit` whose kinds are all among these is answered with every stored match (newest first, in pages of max_limit, up to max_history), not default_limit: MLS clients read group history and gift wraps that way and lose what is left out.',
    ),
    max_history: int(
      1,
      100000,
      'Most events one history filter (see history_kinds) is answered with; past it, and when a page runs out of time, the REQ ends with CLOSED saying so instead of EOSE.',
    ),
    single_recipient_kinds: kindList([1059], 'Kinds refused ("invalid:") unless they carry exactly one p tag (NIP-59 gift wraps name one recipient).'),
    refused_kinds: kindList([], 'Kinds refused at the door ("invalid:"), e.g. 444 (an MLS Welcome, which Marmot sends only inside a gift wrap).'),
    max_subid_length: int(1, 100, 'Longest subscription id; longer ones get CLOSED "invalid:".'),
    min_prefix: int(0, 10, 'Accepted for rnostr compatibility; NIP-01 requires full 64-char ids, so prefixes are refused.'),
    max_event_tags: int(1, 5000, 'Most tags an event may carry; more gets OK false "invalid:".'),
    max_event_time_older_than_now: int(0, 94608000, 'Oldest accepted created_at, in seconds before now (0: no limit).'),
    max_event_time_newer_than_now: int(0, 900, 'Newest accepted created_at, in seconds after now (0: no limit).'),
  })
  .prefault({})

const count = z
  .strictObject({ enabled: z.boolean().default(true).describe('Answer NIP-45 COUNT requests (advertised in NIP-11 when on).') })
  .prefault({})

const search = z
  .strictObject({
    enabled: z.literal(false).default(false).describe('NIP-50 search is not supported; must stay false.'),
  })
  .prefault({})

/** An IP address or CIDR range, IPv4 or IPv6. */
const ipOrRange = z.string().refine(isIpOrRange, 'expected an IP address or CIDR range such as "10.0.0.0/8" or "2001:db8::/32"')

/** A pubkey as 64-char hex or npub, stored as lowercase hex. */
const pubkey = z.string().transform((value, ctx) => {
  const hex = parsePubkey(value)
  if (hex === undefined) ctx.addIssue({ code: 'custom', message: 'expected a pubkey as 64 hex characters or npub1…' })
  return hex ?? ''
})

const ipLists = {
  ip_whitelist: z.array(ipOrRange).default([]).describe('Only these addresses/ranges may do this (empty: any).'),
  ip_blacklist: z.array(ipOrRange).default([]).describe('These addresses/ranges may not do this.'),
  pubkey_whitelist: z.array(pubkey).default([]).describe('Only connections authenticated (NIP-42) as one of these may do this (empty: any).'),
  pubkey_blacklist: z.array(pubkey).default([]).describe('Connections authenticated as one of these may not do this.'),
}

const authReq = z.strictObject(ipLists).prefault({}).describe('Who may REQ and COUNT.')

const authEvent = z
  .strictObject({
    ...ipLists,
    event_pubkey_whitelist: z.array(pubkey).default([]).describe('Only events by these authors are accepted (empty: any).'),
    event_pubkey_blacklist: z.array(pubkey).default([]).describe('Events by these authors are refused.'),
  })
  .prefault({})
  .describe('Who may publish (EVENT).')


const auth = z
  .strictObject({
    enabled: z.boolean().default(false).describe('NIP-42: send a challenge on connect and accept AUTH. Needs network.public_url.'),
    required: z.boolean().default(false).describe('Every REQ, COUNT and EVENT needs an authenticated connection (NIP-11 auth_required).'),
    private_kinds: kindList(
      [446, 1059, 444],
      'Kinds served (by REQ and live) only to a connection authenticated as the author or a p-tagged recipient.',
    ),
    auth_required_kinds: kindList([445], 'Kinds accepted only from an authenticated connection (MLS messages are signed by throwaway keys).'),
    req: authReq,
    event: authEvent,
  })
  .prefault({})

/** One kind as a number, or an inclusive range `[first, last]`. */
const kindOrRange = z.union([
  z.number().int().min(0).max(65535),
  z.tuple([z.number().int().min(0).max(65535), z.number().int().min(0).max(65535)]),
])

const rateRule = z.strictObject({
  name: z.string().min(1).describe('Rule name, used in metrics (rate_limited_total{rule}).'),
  description: z.string().default('').describe('Shown to clients: OK false "rate-limited: <description>".'),
  period: duration('1m', 'The window the limit counts over.'),
  limit: z.number().int().min(1).describe('Events allowed per period, per client IP and per authenticated pubkey.'),
  kinds: z.array(kindOrRange).default([]).describe('Kinds counted, numbers or [first, last] ranges (empty: every kind).'),
  per_tag: z
    .string()
    .regex(/^[a-zA-Z]$/, 'expected a single-letter tag name, e.g. "h"')
    .optional()
    .describe('Count per value of this tag instead of per client (e.g. "h": one budget per MLS group, whoever sends): every value an event names is charged, and an event naming more than 4 distinct values is refused "blocked:"; unset: per client IP and per authenticated pubkey.'),
  ip_whitelist: z.array(ipOrRange).default([]).describe('Addresses/ranges this rule does not apply to.'),
})

const rateLimiter = z
  .strictObject({
    enabled: z.boolean().default(true).describe('Apply the limits of this section.'),
    max_connections_per_ip: int(0, 100, 'Open WebSocket connections per client IP; more are refused with HTTP 429 (0: no limit).'),
    req_per_minute: int(0, 600, 'REQ and COUNT messages per connection per minute; more get CLOSED "rate-limited:" (0: no limit).'),
    event: z.array(rateRule).default([]).describe('Event rate rules ([[rate_limiter.event]]).'),
  })
  .prefault({})

const metrics = z
  .strictObject({
    enabled: z.boolean().default(false).describe('Serve Prometheus metrics at GET /metrics (only with the key).'),
    auth: z.string().default('').describe('The metrics key: `Authorization: Bearer <key>` or `?auth=<key>`; at least 16 characters.'),
  })
  .prefault({})

const admin = z
  .strictObject({
    key: text('', 'Key of the admin endpoints (GET /admin/fingerprint), sent as `Authorization: Bearer <key>`; at least 16 characters (secret; set it by environment). Empty: /admin/* is a 404.'),
  })
  .prefault({})

const verification = z
  .strictObject({
    workers: int(0, 0, 'Signature-verification worker threads (0: one fewer than the CPU cores, at least one; the event loop and the writer thread keep a core).'),
    backend: z
      .enum(['auto', 'native', 'wasm'])
      .default('auto')
      .describe('Verifier: native libsecp256k1 (bcrypto), WebAssembly (nostr-wasm), or auto (native, else wasm).'),
  })
  .prefault({})

const hints = z
  .strictObject({
    transport: z
      .enum(['none', 'local', 'pubsub'])
      .default('none')
      .describe('Where routing hints of accepted 445/446 events go: nowhere, POSTed to the mailbox API (local), or Google Cloud Pub/Sub.'),
    push_url: text('', 'local: the mailbox API push endpoint, e.g. http://127.0.0.1:8081/internal/pubsub/push.'),
    push_token: text('', "local: the mailbox API's HINTS_PUSH_TOKEN, sent as a Bearer token (secret; set it by environment)."),
    project_id: text('', 'pubsub: the Google Cloud project (empty: detected by the client library, e.g. GOOGLE_CLOUD_PROJECT).'),
    group_topic: text('mls-group-hints', 'pubsub: topic of kind-445 hints (ordering key: the group).'),
    dm_topic: text('noise-dm-hints', 'pubsub: topic of kind-446 hints.'),
    batch_size: int(1, 100, 'Outbox entries published per drain round.'),
    max_backoff: duration('30s', "Longest wait between publish retries while the bus is failing (the wait doubles from 250ms); for Pub/Sub, also the longest wait between the client's attempts to reconnect."),
    publish_timeout: duration('10s', 'A publish not confirmed within this is treated as failed and retried (for Pub/Sub, also the client library\'s total timeout, retries included).'),
  })
  .prefault({})

const backup = z
  .strictObject({
    target: text('', 'Where snapshots go: "gs://bucket/prefix" (Cloud Storage) or a directory; empty: no snapshots.'),
    interval: duration('15m', 'Time between snapshots (skipped when nothing was stored since the last); the most a crash can lose on an ephemeral disk.', { min: '100ms' }),
    keep: int(1, 24, 'Snapshots kept; older ones are deleted after each new one.'),
    on_shutdown: z.boolean().default(true).describe('Write one more snapshot on SIGTERM (within shutdown_budget).'),
    shutdown_budget: duration('6s', 'Longest the shutdown snapshot may take, and never past 9 s after SIGTERM (Cloud Run kills at 10 s); past it the previous snapshot stands.'),
    restore_on_boot: z.boolean().default(true).describe('When the store is empty at start, restore the newest snapshot before listening (and before /readyz answers).'),
  })
  .prefault({})

/** A Pub/Sub topic or subscription id: starts with a letter, 3–255 of letters, digits and - _ . ~ + %, not "goog…". */
const PUBSUB_NAME = /^(?!goog)[A-Za-z][A-Za-z0-9._~+%-]{2,254}$/
/** A replica id: it becomes an attribute value and the tail of an `auto` subscription name. */
const REPLICA_ID = /^[A-Za-z0-9._~+%-]{1,64}$/

const replication = z
  .strictObject({
    topic: text('', 'The Pub/Sub topic every replica publishes its accepted events to and pulls the others\' from (see Replication); empty: replication off, the relay is one instance and opens no connection for it.'),
    subscription: text('auto', 'This replica\'s subscription to the topic: a name made by infra, or "auto": `<topic>-<replica_id>`, created at start (needs the right to create subscriptions).'),
    replica_id: text('', 'This replica\'s id, sent with each event it publishes (its own come back and are dropped by it); empty: a random one per start.'),
    project_id: text('', 'The Google Cloud project (empty: detected by the client library, e.g. GOOGLE_CLOUD_PROJECT).'),
    ack_timeout: duration('3s', 'How long an EVENT\'s OK waits for the bus to confirm its publication; past it, see on_bus_outage.'),
    on_bus_outage: z
      .enum(['refuse', 'local'])
      .default('refuse')
      .describe('When the bus has not confirmed within ack_timeout: "refuse" answers OK false "error: …" (the event stays committed here and is published when the bus is back; a retry then gets "duplicate"), "local" answers OK true on the local commit alone (the single-instance promise).'),
    verify: z.boolean().default(true).describe('Check the signature of every event received from another replica (the origin checked it already; off saves CPU).'),
    seek_margin: duration('10m', 'A replica started on an empty store seeks its subscription back to this long before the restored snapshot was started (at least the worst replication lag you alert on); the topic\'s retention must exceed `[backup] interval` plus this margin. With no snapshot it seeks to the start of the topic\'s retention.'),
    catch_up_quiet: duration('5s', 'At start, the replica is ready (/readyz 200, snapshots allowed) once no message published before its start has arrived for this long and none is being applied.'),
    shutdown_drain: duration('3s', 'On SIGTERM, how long the replication outbox may keep publishing until empty (within the 9 s shutdown deadline, before the shutdown snapshot); what is left is logged and published at the next start on the same disk.'),
  })
  .prefault({})

const log = z
  .strictObject({
    level: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal']).default('info').describe('Lowest log level written.'),
    project_id: text('', 'Google Cloud project named in log lines written inside a span (`logging.googleapis.com/trace` = projects/ID/traces/TRACE, how Cloud Logging links them to Cloud Trace); empty: `hints.project_id`, and without either the bare trace id.'),
  })
  .prefault({})

/** Every relay configuration key, with its description and default (README's reference is generated from it). */
export const relayConfigSchema = z
  .strictObject({
    information,
    data,
    network,
    limitation,
    count,
    search,
    auth,
    rate_limiter: rateLimiter,
    metrics,
    admin,
    verification,
    hints,
    backup,
    replication,
    log,
  })
  .superRefine((config, ctx) => {
    const issue = (path: string[], message: string) => ctx.addIssue({ code: 'custom', path, message })
    if (config.auth.required && !config.auth.enabled) issue(['auth', 'required'], 'needs auth.enabled = true')
    if (config.auth.enabled && !config.network.public_url)
      issue(['network', 'public_url'], 'required when auth.enabled is true (NIP-42 relay tags are checked against it)')
    if (config.network.public_url && normalizeRelayUrl(config.network.public_url) === undefined)
      issue(['network', 'public_url'], 'expected a ws:// or wss:// URL')
    if (config.hints.transport === 'local' && !/^https?:\/\/[^/]/.test(config.hints.push_url))
      issue(['hints', 'push_url'], 'required when hints.transport is "local": the http(s) URL of the mailbox push endpoint')
    if (config.backup.target.startsWith('gs://') && !/^gs:\/\/[a-z0-9][a-z0-9._-]{1,220}[a-z0-9](\/.*)?$/.test(config.backup.target))
      issue(['backup', 'target'], 'a Cloud Storage target needs a bucket name, as in gs://my-bucket/relay')
    if (config.metrics.enabled && config.metrics.auth.length < 16)
      issue(['metrics', 'auth'], 'required when metrics.enabled is true: a secret of at least 16 characters')
    if (config.admin.key !== '' && config.admin.key.length < 16) issue(['admin', 'key'], 'a secret of at least 16 characters (or empty: no admin endpoints)')
    replicationIssues(config.replication).forEach(([key, message]) => issue(['replication', key], message))
  })

/** What is wrong with a `[replication]` section, key by key. */
const replicationIssues = (r: z.output<typeof replication>): Array<[string, string]> => {
  const issues: Array<[string, string]> = []
  if (r.topic === '') {
    const set = Object.entries({ subscription: r.subscription !== 'auto', replica_id: r.replica_id !== '', project_id: r.project_id !== '' }).filter(([, on]) => on)
    for (const [key] of set) issues.push([key, 'needs replication.topic: without a topic replication is off and this key would be ignored'])
    return issues
  }
  if (!PUBSUB_NAME.test(r.topic)) issues.push(['topic', 'expected a Pub/Sub topic id: 3 to 255 letters, digits and - _ . ~ + %, starting with a letter (not "goog")'])
  if (r.subscription !== 'auto' && !PUBSUB_NAME.test(r.subscription))
    issues.push(['subscription', 'expected "auto" or a Pub/Sub subscription id: 3 to 255 letters, digits and - _ . ~ + %, starting with a letter (not "goog")'])
  if (r.replica_id !== '' && !REPLICA_ID.test(r.replica_id)) issues.push(['replica_id', 'expected 1 to 64 letters, digits and - _ . ~ + %'])
  if (r.subscription === 'auto' && r.topic.length + 1 + Math.max(r.replica_id.length, 12) > 255)
    issues.push(['topic', 'too long for an "auto" subscription: <topic>-<replica_id> must stay within 255 characters'])
  if (r.ack_timeout < 100 || r.ack_timeout > 60_000) issues.push(['ack_timeout', 'expected a duration from 100ms to 60s'])
  return issues
}

/** The validated, frozen relay configuration. */
export type RelayConfig = z.output<typeof relayConfigSchema>

/** The project log lines name in their trace field: `log.project_id`, else `hints.project_id`, else none. */
export const logProjectId = (config: Pick<RelayConfig, 'log' | 'hints'>): string | undefined => config.log.project_id || config.hints.project_id || undefined

/** The name of the README section generated from this schema (`npm run docs`). */
export const REFERENCE_SECTION = 'relay-config-reference'

/** The default configuration file, relative to the working directory. */
export const DEFAULT_CONFIG_FILE = 'config/relay.toml'

/**
 * Loads the configuration once: file (optional when it is the default path), then `RELAY_<SECTION>__<KEY>`
 * variables, then `PORT`. Returns every problem at once.
 */
export const loadRelayConfig = (file: string | undefined, env: Record<string, string | undefined>) => {
  const port = env.PORT === undefined || env.PORT === '' ? undefined : env.PORT
  const portOk = port === undefined || (/^\d{1,5}$/.test(port) && Number(port) <= 65535)
  const loaded = loadConfig({
    schema: relayConfigSchema,
    file: file ?? DEFAULT_CONFIG_FILE,
    fileRequired: file !== undefined,
    env,
    envPrefix: 'RELAY_',
    overrides: port === undefined || !portOk ? {} : { 'network.port': Number(port) },
  })
  if (portOk) return loaded
  const problem = `PORT: expected a port number from 0 to 65535, received ${JSON.stringify(port)}`
  return { ok: false as const, errors: [problem, ...(loaded.ok ? [] : loaded.errors)] }
}

/** True for an IPv4/IPv6 address, or such an address with a /prefix in range. */
function isIpOrRange(value: string): boolean {
  const [address, prefix, extra] = value.split('/')
  const family = isIP(address ?? '')
  if (family === 0 || extra !== undefined) return false
  if (prefix === undefined) return true
  const bits = Number(prefix)
  return /^\d+$/.test(prefix) && bits <= (family === 4 ? 32 : 128)
}
