/**
 * What does the tenant transaction cost, before and after pipelining it?
 *
 *   node --import tsx bench/tenant-tx.ts [iterations per run, default 4000]
 *
 * On a throwaway database (PostgreSQL at TEST_DATABASE_ADMIN_URL, default
 * postgres://postgres@127.0.0.1:5432/postgres) with 100 tenants × 200 projects, runs N transactions
 * that each check the actor and list 20 projects (the `list` hot path's SQL), spread over all
 * tenants, sequentially and with 16 in flight, on a pool of 10 connections (the server's), with:
 *   old   the previous withTenant (kept here as a copy): sql.begin (BEGIN awaited), then the
 *         set_config and the actor check pipelined, then the query, then COMMIT: 4 round trips;
 *   new   withTenant: a reserved connection, [BEGIN, set_config with the actor gate] as one batch with the
 *         query pipelined behind it, then COMMIT: 2 round trips;
 *   read  withTenantRead: [set_config (read only) with the actor gate, query] as one batch, no BEGIN and
 *         no COMMIT (one implicit transaction): 1 round trip.
 * The modes alternate round by round in one process, so that the ratios are comparable even on a
 * machine shared with other work; absolute figures are noisy there, ratios less so.
 */
import { randomBytes, randomUUID } from 'node:crypto'
import { performance } from 'node:perf_hooks'
import postgres from 'postgres'
import type { Sql, TransactionSql } from 'postgres'
import { createPool, runtimeRole } from '../src/platform/db/connect.ts'
import { migrate } from '../src/platform/db/migrate.ts'
import { withTenant, withTenantRead } from '../src/platform/db/tenant.ts'
import type { TenantScope, TenantTx } from '../src/platform/db/tenant.ts'
import { listProjects } from '../src/modules/projects/projects.repo.ts'

const iterations = Number(process.argv[2] ?? 4000)
const rounds = 3
const adminUrl = process.env.TEST_DATABASE_ADMIN_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres'

/** The previous withTenant, verbatim but for the error mapping (a failed check throws plainly here). */
async function oldWithTenant<T>(sql: Sql, scope: TenantScope, fn: (tx: TenantTx) => Promise<T>): Promise<T> {
  return (await sql.begin(async (tx: TransactionSql) => {
    const [, rows] = await Promise.all([
      tx`select set_config('role', ${runtimeRole}, true), set_config('app.tenant_id', ${scope.tenantId}, true)`,
      tx<{ status: string; user_ok: boolean | null; user_role: string | null; revoked: boolean }[]>`
        select t.status,
               u.role as user_role, not u.disabled as user_ok,
               exists (select 1 from revoked_tokens r where r.tenant_id = t.id and r.jti = ${scope.jti ?? null}::uuid) as revoked
          from tenants t left join users u on u.tenant_id = t.id and u.id = ${scope.userId ?? null}::uuid
         where t.id = ${scope.tenantId}::uuid`,
    ])
    const actor = rows[0]
    if (!actor || actor.user_ok !== true || actor.revoked || actor.status !== 'active') throw new Error('actor check failed')
    return fn({ sql: tx, tenantId: scope.tenantId } as unknown as TenantTx)
  }))
}

/** listProjects' SQL for the default sort, returned without running it (what withTenantRead takes). */
const listQuery = (t: TenantTx) => t.sql`
    select id, name, description, status, created_at, updated_at, created_at::text as sort_key
      from projects
     where tenant_id = ${t.tenantId}
     order by created_at desc, id desc
     limit ${21}`

type Mode = 'old' | 'new' | 'read'
const modes: Mode[] = ['old', 'new', 'read']
const listOptions = { limit: 20, status: undefined, sort: '-created_at' as const, after: undefined }

function run(sql: Sql, mode: Mode, scope: TenantScope): Promise<readonly unknown[]> {
  switch (mode) {
    case 'old':
      return oldWithTenant(sql, scope, (t) => listProjects(t, listOptions))
    case 'new':
      return withTenant(sql, scope, (t) => listProjects(t, listOptions))
    case 'read':
      return withTenantRead(sql, scope, listQuery)
  }
}

