import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { appendFileSync, cpSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { after, before, describe, it } from 'node:test'
import postgres from 'postgres'
import { ConfigError, loadConfig } from '../../src/platform/config.ts'
import { MigrationError, checkMigrations, migrate, migrationsDir, readMigrations } from '../../src/platform/db/migrate.ts'
import { openDeps } from '../../src/platform/deps.ts'
import { createTestDatabase, testRedisUrl } from '../helpers/app.ts'
import type { TestDatabase } from '../helpers/app.ts'
import { captureLogger, es256Pem } from '../helpers/processes.ts'

describe('migrations', () => {
  let db: TestDatabase
  let owner: postgres.Sql
  let dir: string

  before(async () => {
    db = await createTestDatabase()
    owner = postgres(db.url, { max: 2, onnotice: () => {} })
    dir = mkdtempSync(path.join(tmpdir(), 'saas-migrations-'))
  })
  after(async () => {
    await owner.end()
    await db.drop()
    rmSync(dir, { recursive: true, force: true })
  })

  const startConfig = (env: Record<string, string> = {}) =>
    loadConfig({
      NODE_ENV: 'test',
      DATABASE_URL: db.url,
      REDIS_URL: testRedisUrl,
      KEY_ENCRYPTION_KEY: randomBytes(32).toString('base64'),
      JWT_PRIVATE_KEY: es256Pem(),
      DATA_DIR: dir,
      LOG_LEVEL: 'silent',
      ...env,
    })

  it('when migrate runs twice, then every migration is applied once and the second run applies nothing', async () => {
    const all = readMigrations().map((m) => m.name)
    assert.ok(all.length >= 3)
    assert.deepEqual(await migrate(owner), all)
    assert.deepEqual(await migrate(owner), [])
    const rows = await owner<{ name: string }[]>`select name from schema_migrations order by version`
    assert.deepEqual(
      rows.map((r) => r.name),
      all,
    )
    assert.deepEqual(await checkMigrations(owner), { pending: [] })
  })

  it('when two servers migrate at once, then they serialise and nothing is applied twice', async () => {
    const fresh = await createTestDatabase()
    const a = postgres(fresh.url, { max: 1, onnotice: () => {} })
    const b = postgres(fresh.url, { max: 1, onnotice: () => {} })
    try {
      const [ra, rb] = await Promise.all([migrate(a), migrate(b)])
      assert.equal(ra.length + rb.length, readMigrations().length)
      assert.ok(ra.length === 0 || rb.length === 0)
    } finally {
      await a.end()
      await b.end()
      await fresh.drop()
    }
  })

  it('when an applied migration file is edited, then migrate() and checkMigrations() stop with a checksum error', async () => {
    const edited = path.join(dir, 'edited')
    cpSync(migrationsDir, edited, { recursive: true })
    appendFileSync(path.join(edited, '0001_tenants_and_users.sql'), '\n-- an innocent-looking edit\n')
    await assert.rejects(migrate(owner, { dir: edited }), (err: unknown) => err instanceof MigrationError && /0001_tenants_and_users\.sql was edited/.test(err.message))
    await assert.rejects(checkMigrations(owner, { dir: edited }), MigrationError)
    // Nothing was half-applied: the history is unchanged.
    assert.deepEqual(await checkMigrations(owner), { pending: [] })
  })

  it('when the database records a different checksum than a migration file, then the server does not start (development or production)', async () => {
    await owner`update schema_migrations set checksum = ${'0'.repeat(64)} where version = 2`
    try {
      await assert.rejects(openDeps(startConfig(), captureLogger() as never), (err: unknown) => err instanceof MigrationError && /0002_.*edited/.test(err.message))
      await assert.rejects(openDeps(startConfig({ NODE_ENV: 'production' }), captureLogger() as never), MigrationError)
    } finally {
      const m = readMigrations().find((x) => x.version === 2)
      assert.ok(m)
      await owner`update schema_migrations set checksum = ${m.checksum} where version = 2`
    }
  })

  it('when migrations are pending in production, then the server refuses to start and says to run migrate', async () => {
    const last = readMigrations().at(-1)
    assert.ok(last)
    await owner`delete from schema_migrations where version = ${last.version}`
    try {
      await assert.rejects(openDeps(startConfig({ NODE_ENV: 'production' }), captureLogger() as never), (err: unknown) => {
        assert.ok(err instanceof ConfigError)
        assert.equal(err.variable, 'DATABASE_URL')
        assert.match(err.message, new RegExp(`lacks migrations ${last.name.replace('.', '\\.')}`))
        assert.match(err.message, /npm run migrate/)
        return true
      })
    } finally {
      await owner`insert into schema_migrations (version, name, checksum) values (${last.version}, ${last.name}, ${last.checksum})`
    }
  })
})
