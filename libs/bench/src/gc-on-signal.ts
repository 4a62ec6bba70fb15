// Preloaded into a service under a fuzzer (`node --expose-gc --import <this> …`): on SIGUSR2 a full garbage
// collection, then one JSON line saying so, so that the fuzzer measures memory that is still held, not
// garbage not yet collected. Bench only: never part of how a service is started in production.
const gc = (globalThis as { gc?: () => void }).gc

process.on('SIGUSR2', () => {
  gc?.()
  process.stdout.write(`${JSON.stringify({ severity: 'INFO', message: gc ? 'bench: garbage collected' : 'bench: no gc (start with --expose-gc)' })}\n`)
})
