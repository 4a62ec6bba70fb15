import { readableId, type Reason } from '@msr/nostr'

/** A client message whose verb and arity are valid; its parts are checked by their handlers. */
export type ClientMessage =
  | { verb: 'EVENT'; event: unknown }
  | { verb: 'REQ'; subId: string; filters: unknown[] }
  | { verb: 'COUNT'; subId: string; filters: unknown[] }
  | { verb: 'CLOSE'; subId: string }
  | { verb: 'AUTH'; event: unknown }

/** How to refuse a message that could not be parsed: OK for an event with a readable id, CLOSED for a sub, else NOTICE. */
export type Refusal =
  | { to: 'OK'; eventId: string; reason: Reason }
  | { to: 'CLOSED'; subId: string; reason: Reason }
  | { to: 'NOTICE'; reason: Reason }

/** Result of parsing one frame. */
export type Parsed = { ok: true; message: ClientMessage } | { ok: false; refusal: Refusal }

const refuse = (refusal: Refusal): Parsed => ({ ok: false, refusal })
const notice = (reason: Reason): Parsed => refuse({ to: 'NOTICE', reason })

// An unescaped `"id":"<hex>"` can only be the event's own id key: keys never occur inside strings unescaped.
const ID_IN_TEXT = /(?<!\\)"id"\s*:\s*"([0-9a-fA-F]{64})"/

/** Parses one WebSocket text frame (UTF-8 bytes) into a client message, or says how to refuse it. */
export const parseMessage = (frame: Buffer, maxLength: number): Parsed => {
  if (frame.length > maxLength) return tooLong(frame.toString('utf8', 0, Math.min(frame.length, 4 * maxLength)), maxLength)
  const text = frame.toString('utf8')
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch {
    return notice('invalid: message is not valid JSON')
  }
  if (!Array.isArray(value) || value.length === 0 || typeof value[0] !== 'string')
    return notice('invalid: a message must be a JSON array starting with a verb such as "EVENT" or "REQ"')
  return parseVerb(value[0], value.slice(1))
}

// EVENT and AUTH carry an event, and each is answered with OK (NIP-01, NIP-42) whenever its id can be read.
const tooLong = (text: string, maxLength: number): Parsed => {
  const reason: Reason = `invalid: message is larger than ${maxLength} bytes`
  const id = /^\s*\[\s*"(?:EVENT|AUTH)"/.test(text) ? ID_IN_TEXT.exec(text)?.[1] : undefined
  return id ? refuse({ to: 'OK', eventId: id, reason }) : notice(reason)
}

const parseVerb = (verb: string, args: unknown[]): Parsed => {
  switch (verb) {
    case 'EVENT':
    case 'AUTH':
      return args.length === 1 ? { ok: true, message: { verb, event: args[0] } } : eventArity(verb, args)
    case 'REQ':
    case 'COUNT':
      return parseSubscription(verb, args)
    case 'CLOSE':
      if (args.length !== 1 || typeof args[0] !== 'string') return notice('invalid: CLOSE takes exactly one subscription id')
      return { ok: true, message: { verb, subId: args[0] } }
    default:
      return notice(`invalid: unknown message type "${verb.slice(0, 16)}"`)
  }
}

const eventArity = (verb: 'EVENT' | 'AUTH', args: unknown[]): Parsed => {
  const id = readableId(args[0])
  const reason: Reason = `invalid: ${verb} takes exactly one event`
  return id ? refuse({ to: 'OK', eventId: id, reason }) : notice(reason)
}

const parseSubscription = (verb: 'REQ' | 'COUNT', args: unknown[]): Parsed => {
  const [subId, ...filters] = args
  if (typeof subId !== 'string' || subId.length === 0) return notice(`invalid: ${verb} needs a non-empty subscription id string`)
  if (filters.length === 0) return refuse({ to: 'CLOSED', subId, reason: `invalid: ${verb} needs at least one filter` })
  return { ok: true, message: { verb, subId, filters } }
}
