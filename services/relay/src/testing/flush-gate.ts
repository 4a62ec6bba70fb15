// The other end of gated-write-worker.ts's flush gate, for the tests that drive it.
import { BroadcastChannel } from 'node:worker_threads'

/** Sends "hold" or "release" to the gated writer thread of the store at `path`; resolves once it has taken it. */
export const flushGate = (path: string, command: 'hold' | 'release'): Promise<void> =>
  new Promise(resolve => {
    const channel = new BroadcastChannel(`flush-gate:${path}`)
    channel.onmessage = message => {
      if ((message as { data: unknown }).data !== `${command}: done`) return
      channel.close()
      resolve()
    }
    channel.postMessage(command)
  })
