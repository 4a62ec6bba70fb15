import { isProtected, type Reason, type VerifiedEvent } from '@msr/nostr'
import type { Client } from '../connection/client.js'

/** A publish policy: a reason vetoes the event (the first veto wins), undefined lets it through. */
export type EventPolicy = (event: VerifiedEvent, client: Client) => Reason | undefined

/** NIP-70: a protected event is accepted only from its authenticated author; without NIP-42 auth, never. */
export const rejectProtected: EventPolicy = event =>
  isProtected(event) ? 'auth-required: this event is protected (NIP-70) and only its authenticated author may publish it' : undefined

/** Runs policies in order; the first reason wins. */
export const firstRejection = (policies: readonly EventPolicy[], event: VerifiedEvent, client: Client): Reason | undefined => {
  for (const policy of policies) {
    const reason = policy(event, client)
    if (reason) return reason
  }
  return undefined
}
