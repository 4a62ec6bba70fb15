// Secret comparison for metrics keys and tokens.
import { createHash, timingSafeEqual } from 'node:crypto'

/** Compares two secrets in constant time; hashing first means lengths never leak and it never throws. */
export function safeEqual(a: string, b: string): boolean {
  return timingSafeEqual(sha256(a), sha256(b))
}

function sha256(text: string): Buffer {
  return createHash('sha256').update(text, 'utf8').digest()
}
