// A writer thread for tests (writer-thread.test.ts): the real one, except that while "hold" is on, every
// transaction, once committed, waits until "release" arrives on the BroadcastChannel named
// `flush-gate:<store path>` before the thread is told it is done (as a slow disk would hold the commit).
import { BroadcastChannel, workerData } from 'node:worker_threads'
import { serveWrites } from '../pipeline/write-requests.js'
import type { OpenOptions } from '../store/databases.js'
import { EventStore } from '../store/event-store.js'

const { path, ...openOptions } = workerData as { path: string } & OpenOptions
const store = EventStore.open(path, openOptions)
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
const write = store.write.bind(store)
store.write = fn =>
  write(fn).then(result => {
    const gated = held
    return gated ? new Promise<void>(resolve => gated.push(resolve)).then(() => result) : result
  })
serveWrites(store)
