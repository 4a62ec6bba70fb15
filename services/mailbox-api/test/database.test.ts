// The database handle main.ts opens: the data pool commits synchronously, the NIP-98 gate's pool does not.
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { createLogger } from '@msr/telemetry'
import { openDatabase, type Database } from '../src/db/database.js'
import { startPostgres, type TestPostgres } from './harness.js'

let pg: TestPostgres
let database: Database

before(async () => {
  pg = await startPostgres()
  database = await openDatabase({ url: pg.url, dataDir: 'unused', port: 0, poolSize: 4, logger: createLogger({ service: 'test', level: 'silent' }) })
})

after(async () => {
  await database?.close()
  await pg?.close()
})

const setting = async (pool: Database['pool']): Promise<string> =>
  (await pool.query<{ synchronous_commit: string }>('SHOW synchronous_commit')).rows[0]?.synchronous_commit ?? ''

describe('openDatabase', () => {
  it('commits mailbox data synchronously: 201 means the row survives a database crash', async () => {
    assert.equal(await setting(database.pool), 'on')
  })

  it('runs the NIP-98 gate pool with synchronous_commit off, on every connection it opens', async () => {
    const clients = await Promise.all([database.gatePool.connect(), database.gatePool.connect()])
    try {
      for (const client of clients) assert.equal((await client.query('SHOW synchronous_commit')).rows[0].synchronous_commit, 'off')
    } finally {
      for (const client of clients) client.release()
    }
  })

  it('keeps the gate pool smaller than the data pool', () => {
    assert.equal(database.gatePool.options.max, 2)
    assert.equal(database.pool.options.max, 4)
  })
})
