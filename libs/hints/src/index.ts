export * from './hint.js'
export * from './envelope.js'
export * from './transport.js'
export * from './pubsub-library.js'
