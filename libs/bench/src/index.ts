// What services/relay/bench and services/mailbox-api/bench share; each keeps its scenarios, drivers and launcher.
export * from './child-process.js'
export * from './cpu-profile.js'
export * from './fuzz.js'
export * from './machine.js'
export * from './options.js'
export * from './run.js'
export * from './signer.js'
export * from './stats.js'
