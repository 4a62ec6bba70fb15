// CORS for /api/v1: pages on the configured origins may call the user routes from a browser. Any other
// origin, and every excluded route, gets no CORS header at all, so the browser refuses. Never credentials:
// a caller authenticates each request with its own NIP-98 header, not with cookies.
import type { RequestHandler } from 'express'

/** The methods the API's routes use. */
const METHODS = 'GET, POST'
/** The request headers a client sends beyond the safelisted ones: the NIP-98 token and the body's type. */
const REQUEST_HEADERS = 'Authorization, Content-Type'
/** The response headers a script may read beyond the safelisted ones: the wait after a 429 or 503. */
const EXPOSED_HEADERS = 'Retry-After'
/** Seconds a browser may keep a preflight's answer (Chromium caps it at two hours). */
const MAX_AGE_SECONDS = '7200'

/** scheme://host[:port] and nothing after. */
const ORIGIN = /^[a-z][a-z0-9+.-]*:\/\/[^/?#@\s]+$/i

/** The origin of `value` as browsers write it (scheme and host lowercase, no default port), if it has one. */
const originOf = (value: string): string | undefined => {
  try {
    const url = new URL(value)
    return url.host === '' ? undefined : `${url.protocol}//${url.host}`
  } catch {
    return undefined
  }
}

/**
 * Why `value` cannot be an entry of CORS_ORIGINS, or undefined when it is an origin exactly as a browser
 * sends it in `Origin` (entries are compared as strings: `https://App.example.com/` would never match).
 */
export const originProblem = (value: string): string | undefined => {
  const origin = originOf(value)
  if (origin === value) return undefined
  const what = ORIGIN.test(value) ? 'is not written as browsers send it' : 'is not an origin (scheme://host[:port], no path)'
  return `"${value}" ${what}: ${origin === undefined ? 'expected one like https://app.example.com' : `write ${origin}`}`
}

/** Where the browsers may come from, and the paths (under the mount point) they may never use. */
export interface CrossOriginSettings {
  /** Exact origins, or `['*']` for any; empty: no CORS headers anywhere. */
  origins: readonly string[]
  /** Paths answered without CORS headers whatever the origin (the admin routes). */
  except: (path: string) => boolean
}

/**
 * CORS for the routes below its mount point. A request from an allowed origin gets
 * Access-Control-Allow-Origin (`*` when any origin is allowed) and Retry-After exposed; a preflight
 * (OPTIONS with Access-Control-Request-Method) is answered here with 204, never reaching authentication
 * or a rate limit: with the methods, headers and max age for an allowed origin, without any CORS header
 * for another one (the browser then refuses). `Vary: Origin` whenever origins are configured.
 */
export const crossOrigin = ({ origins, except }: CrossOriginSettings): RequestHandler => {
  const any = origins.includes('*')
  const allowed = new Set(origins)
  return (req, res, next) => {
    const origin = req.headers.origin
    if (origins.length > 0) res.vary('Origin')
    const permitted = origin !== undefined && (any || allowed.has(origin)) && !except(req.path)
    if (permitted) res.set({ 'Access-Control-Allow-Origin': any ? '*' : origin, 'Access-Control-Expose-Headers': EXPOSED_HEADERS })
    if (req.method !== 'OPTIONS' || origin === undefined || req.headers['access-control-request-method'] === undefined) return next()
    if (permitted) res.set({ 'Access-Control-Allow-Methods': METHODS, 'Access-Control-Allow-Headers': REQUEST_HEADERS, 'Access-Control-Max-Age': MAX_AGE_SECONDS })
    res.status(204).end()
  }
}
