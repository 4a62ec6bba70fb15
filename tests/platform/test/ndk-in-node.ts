// NDK in a Node process. NDK 3.0.x's NDKRelay arms a 30-second timer in its constructor
// (updateValidationRatio) and re-arms it for ever: disconnecting does not stop it and nothing else can,
// so a Node process that created an NDK relay never ends by itself (a test file would hang after its
// last test). This makes that one timer not hold the process (unref); NDK behaves as before.
import { NDKRelay } from '@nostr-dev-kit/ndk'

interface RelayTimers {
  updateValidationRatio(this: unknown): void
}

let patched = false

/** Lets a process end once its NDK relays are disconnected (the validation-ratio timer is unref'd). */
export const unrefNdkRelayTimers = (): void => {
  if (patched) return
  patched = true
  const proto = NDKRelay.prototype as unknown as RelayTimers
  const original = proto.updateValidationRatio
  proto.updateValidationRatio = function () {
    // NDK calls the global setTimeout here (and nowhere else during this synchronous call).
    const realSetTimeout = globalThis.setTimeout
    globalThis.setTimeout = ((callback: () => void, ms?: number) => realSetTimeout(callback, ms).unref()) as unknown as typeof setTimeout
    try {
      original.call(this)
    } finally {
      globalThis.setTimeout = realSetTimeout
    }
  }
}
