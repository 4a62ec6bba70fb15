import type { Pool, PoolClient } from 'pg'
import { MIGRATIONS, type Migration } from './migrations.js'

/** A fixed key for the advisory lock that serialises migrations across instances. */
const MIGRATION_LOCK = 7_361_829_104

/** Versions applied by this call, and the schema version afterwards. */
export interface MigrationOutcome {
  applied: number[]
  version: number
}

/**
 * Applies every pending migration, each in its own transaction. Instances starting together queue on
 * a session advisory lock, so each migration runs exactly once and the others find it done.
 */
export const migrate = async (pool: Pool, migrations: readonly Migration[] = MIGRATIONS): Promise<MigrationOutcome> => {
  const client = await pool.connect()
  try {
    await client.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK])
    await client.query(`CREATE TABLE IF NOT EXISTS schema_migrations (
      version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())`)
    const done = new Set((await client.query<{ version: number }>('SELECT version FROM schema_migrations')).rows.map(r => r.version))
    const applied: number[] = []
    for (const migration of [...migrations].sort((a, b) => a.version - b.version)) {
      if (done.has(migration.version)) continue
      await apply(client, migration)
      applied.push(migration.version)
    }
    return { applied, version: Math.max(0, ...done, ...applied) }
  } finally {
    await client.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK]).catch(() => undefined)
    client.release()
  }
}

const apply = async (client: PoolClient, migration: Migration): Promise<void> => {
  await client.query('BEGIN')
  try {
    await client.query(migration.sql)
    await client.query('INSERT INTO schema_migrations (version, name) VALUES ($1, $2)', [migration.version, migration.name])
    await client.query('COMMIT')
  } catch (error) {
    await client.query('ROLLBACK')
    throw error
  }
}

/** The schema version in the database (0 when nothing was applied). */
export const schemaVersion = async (pool: Pool): Promise<number> => {
  const exists = await pool.query<{ t: string | null }>("SELECT to_regclass('schema_migrations') AS t")
  if (!exists.rows[0]?.t) return 0
  const row = await pool.query<{ v: number | null }>('SELECT max(version) AS v FROM schema_migrations')
  return row.rows[0]?.v ?? 0
}

/** The version this build expects (readiness requires it). */
export const LATEST_VERSION = Math.max(...MIGRATIONS.map(m => m.version))
