/**
 * The Google Cloud Storage client library, loaded on first use: loading it takes about 0.4 s of CPU, which a
 * relay whose exports and snapshots stay on local files should not pay at every start. `require` loads its
 * CommonJS build synchronously where a client is first made, so the functions that make one stay synchronous.
 */
import { createRequire } from 'node:module'
import type * as StorageLibrary from '@google-cloud/storage'

const require = createRequire(import.meta.url)

/** The `@google-cloud/storage` module (loaded and cached by Node on the first call). */
export const storageLibrary = (): typeof StorageLibrary => require('@google-cloud/storage') as typeof StorageLibrary
