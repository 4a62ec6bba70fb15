export * from './pool.js'
export * from './serve.js'
export * from './verifier-pool.js'
