import { createHash } from 'node:crypto'
import { readdirSync, readFileSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import type { Sql } from 'postgres'
import { runtimeRole } from './connect.ts'

export const migrationsDir = fileURLToPath(new URL('../../../migrations/', import.meta.url))

export interface Migration {
  version: number
  name: string
  checksum: string
  sql: string
}

export class MigrationError extends Error {
  override name = 'MigrationError'
}

/** Arbitrary but fixed: serialises concurrent `migrate` runs (several pods starting at once). */
const migrationLockId = 727_201_001

export function readMigrations(dir = migrationsDir): Migration[] {
  return readdirSync(dir)
    .filter((f) => /^\d{4}_[a-z0-9_]+\.sql$/.test(f))
    .sort()
    .map((file) => {
      const sql = readFileSync(path.join(dir, file), 'utf8')
      return {
        version: Number(file.slice(0, 4)),
        name: file,
        checksum: createHash('sha256').update(sql).digest('hex'),
        sql,
      }
    })
}

/**
 * Applies each numbered migration once, in its own transaction, as the owner role. An applied
 * migration whose file has changed stops everything: history is not rewritten silently.
 * Returns the names applied by this run.
 */
export async function migrate(owner: Sql, options: { runtimeUser?: string | undefined; dir?: string } = {}): Promise<string[]> {
  const migrations = readMigrations(options.dir)
  const applied: string[] = []
  await owner.begin(async (tx) => {
    await tx`select pg_advisory_xact_lock(${migrationLockId})`
    await tx`create table if not exists schema_migrations (
      version int primary key, name text not null, checksum text not null, applied_at timestamptz not null default now())`
    const done = new Map((await tx<{ version: number; name: string; checksum: string }[]>`select version, name, checksum from schema_migrations`).map((r) => [r.version, r]))
    for (const m of migrations) {
      const prior = done.get(m.version)
      if (prior) {
        if (prior.checksum !== m.checksum)
          throw new MigrationError(`migration ${m.name} was edited after it was applied (checksum differs); add a new migration instead`)
        continue
      }
      await tx.unsafe(m.sql)
      await tx`insert into schema_migrations (version, name, checksum) values (${m.version}, ${m.name}, ${m.checksum})`
      applied.push(m.name)
    }
    // Production start checks (as the runtime role) that no migration is pending or edited.
    await tx.unsafe(`grant select on schema_migrations to ${runtimeRole}`)
    // A separate runtime login role gets the runtime privileges by membership.
    if (options.runtimeUser) await tx.unsafe(`grant ${runtimeRole} to ${quoteIdent(options.runtimeUser)}`)
  })
  return applied
}

/** Refuses to start on an applied migration that was edited, or one not yet applied (production). */
export async function checkMigrations(sql: Sql, options: { dir?: string } = {}): Promise<{ pending: string[] }> {
  const migrations = readMigrations(options.dir)
  const [exists] = await sql<{ ok: boolean }[]>`select to_regclass('public.schema_migrations') is not null as ok`
  if (!exists?.ok) return { pending: migrations.map((m) => m.name) }
  const rows = await sql<{ version: number; checksum: string }[]>`select version, checksum from schema_migrations`
  const done = new Map(rows.map((r) => [r.version, r.checksum]))
  for (const m of migrations) {
    const sum = done.get(m.version)
    if (sum !== undefined && sum !== m.checksum)
      throw new MigrationError(`migration ${m.name} was edited after it was applied (checksum differs); add a new migration instead`)
  }
  return { pending: migrations.filter((m) => !done.has(m.version)).map((m) => m.name) }
}

function quoteIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`
}
