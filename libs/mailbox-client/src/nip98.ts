// NIP-98 HTTP auth as the mailbox API checks it: one freshly signed kind-27235 event per request.
import { encodeBase64 } from './base64.js'
import type { RequestSigner } from './signer.js'

/** The kind of a NIP-98 HTTP authorization event. */
export const HTTP_AUTH_KIND = 27235

const encoder = new TextEncoder()

/** sha256 of `bytes` as lowercase hex (WebCrypto: no dependency, any runtime). */
export const sha256Hex = async (bytes: Uint8Array): Promise<string> =>
  Array.from(new Uint8Array(await crypto.subtle.digest('SHA-256', bytes)), b => b.toString(16).padStart(2, '0')).join('')

/**
 * `Nostr <base64 event>` for one request: `u` is the absolute URL exactly as sent, `method` its method,
 * `payload` the sha256 of the exact body bytes when there is a body. The server accepts each event once,
 * so every attempt (retries included) calls this again.
 */
export const httpAuthHeader = async (signer: RequestSigner, method: string, url: string, body?: Uint8Array): Promise<string> => {
  const tags = [
    ['u', url],
    ['method', method],
  ]
  if (body && body.length > 0) tags.push(['payload', await sha256Hex(body)])
  const event = await signer.sign({ kind: HTTP_AUTH_KIND, created_at: Math.floor(Date.now() / 1000), tags, content: '' })
  return `Nostr ${encodeBase64(encoder.encode(JSON.stringify(event)))}`
}
