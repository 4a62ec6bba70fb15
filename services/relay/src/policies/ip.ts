import type { IncomingMessage } from 'node:http'
import { BlockList, isIP } from 'node:net'

/** An IPv4-mapped IPv6 address (::ffff:1.2.3.4) as plain IPv4, so lists and limits see one address. */
export const normalizeIp = (ip: string): string => (/^::ffff:\d+\.\d+\.\d+\.\d+$/i.test(ip) ? ip.slice(7) : ip)

/**
 * The client's address: the TCP peer, or with `trustedProxies` = N the N-th X-Forwarded-For entry from
 * the right (each trusted proxy appends what it saw, so entries left of it are the client's to forge).
 * When the header has fewer than N valid entries the peer is used.
 */
export const clientIp = (req: Pick<IncomingMessage, 'headers' | 'socket'>, trustedProxies: number): string => {
  const peer = normalizeIp(req.socket.remoteAddress ?? '')
  if (trustedProxies <= 0) return peer
  const header = req.headers['x-forwarded-for']
  const entries = (Array.isArray(header) ? header.join(',') : (header ?? '')).split(',').map(e => e.trim())
  const candidate = entries.length >= trustedProxies ? entries[entries.length - trustedProxies] : undefined
  return candidate !== undefined && isIP(candidate) !== 0 ? normalizeIp(candidate) : peer
}

/** A set of addresses and CIDR ranges, IPv4 and IPv6, checked with node's BlockList. */
export interface IpSet {
  readonly size: number
  has(ip: string): boolean
}

/** Builds an IpSet from validated entries ("10.0.0.0/8", "2001:db8::1", …). */
export const ipSet = (entries: readonly string[]): IpSet => {
  const list = new BlockList()
  for (const entry of entries) {
    const [raw = '', prefix] = entry.split('/')
    // A mapped single address (::ffff:1.2.3.4) is added as the IPv4 address it is, in its own family.
    const address = prefix === undefined ? normalizeIp(raw) : raw
    const family = isIP(address) === 6 ? 'ipv6' : 'ipv4'
    if (prefix === undefined) list.addAddress(address, family)
    else list.addSubnet(address, Number(prefix), family)
  }
  // Asked for every EVENT and REQ of a connection: answers are remembered per address (BlockList.check
  // builds a SocketAddress each time). The set is rebuilt when the configuration reloads, and so is this.
  const known = new Map<string, boolean>()
  return {
    size: entries.length,
    has: ip => {
      if (entries.length === 0) return false
      let answer = known.get(ip)
      if (answer === undefined) {
        const family = isIP(ip)
        answer = family !== 0 && list.check(ip, family === 6 ? 'ipv6' : 'ipv4')
        if (known.size >= MAX_KNOWN) known.clear()
        known.set(ip, answer)
      }
      return answer
    },
  }
}

/** Addresses an IpSet remembers before it starts over. */
const MAX_KNOWN = 4096
