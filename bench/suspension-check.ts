/**
 * What does the tenant-status (suspension) check cost on the hot path?
 *
 *   node --import tsx bench/suspension-check.ts [iterations]
 *
 * withTenant() checks the actor in one statement pipelined with the set_config calls: the tenant's
 * status, the user's role and enabled flag, and the durable revocation list. The status check is
 * the `tenants` row that statement reads. This script times, on a throwaway database (PostgreSQL at
 * TEST_DATABASE_ADMIN_URL, default postgres://postgres@127.0.0.1:5432/postgres):
 *   1. the actor-check statement as withTenant runs it,
 *   2. the same statement without the tenants row (no suspension check),
 *   3. a 20-row project list (what the request is for),
 *   4. a whole withTenant transaction with the list, and the same transaction without any actor check,
 * and prints the server-side plan time of (1) and (2) from EXPLAIN ANALYZE.
 */
import { randomBytes, randomUUID } from 'node:crypto'
import { performance } from 'node:perf_hooks'
import postgres from 'postgres'
import type { Sql } from 'postgres'
import { runtimeRole } from '../src/platform/db/connect.ts'
import { migrate } from '../src/platform/db/migrate.ts'
import { withTenant } from '../src/platform/db/tenant.ts'

const iterations = Number(process.argv[2] ?? 2000)
const adminUrl = process.env.TEST_DATABASE_ADMIN_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres'

function stats(samples: number[]) {
  const s = [...samples].sort((a, b) => a - b)
  const at = (q: number) => s[Math.min(s.length - 1, Math.floor(q * s.length))] ?? 0
  const mean = s.reduce((a, b) => a + b, 0) / s.length
  return { mean_us: Math.round(mean * 1000), p50_us: Math.round(at(0.5) * 1000), p99_us: Math.round(at(0.99) * 1000) }
}

async function time(n: number, fn: () => Promise<unknown>): Promise<number[]> {
  for (let i = 0; i < Math.min(200, n); i++) await fn() // warm-up: plans cached, pages in memory
  const out: number[] = []
  for (let i = 0; i < n; i++) {
    const start = performance.now()
    await fn()
    out.push(performance.now() - start)
  }
  return out
}

async function main(): Promise<void> {
  const name = `saas_bench_${randomBytes(4).toString('hex')}`
  const admin = postgres(adminUrl, { max: 1, onnotice: () => {} })
  await admin`create database ${admin(name)}`
  const sql: Sql = postgres(adminUrl.replace(/\/[^/]*$/, `/${name}`), { max: 4, onnotice: () => {} })
  try {
    await migrate(sql)
    const tenantId = randomUUID()
    const userId = randomUUID()
    const jti = randomUUID()
    await sql`insert into tenants (id, slug, name) values (${tenantId}, ${'bench-' + tenantId.slice(0, 8)}, 'Bench')`
    await sql`insert into users (tenant_id, id, email, password_hash, role) values (${tenantId}, ${userId}, 'bench@example.com', 'x', 'owner')`
    // Other tenants, so that the tenants and users tables are not trivially small.
    await sql`insert into tenants (id, slug, name) select gen_random_uuid(), 'other-' || g, 'Other' from generate_series(1, 5000) g`
    await sql`insert into projects (tenant_id, id, name) select ${tenantId}, gen_random_uuid(), 'project ' || g from generate_series(1, 200) g`
    await sql`analyze`

    const actorCheck = (tx: Sql) => tx`
      select t.status, u.role as user_role, not u.disabled as user_ok,
             exists (select 1 from revoked_tokens r where r.tenant_id = t.id and r.jti = ${jti}::uuid) as revoked
        from tenants t left join users u on u.tenant_id = t.id and u.id = ${userId}::uuid
       where t.id = ${tenantId}::uuid`
    const actorCheckWithoutStatus = (tx: Sql) => tx`
      select u.role as user_role, not u.disabled as user_ok,
             exists (select 1 from revoked_tokens r where r.tenant_id = ${tenantId}::uuid and r.jti = ${jti}::uuid) as revoked
        from users u where u.tenant_id = ${tenantId}::uuid and u.id = ${userId}::uuid`
    const list = (tx: Sql) => tx`select id, name, created_at from projects where tenant_id = ${tenantId} order by created_at desc, id desc limit 21`

    // Statements alone, as the runtime role with the tenant set (one long transaction, no commit cost).
    const results: Record<string, ReturnType<typeof stats>> = {}
    const plans: Record<string, string> = {}
    await sql.begin(async (tx) => {
      await tx`select set_config('role', ${runtimeRole}, true), set_config('app.tenant_id', ${tenantId}, true)`
      const t = tx as unknown as Sql
      results['1. actor check (as withTenant runs it)'] = stats(await time(iterations, () => actorCheck(t)))
      results['2. actor check without the tenant status'] = stats(await time(iterations, () => actorCheckWithoutStatus(t)))
      results['3. project list, 20 rows'] = stats(await time(iterations, () => list(t)))
      const explain = async (query: postgres.PendingQuery<postgres.Row[]>) => {
        const rows = await tx<{ 'QUERY PLAN': string }[]>`explain (analyze, timing on) ${query}`
        return rows.map((r) => r['QUERY PLAN']).filter((l) => /Execution Time|Planning Time/.test(l)).join('; ')
      }
      plans['1. actor check'] = await explain(actorCheck(t))
      plans['2. without status'] = await explain(actorCheckWithoutStatus(t))
    })

    // Whole transactions: what a request pays.
    const scope = { tenantId, userId, jti, minRole: 'viewer' as const }
    results['4a. withTenant + list (check as is)'] = stats(await time(iterations, () => withTenant(sql, scope, (t) => list(t.sql as unknown as Sql))))
    results['4b. same transaction, no actor check at all'] = stats(
      await time(iterations, () =>
        sql.begin(async (tx) => {
          await tx`select set_config('role', ${runtimeRole}, true), set_config('app.tenant_id', ${tenantId}, true)`
          return list(tx as unknown as Sql)
        }),
      ),
    )
    console.log(`iterations: ${iterations} (after 200 warm-up), PostgreSQL ${(await sql<{ v: string }[]>`select current_setting('server_version') as v`)[0]?.v ?? '?'} on localhost`)
    console.table(results)
    console.log('EXPLAIN ANALYZE (server side):')
    for (const [k, v] of Object.entries(plans)) console.log(`  ${k}: ${v}`)
  } finally {
    await sql.end()
    await admin`drop database if exists ${admin(name)} with (force)`
    await admin.end()
  }
}

await main()
