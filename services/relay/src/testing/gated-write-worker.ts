// A writer thread for tests (writer-thread.test.ts): the real one, except that while "hold" is on, every
// flush waits until "release" arrives on the BroadcastChannel named `flush-gate:<store path>`.
import { BroadcastChannel, workerData } from 'node:worker_threads'
import { serveWrites } from '../pipeline/write-requests.js'
import { EventStore } from '../store/event-store.js'

const { path } = workerData as { path: string }
const store = EventStore.open(path)
const gate = new BroadcastChannel(`flush-gate:${path}`)
let held: Array<() => void> | undefined
gate.onmessage = message => {
  const { data } = message as { data: unknown }
  if (data === 'hold') held ??= []
  if (data === 'release') held?.splice(0).forEach(release => release())
  if (data === 'release') held = undefined
  gate.postMessage(`${String(data)}: done`)
}
gate.unref()
const flushed = store.flushed.bind(store)
store.flushed = () => (held ? new Promise<void>(resolve => held?.push(resolve)).then(flushed) : flushed())
serveWrites(store)
