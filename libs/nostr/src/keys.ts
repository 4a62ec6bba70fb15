import { decode } from 'nostr-tools/nip19'
import { isHex64 } from './event.js'

/** A pubkey from configuration or input, as 64-char lowercase hex; accepts hex (any case) or `npub1…`. */
export const parsePubkey = (value: string): string | undefined => {
  const trimmed = value.trim()
  if (/^[0-9a-fA-F]{64}$/.test(trimmed)) return trimmed.toLowerCase()
  if (!trimmed.startsWith('npub1')) return undefined
  try {
    const decoded = decode(trimmed as `npub1${string}`)
    return decoded.type === 'npub' && isHex64(decoded.data) ? decoded.data : undefined
  } catch {
    return undefined
  }
}
