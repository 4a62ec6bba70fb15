// The head of a stored event read from its bytes, without JSON.parse. The store keeps each event in the
// canonical form of @msr/nostr's toJson: `{"id":"<64 hex>","pubkey":"<64 hex>","created_at":N,"kind":K,"tags":…`,
// so id, pubkey and created_at sit at fixed offsets and kind right after created_at. Bytes laid out otherwise
// are reported as such, and the caller parses them instead.

const ID_MARK = Buffer.from('{"id":"')
const PUBKEY_MARK = Buffer.from('","pubkey":"')
const CREATED_AT_MARK = Buffer.from('","created_at":')
const KIND_MARK = Buffer.from(',"kind":')
const PUBKEY_AT = 83
const CREATED_AT_AT = 162
const MAX_DIGITS = 15
const COMMA = 0x2c

/** created_at and kind of a stored event, filled in by readHead (one object reused for every candidate). */
export interface StoredHead {
  createdAt: number
  kind: number
}

/** True when `json` holds `mark` at `at`. A loop: a mark is 7 to 15 bytes, less than Buffer.compare's native call costs. */
const markAt = (json: Buffer, mark: Buffer, at: number): boolean => {
  if (at + mark.length > json.length) return false
  for (let i = 0; i < mark.length; i++) if (json[at + i] !== mark[i]) return false
  return true
}

/** Where the decimal digits starting at `at` end (at a comma), or -1 when the bytes there are not such a number. */
const digitsEnd = (json: Buffer, at: number): number => {
  for (let i = at; i <= at + MAX_DIGITS && i < json.length; i++) {
    const byte = json[i] as number
    if (byte === COMMA) return i > at ? i : -1
    if (byte < 0x30 || byte > 0x39) return -1
  }
  return -1
}

const valueOf = (json: Buffer, from: number, to: number): number => {
  let value = 0
  for (let i = from; i < to; i++) value = value * 10 + (json[i] as number) - 0x30
  return value
}

/** Reads created_at and kind into `head`; false when the bytes are not in the canonical layout (parse them then). */
export const readHead = (json: Buffer, head: StoredHead): boolean => {
  if (!markAt(json, ID_MARK, 0) || !markAt(json, PUBKEY_MARK, 71) || !markAt(json, CREATED_AT_MARK, 147)) return false
  const createdAtEnd = digitsEnd(json, CREATED_AT_AT)
  if (createdAtEnd < 0 || !markAt(json, KIND_MARK, createdAtEnd)) return false
  const kindAt = createdAtEnd + KIND_MARK.length
  const kindEnd = digitsEnd(json, kindAt)
  if (kindEnd < 0) return false
  head.createdAt = valueOf(json, CREATED_AT_AT, createdAtEnd)
  head.kind = valueOf(json, kindAt, kindEnd)
  return true
}

/** The pubkey (64 hex) of a stored event whose head readHead accepted. */
export const storedPubkey = (json: Buffer): string => json.toString('latin1', PUBKEY_AT, PUBKEY_AT + 64)

const scratch: StoredHead = { createdAt: 0, kind: 0 }

/** Reads the head of a stored event, from its bytes or (laid out otherwise) by parsing them. */
const head = (json: Buffer): StoredHead => {
  if (readHead(json, scratch)) return scratch
  const { created_at: createdAt, kind } = JSON.parse(json.toString('utf8')) as { created_at: number; kind: number }
  return { createdAt, kind }
}

/** The kind of a stored event. */
export const storedKind = (json: Buffer): number => head(json).kind

/** The created_at of a stored event. */
export const storedCreatedAt = (json: Buffer): number => head(json).createdAt
