import { duration, loadConfig } from '@msr/config'
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
    expiration_sweep_interval: duration('1m', 'How often NIP-40 expired events are deleted from the store.'),
    query_workers: int(0, 0, 'Worker threads answering REQ backfills and COUNTs from the store (0: one per CPU core).'),
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
    ping_interval: duration('30s', 'WebSocket ping interval; a client that misses a pong is dropped.'),
    permessage_deflate: z.boolean().default(false).describe('Offer permessage-deflate compression (costs about 6x CPU per frame).'),
  })
  .prefault({})

const limitation = z
  .strictObject({
    max_message_length: int(1024, 1048576, 'Largest client message in bytes; larger ones get NOTICE/OK "invalid:".'),
    max_subscriptions: int(1, 50, 'Open subscriptions per connection; one more gets CLOSED "blocked:".'),
    max_filters: int(1, 20, 'Filters per REQ or COUNT; more gets CLOSED "invalid:".'),
    max_limit: int(1, 1000, 'Largest `limit` served per filter; larger limits are clamped to it.'),
    default_limit: int(1, 500, 'Events served per filter when the filter has no `limit` (clamped to max_limit).'),
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

const verification = z
  .strictObject({
    workers: int(0, 0, 'Signature-verification worker threads (0: one per CPU core).'),
    backend: z
      .enum(['auto', 'native', 'wasm'])
      .default('auto')
      .describe('Verifier: native libsecp256k1 (bcrypto), WebAssembly (nostr-wasm), or auto (native, else wasm).'),
  })
  .prefault({})

const log = z
  .strictObject({
    level: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal']).default('info').describe('Lowest log level written.'),
  })
  .prefault({})

/** Every relay configuration key, with its description and default (README's reference is generated from it). */
export const relayConfigSchema = z.strictObject({
  information,
  data,
  network,
  limitation,
  count,
  search,
  verification,
  log,
})

/** The validated, frozen relay configuration. */
export type RelayConfig = z.output<typeof relayConfigSchema>

/** The default configuration file, relative to the working directory. */
export const DEFAULT_CONFIG_FILE = 'config/relay.toml'

/**
 * Loads the configuration once: file (optional when it is the default path), then `RELAY_<SECTION>__<KEY>`
 * variables, then `PORT`. Returns every problem at once.
 */
export const loadRelayConfig = (file: string | undefined, env: Record<string, string | undefined>) => {
  const port = env.PORT
  return loadConfig({
    schema: relayConfigSchema,
    file: file ?? DEFAULT_CONFIG_FILE,
    fileRequired: file !== undefined,
    env,
    envPrefix: 'RELAY_',
    overrides: port === undefined || port === '' ? {} : { 'network.port': /^\d+$/.test(port) ? Number(port) : port },
  })
}
