// Standard padded base64 (RFC 4648) on Uint8Array with the web platform's atob/btoa, so the client runs in
// browsers and other runtimes as well as in Node.

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/

/** True for non-empty standard padded base64, the only form the API accepts. */
export const isBase64 = (text: string): boolean => text.length > 0 && BASE64.test(text)

/** Standard padded base64 of `bytes`. */
export const encodeBase64 = (bytes: Uint8Array): string => {
  let binary = ''
  // In chunks: spreading a large array into one call would overflow the argument stack.
  for (let i = 0; i < bytes.length; i += 0x8000) binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000))
  return btoa(binary)
}

/** The bytes of standard base64 text (checked by the caller with `isBase64`). */
export const decodeBase64 = (text: string): Uint8Array => {
  const binary = atob(text)
  const bytes = new Uint8Array(binary.length)
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i)
  return bytes
}
