import { isProtected, type NostrEvent, type Reason } from '@msr/nostr'
import type { RelayConfig } from '../config.js'
import { ipSet, type IpSet } from './ip.js'

/** Who the relay is talking to: the client's address and the pubkeys it proved with NIP-42. */
export interface Peer {
  readonly ip: string
  readonly authed: ReadonlySet<string>
}

/** One compiled permission block ([auth.req] or [auth.event]). */
interface Permission {
  ipWhitelist: IpSet
  ipBlacklist: IpSet
  pubkeyWhitelist: Set<string>
  pubkeyBlacklist: Set<string>
}

/** The access rules of one configuration, compiled once (rebuilt when the configuration reloads). */
export interface AccessRules {
  authEnabled: boolean
  /** Every REQ/COUNT/EVENT needs an authenticated connection. */
  authRequired: boolean
  relayUrl: string
  privateKinds: ReadonlySet<number>
  authRequiredKinds: ReadonlySet<number>
  req: Permission
  event: Permission & { authorWhitelist: Set<string>; authorBlacklist: Set<string> }
}

const permission = (block: RelayConfig['auth']['req']): Permission => ({
  ipWhitelist: ipSet(block.ip_whitelist),
  ipBlacklist: ipSet(block.ip_blacklist),
  pubkeyWhitelist: new Set(block.pubkey_whitelist),
  pubkeyBlacklist: new Set(block.pubkey_blacklist),
})

/** Compiles the `[auth]` section. */
export const compileAccess = (config: RelayConfig): AccessRules => ({
  authEnabled: config.auth.enabled,
  authRequired: config.auth.required,
  relayUrl: config.network.public_url,
  privateKinds: new Set(config.auth.private_kinds),
  authRequiredKinds: new Set(config.auth.auth_required_kinds),
  req: permission(config.auth.req),
  event: {
    ...permission(config.auth.event),
    authorWhitelist: new Set(config.auth.event.event_pubkey_whitelist),
    authorBlacklist: new Set(config.auth.event.event_pubkey_blacklist),
  },
})

/** `auth-required:` when the client could still authenticate, `restricted:` when it cannot help. */
const needAuth = (rules: AccessRules, what: string): Reason =>
  rules.authEnabled
    ? `auth-required: ${what} needs an authenticated connection (NIP-42)`
    : `restricted: ${what} needs an authenticated connection and this relay does not offer authentication`

const anyIn = (pubkeys: ReadonlySet<string>, set: Set<string>): boolean => [...pubkeys].some(p => set.has(p))

/** Checks a permission block for a peer: address lists first, then the authenticated pubkeys. */
const checkPermission = (rules: AccessRules, perm: Permission, peer: Peer, what: string): Reason | undefined => {
  if (perm.ipBlacklist.has(peer.ip) || (perm.ipWhitelist.size > 0 && !perm.ipWhitelist.has(peer.ip)))
    return `restricted: ${what} is not allowed from your address`
  if (anyIn(peer.authed, perm.pubkeyBlacklist)) return `restricted: ${what} is not allowed for your pubkey`
  const needsPubkey = perm.pubkeyWhitelist.size > 0 || rules.authRequired
  if (needsPubkey && peer.authed.size === 0) return needAuth(rules, what)
  if (perm.pubkeyWhitelist.size > 0 && !anyIn(peer.authed, perm.pubkeyWhitelist)) return `restricted: ${what} is not allowed for your pubkey`
  return undefined
}

/** May this peer REQ or COUNT at all ([auth.req]); and does any filter name a private kind it cannot read yet? */
export const checkRead = (rules: AccessRules, peer: Peer, kinds: ReadonlyArray<readonly number[] | undefined>): Reason | undefined => {
  const denied = checkPermission(rules, rules.req, peer, 'reading')
  if (denied) return denied
  if (peer.authed.size > 0) return undefined
  const privateKind = kinds.flatMap(k => k ?? []).find(k => rules.privateKinds.has(k))
  return privateKind === undefined ? undefined : needAuth(rules, `reading kind ${privateKind}`)
}

/** May this peer publish this event ([auth.event], authenticated kinds, NIP-70)? */
export const checkWrite = (rules: AccessRules, peer: Peer, event: NostrEvent): Reason | undefined => {
  const denied = checkPermission(rules, rules.event, peer, 'publishing')
  if (denied) return denied
  const { authorWhitelist, authorBlacklist } = rules.event
  if (authorBlacklist.has(event.pubkey) || (authorWhitelist.size > 0 && !authorWhitelist.has(event.pubkey)))
    return 'restricted: events by this author are not accepted here'
  if (rules.authRequiredKinds.has(event.kind) && peer.authed.size === 0) return needAuth(rules, `publishing kind ${event.kind}`)
  if (isProtected(event)) {
    if (peer.authed.size === 0) return needAuth(rules, 'publishing a protected event (NIP-70)')
    if (!peer.authed.has(event.pubkey)) return 'restricted: a protected event (NIP-70) may only be published by its author'
  }
  return undefined
}

/** May a connection authenticated as `viewer` receive this event? Private kinds: only its author or a p-tagged recipient. */
export const visibleTo = (privateKinds: ReadonlySet<number>, viewer: ReadonlySet<string>, event: NostrEvent): boolean => {
  if (!privateKinds.has(event.kind)) return true
  if (viewer.has(event.pubkey)) return true
  return event.tags.some(tag => tag[0] === 'p' && tag[1] !== undefined && viewer.has(tag[1]))
}
