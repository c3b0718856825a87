import postgres from 'postgres'
import type { Sql } from 'postgres'

/**
 * Bulk-loads synthetic tenants, fast: set-based INSERT … SELECT over generate_series, as the owner
 * (a superuser, so RLS does not apply), in batches on two connections. Ids are built from the
 * counters, so rows arrive in key order and every index grows at its right edge. The rows are
 * consistent by construction (every task's project exists in its tenant), so the load skips the
 * foreign-key triggers (session_replication_role = replica, a superuser setting, this session
 * only) and waits for no WAL flush (synchronous_commit = off, this session only). The service's
 * own tables, constraints and indexes are untouched.
 */
export async function bulkLoad(opts: {
  ownerUrl: string
  tenants: number
  projects: number
  tasks: number
  batchTenants?: number
  onProgress?: (doneTenants: number) => void
}): Promise<{ seconds: number }> {
  const started = Date.now()
  const sql = postgres(opts.ownerUrl, {
    max: 2,
    onnotice: () => {},
    connection: { session_replication_role: 'replica', synchronous_commit: 'off' },
  })
  try {
    const [hash] = await sql<{ password_hash: string }[]>`select password_hash from users limit 1`
    if (!hash) throw new Error('bulkLoad needs the seeded users first (it reuses their password hash)')
    const batch = opts.batchTenants ?? 50
    const { projects: P, tasks: T } = opts
    let next = 1
    let done = 0
    const worker = async () => {
      while (next <= opts.tenants) {
        const a = next
        const b = Math.min(opts.tenants, a + batch - 1)
        next = b + 1
        await loadBatch(sql, a, b, P, T, hash.password_hash)
        done += b - a + 1
        opts.onProgress?.(done)
      }
    }
    await Promise.all([worker(), worker()])
    await sql`vacuum analyze tenants`
    await sql`vacuum analyze users`
    await sql`vacuum analyze projects`
    await sql`vacuum analyze tasks`
    return { seconds: (Date.now() - started) / 1000 }
  } finally {
    await sql.end({ timeout: 5 })
  }
}

async function loadBatch(sql: Sql, a: number, b: number, P: number, T: number, passwordHash: string): Promise<void> {
  await sql.begin(async (tx) => {
    await tx`
      insert into tenants (id, slug, name)
      select ('a0000000-0000-7000-8000-' || lpad(to_hex(k), 12, '0'))::uuid, 'scale-' || k, 'Scale tenant ' || k
        from generate_series(${a}::int, ${b}::int) k`
    await tx`
      insert into users (tenant_id, id, email, password_hash, role)
      select ('a0000000-0000-7000-8000-' || lpad(to_hex(k), 12, '0'))::uuid,
             ('b0000000-0000-7000-8000-' || lpad(to_hex(k), 12, '0'))::uuid,
             'owner@scale-' || k || '.example.com', ${passwordHash}, 'owner'
        from generate_series(${a}::int, ${b}::int) k`
    if (P === 0) return
    await tx`
      insert into projects (tenant_id, id, name, status, created_at, updated_at)
      select ('a0000000-0000-7000-8000-' || lpad(to_hex(k), 12, '0'))::uuid,
             (lpad(to_hex(k), 8, '0') || '-' || lpad(to_hex(p), 4, '0') || '-7000-8000-000000000000')::uuid,
             'Project ' || p, case when p % 5 = 0 then 'archived' else 'active' end,
             now() - make_interval(secs => ${P}::int - p), now() - make_interval(secs => ${P}::int - p)
        from generate_series(${a}::int, ${b}::int) k cross join generate_series(1, ${P}::int) p
       order by 1, 2`
    if (T === 0) return
    await tx`
      insert into tasks (tenant_id, id, project_id, title, status)
      select ('a0000000-0000-7000-8000-' || lpad(to_hex(k), 12, '0'))::uuid,
             (lpad(to_hex(k), 8, '0') || '-' || lpad(to_hex(p), 4, '0') || '-7000-8000-' || lpad(to_hex(j), 12, '0'))::uuid,
             (lpad(to_hex(k), 8, '0') || '-' || lpad(to_hex(p), 4, '0') || '-7000-8000-000000000000')::uuid,
             'Task ' || ((p - 1) * ${T}::int + j), (array['todo', 'doing', 'done'])[((p * ${T}::int + j) % 3) + 1]
        from generate_series(${a}::int, ${b}::int) k cross join generate_series(1, ${P}::int) p cross join generate_series(1, ${T}::int) j`
  })
}

