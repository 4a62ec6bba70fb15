// A relay-like schema for the tests (nested sections, a duration, an array of tables); not part of the API.
import * as z from 'zod'
import { duration } from './duration.js'
import { section } from './section.js'

/** The sample schema the config tests load and document. */
export const sampleSchema = z.strictObject({
  log_level: z.enum(['debug', 'info', 'warn', 'error']).default('info').describe('Minimum level to log'),
  network: section({
    host: z.string().default('0.0.0.0').describe('Interface to bind'),
    port: z.int().min(1).max(65535).default(8080).describe('TCP port to listen on'),
    idle_timeout: duration('30s', 'Close idle connections after this long'),
  }, 'The listening socket'),
  auth: section({
    req: section({
      ip_whitelist: z.array(z.string()).default([]).describe('Addresses allowed to subscribe'),
    }),
  }),
  limitation: section({
    max_limit: z.int().positive().default(500).describe('Largest REQ limit honoured'),
    relay_name: z.string().optional().describe('Name shown in NIP-11'),
  }),
  rate_limiter: section({
    event: z.array(z.strictObject({
      per_second: z.number().positive().describe('Events allowed per second'),
      kinds: z.array(z.int()).optional().describe('Kinds this limit applies to'),
    })).default([]).describe('Per-connection event rate limits'),
  }),
})