function summary(latencies: number[], elapsedMs: number) {
  const s = [...latencies].sort((a, b) => a - b)
  const at = (q: number) => s[Math.min(s.length - 1, Math.floor(q * s.length))] ?? 0
  return { ops_s: Math.round((s.length * 1000) / elapsedMs), p50_ms: +at(0.5).toFixed(3), p99_ms: +at(0.99).toFixed(3) }
}

async function drive(sql: Sql, mode: Mode, scopes: TenantScope[], n: number, concurrency: number) {
  const latencies: number[] = []
  let next = 0
  const started = performance.now()
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < n) {
        const scope = scopes[next++ % scopes.length] as TenantScope
        const t0 = performance.now()
        const rows = await run(sql, mode, scope)
        latencies.push(performance.now() - t0)
        if (rows.length !== 21) throw new Error(`${mode}: expected 21 rows, got ${rows.length}`)
      }
    }),
  )
  return summary(latencies, performance.now() - started)
}

async function main(): Promise<void> {
  const name = `saas_bench_tx_${randomBytes(4).toString('hex')}`
  const admin = postgres(adminUrl, { max: 1, onnotice: () => {} })
  await admin`create database ${admin(name)}`
  const url = adminUrl.replace(/\/[^/]*$/, `/${name}`)
  const owner = postgres(url, { max: 1, onnotice: () => {} })
  const sql = createPool(url, { max: 10, applicationName: 'bench-tenant-tx' })
  try {
    await migrate(owner)
    const scopes: TenantScope[] = []
    for (let i = 0; i < 100; i++) {
      const tenantId = randomUUID()
      const userId = randomUUID()
      scopes.push({ tenantId, userId, jti: randomUUID(), minRole: 'viewer' })
      await owner.begin(async (tx) => {
        await tx`select set_config('app.tenant_id', ${tenantId}, true)`
        await tx`insert into tenants (id, slug, name) values (${tenantId}, ${'bench-' + tenantId.slice(0, 8)}, 'Bench')`
        await tx`insert into users (tenant_id, id, email, password_hash, role) values (${tenantId}, ${userId}, 'bench@example.com', 'x', 'owner')`
        await tx`insert into projects (tenant_id, id, name) select ${tenantId}, gen_random_uuid(), 'project ' || g from generate_series(1, 200) g`
      })
    }
    await owner`analyze`
    for (const mode of modes) await drive(sql, mode, scopes, 500, 4) // warm-up: connections open, statements prepared

    const results: Record<string, ReturnType<typeof summary>> = {}
    for (let round = 1; round <= rounds; round++) {
      for (const concurrency of [1, 16]) {
        for (const mode of modes) results[`round ${round}, c=${concurrency}, ${mode}`] = await drive(sql, mode, scopes, iterations, concurrency)
      }
    }
    const version = (await owner<{ v: string }[]>`select current_setting('server_version') as v`)[0]?.v ?? '?'
    console.log(`${iterations} transactions per run (after warm-up), ${rounds} rounds alternating modes, pool of 10, PostgreSQL ${version} on localhost`)
    console.table(results)
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0
    for (const concurrency of [1, 16]) {
      const ops = (mode: Mode) => median(Array.from({ length: rounds }, (_, i) => results[`round ${i + 1}, c=${concurrency}, ${mode}`]?.ops_s ?? 0))
      console.log(`c=${concurrency}: median ops/s old ${ops('old')}, new ${ops('new')} (${(ops('new') / ops('old')).toFixed(2)} ×), read ${ops('read')} (${(ops('read') / ops('old')).toFixed(2)} ×)`)
    }
  } finally {
    await sql.end()
    await owner.end()
    await admin`drop database if exists ${admin(name)} with (force)`
    await admin.end()
  }
}

await main()
