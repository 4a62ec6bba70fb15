// The embedded PostgreSQL started as root runs as the `postgres` user: a data directory that user cannot
// reach is refused with what to do, before anything is spawned (not a bare `spawn … initdb EACCES`).
import assert from 'node:assert/strict'
import { chmodSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir, userInfo } from 'node:os'
import { join } from 'node:path'
import { after, describe, it } from 'node:test'
import { createLogger } from '@msr/telemetry'
import { openDatabase } from './database.js'

const closed = mkdtempSync(join(tmpdir(), 'msr-closed-'))
after(() => rmSync(closed, { recursive: true, force: true }))

describe('the embedded PostgreSQL under root', () => {
  it('refuses a data directory the postgres user cannot reach, naming the directory and the ways out', { skip: userInfo().uid !== 0 && 'only root starts it as the postgres user' }, async () => {
    chmodSync(closed, 0o700)
    const dataDir = join(closed, 'data', 'postgres')
    await assert.rejects(
      openDatabase({ dataDir, port: 1, poolSize: 1, logger: createLogger({ service: 'test', level: 'silent' }) }),
      (error: Error) => {
        assert.match(error.message, new RegExp(`cannot enter ${closed}`))
        assert.match(error.message, /chmod o\+x/)
        assert.match(error.message, /DATABASE_URL/)
        return true
      },
    )
  })
})
