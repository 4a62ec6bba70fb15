/**
 * The Google Cloud Pub/Sub client library, loaded on first use. Loading it (google-gax, gRPC and their
 * protos) takes about 0.7 s of CPU; a process that never talks to Pub/Sub (hints on the local transport or
 * off, no replication) should not pay that at every start. The library is CommonJS, so `require` loads it
 * synchronously where it is first needed and constructors stay synchronous.
 */
import { createRequire } from 'node:module'
import type * as PubSubLibrary from '@google-cloud/pubsub'

const require = createRequire(import.meta.url)

/** The `@google-cloud/pubsub` module (loaded and cached by Node on the first call). */
export const pubSubLibrary = (): typeof PubSubLibrary => require('@google-cloud/pubsub') as typeof PubSubLibrary
