import { randomBytes } from 'node:crypto'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import postgres from 'postgres'
import type { Sql } from 'postgres'
import { runNode } from './processes.ts'

export const adminDatabaseUrl =
  process.env.BENCH_DATABASE_ADMIN_URL ?? process.env.TEST_DATABASE_ADMIN_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres'
export const benchRedisUrl = process.env.BENCH_REDIS_URL ?? process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379'

/** A throwaway database and a plain login role (no superuser, no BYPASSRLS, owns nothing). */
export interface BenchDatabase {
  readonly name: string
  readonly role: string
  /** Superuser (owner) URL of the bench database: migrations, seeding, the baseline. */
  readonly ownerUrl: string
  /** The plain login role's URL: what the service connects with, as in production. */
  readonly runtimeUrl: string
  drop(): Promise<void>
}

function withDatabase(url: string, db: string, user?: string): string {
  const u = new URL(url)
  u.pathname = `/${db}`
  if (user) {
    u.username = user
    u.password = ''
  }
  return u.toString()
}

export async function createBenchDatabase(): Promise<BenchDatabase> {
  const suffix = randomBytes(5).toString('hex')
  const name = `bench_${suffix}`
  const role = `bench_rt_${suffix}`
  const admin = postgres(adminDatabaseUrl, { max: 1, onnotice: () => {} })
  let dropped = false
  const drop = async () => {
    if (dropped) return
    dropped = true
    const a = postgres(adminDatabaseUrl, { max: 1, onnotice: () => {} })
    try {
      await a`drop database if exists ${a(name)} with (force)`
      await a`drop role if exists ${a(role)}`
    } finally {
      await a.end({ timeout: 5 })
    }
  }
  try {
    await admin`create database ${admin(name)}`
    await admin`create role ${admin(role)} login nosuperuser nobypassrls nocreatedb nocreaterole`
  } catch (err) {
    await admin.end({ timeout: 5 })
    await drop()
    throw err
  }
  await admin.end({ timeout: 5 })
  return { name, role, ownerUrl: withDatabase(adminDatabaseUrl, name), runtimeUrl: withDatabase(adminDatabaseUrl, name, role), drop }
}

export interface SeededOwner {
  tenant_id: string
  tenant_slug: string
  email: string
  password: string
}

/**
 * Runs the project's seed script (it migrates first, as the owner, and grants saas_runtime to the
 * runtime login role), then VACUUM ANALYZE so that every run starts from the same planner state.
 */
export async function seed(db: BenchDatabase, tenants: number, projects: number, tasks: number): Promise<{ owners: SeededOwner[]; log: string }> {
  const dir = mkdtempSync(path.join(tmpdir(), 'saas-bench-'))
  const out = path.join(dir, 'owners.json')
  try {
    const log = await runNode('scripts/seed.ts', ['--tenants', String(tenants), '--projects', String(projects), '--tasks', String(tasks), '--out', out], {
      // The seed only migrates and writes rows; production-only checks (Redis, keys) do not concern it.
      NODE_ENV: 'development',
      DATA_DIR: dir,
      DATABASE_URL: db.runtimeUrl,
      DATABASE_OWNER_URL: db.ownerUrl,
      LOG_LEVEL: 'warn',
    })
    const owners = JSON.parse(readFileSync(out, 'utf8')) as SeededOwner[]
    const sql = postgres(db.ownerUrl, { max: 1, onnotice: () => {} })
    try {
      await sql`vacuum analyze`
    } finally {
      await sql.end({ timeout: 5 })
    }
    return { owners, log: log.trim() }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

/** Project ids per tenant, read as the owner (the harness, not the service). */
export async function projectIdsByTenant(ownerUrl: string, tenantIds: readonly string[]): Promise<Map<string, string[]>> {
  const sql = postgres(ownerUrl, { max: 1, onnotice: () => {} })
  try {
    const rows = await sql<{ tenant_id: string; id: string }[]>`select tenant_id, id from projects where tenant_id = any(${tenantIds as string[]}::uuid[])`
    const by = new Map<string, string[]>()
    for (const r of rows) {
      const list = by.get(r.tenant_id) ?? []
      list.push(r.id)
      by.set(r.tenant_id, list)
    }
    return by
  } finally {
    await sql.end({ timeout: 5 })
  }
}

/** Logs every owner in (a few at a time: argon2 is deliberately slow) and returns tenant → "Bearer …". */
export async function loginAll(baseUrl: string, owners: readonly SeededOwner[], parallel = 4): Promise<Map<string, string>> {
  const tokens = new Map<string, string>()
  let next = 0
  const worker = async () => {
    while (next < owners.length) {
      const o = owners[next++]
      if (!o) break
      const res = await fetch(`${baseUrl}/v1/auth/login`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ tenant_slug: o.tenant_slug, email: o.email, password: o.password }),
      })
      if (res.status !== 200) throw new Error(`login of ${o.tenant_slug} answered ${res.status}: ${await res.text()}`)
      const body = (await res.json()) as { access_token: string }
      tokens.set(o.tenant_id, `Bearer ${body.access_token}`)
    }
  }
  await Promise.all(Array.from({ length: parallel }, worker))
  return tokens
}

export async function serverFacts(ownerUrl: string): Promise<{ postgres: string; sharedBuffers: string }> {
  const sql: Sql = postgres(ownerUrl, { max: 1, onnotice: () => {} })
  try {
    const [v] = await sql<{ version: string; shared_buffers: string }[]>`select version(), current_setting('shared_buffers') as shared_buffers`
    return { postgres: v?.version.split(' on ')[0] ?? '?', sharedBuffers: v?.shared_buffers ?? '?' }
  } finally {
    await sql.end({ timeout: 5 })
  }
}