export async function tableCounts(ownerUrl: string): Promise<{ tenants: number; projects: number; tasks: number }> {
  const sql = postgres(ownerUrl, { max: 1, onnotice: () => {} })
  try {
    const [r] = await sql<{ tenants: number; projects: number; tasks: number }[]>`
      select (select count(*) from tenants)::int as tenants, (select count(*) from projects)::int as projects, (select count(*) from tasks)::int as tasks`
    return r ?? { tenants: 0, projects: 0, tasks: 0 }
  } finally {
    await sql.end({ timeout: 5 })
  }
}

export interface Explained {
  query: string
  plan: string
  /** Every scan in the plan is an index scan (no Seq Scan, no Bitmap Heap Scan over the whole table). */
  indexOnly: boolean
  indexes: string[]
  /** One of the hot queries the scale target names (list, get); false: shown for information. */
  hot: boolean
}

/**
 * EXPLAIN (ANALYZE, BUFFERS) of the hot queries, run as the service runs them: connected as the
 * plain login role, inside one transaction with `role` = saas_runtime and app.tenant_id set with
 * set_config(…, true). The SQL mirrors src/modules/projects/projects.repo.ts (listProjects with the
 * default sort -created_at, findProject) and the actor gate of setContext in src/platform/db/tenant.ts.
 */
export async function explainHotQueries(runtimeUrl: string, tenantId: string, projectId: string): Promise<Explained[]> {
  const sql = postgres(runtimeUrl, { max: 1, onnotice: () => {} })
  const out: Explained[] = []
  const summarise = (query: string, rows: Record<string, string>[], hot = true): Explained => {
    const plan = rows.map((r) => r['QUERY PLAN'] ?? '').join('\n')
    const indexes = [...plan.matchAll(/Index (?:Only )?Scan(?: Backward)? using (\S+)/g)].map((m) => m[1] ?? '')
    return { query, plan, indexOnly: !/Seq Scan/.test(plan) && indexes.length > 0, indexes, hot }
  }
  try {
    await sql.begin(async (tx) => {
      await tx`select set_config('role', 'saas_runtime', true), set_config('app.tenant_id', ${tenantId}, true)`
      const [user] = await tx<{ id: string }[]>`select id from users where tenant_id = ${tenantId} limit 1`
      const userId = user?.id ?? null
      const list = await tx<Record<string, string>[]>`
        explain (analyze, buffers)
        select id, name, description, status, created_at, updated_at, created_at::text as sort_key
          from projects
         where tenant_id = ${tenantId}
         order by created_at desc, id desc
         limit ${21}`
      out.push(summarise('list: projects of a tenant, newest first, limit 21', list))
      const get = await tx<Record<string, string>[]>`
        explain (analyze, buffers)
        select id, name, description, status, created_at, updated_at, '' as sort_key
          from projects where tenant_id = ${tenantId} and id = ${projectId}`
      out.push(summarise('get: one project by (tenant_id, id)', get))
      const actor = await tx<Record<string, string>[]>`
        explain (analyze, buffers)
        select (select coalesce((
                  select case
                           when ${userId}::uuid is not null and u.disabled is distinct from false then tenant_actor_refuse('invalid_token')
                           when exists (select 1 from revoked_tokens r where r.tenant_id = t.id and r.jti = ${'00000000-0000-7000-8000-000000000000'}::uuid) then tenant_actor_refuse('token_revoked')
                           when ${'member'}::text is not null and not coalesce(u.role = any (string_to_array(${'owner,admin,member'}::text, ',')), false) then tenant_actor_refuse('forbidden')
                           when t.status <> 'active' then tenant_actor_refuse('tenant_suspended')
                           else true
                         end
                    from tenants t left join users u on u.tenant_id = t.id and u.id = ${userId}::uuid
                   where t.id = ${tenantId}::uuid), tenant_actor_refuse('invalid_token'))) as actor_ok`
      // revoked_tokens is empty in the benchmark, so its probe may plan as a scan of an empty table.
      out.push(summarise('actor gate (every tenant transaction): tenant status, user, role, durable revocation', actor, false))
    })
  } finally {
    await sql.end({ timeout: 5 })
  }
  return out
}
