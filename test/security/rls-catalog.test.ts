import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import postgres from 'postgres'
import type { Sql } from 'postgres'
import { runtimeRole } from '../../src/platform/db/connect.ts'
import { migrate } from '../../src/platform/db/migrate.ts'
import { createTestDatabase } from '../helpers/app.ts'
import type { TestDatabase } from '../helpers/app.ts'

/**
 * Reads the catalog of a freshly migrated database: forgetting row-level security on a tenant
 * table, or giving the runtime role a way around it, fails here.
 */

interface TableRls {
  table: string
  enabled: boolean
  forced: boolean
  /** Policies whose USING reads app.tenant_id. */
  tenantPolicies: number
  /** Policies that apply to the runtime role (or PUBLIC) but do not read app.tenant_id. */
  openPolicies: string[]
}

/** Every problem with row-level security in schema public, one line each; empty means sound. */
export async function findRlsGaps(sql: Sql): Promise<string[]> {
  const rows = await sql<TableRls[]>`
    select c.relname as table,
           c.relrowsecurity as enabled,
           c.relforcerowsecurity as forced,
           (select count(*)::int from pg_policies p
             where p.schemaname = 'public' and p.tablename = c.relname
               and p.qual like '%current_setting(''app.tenant_id''%') as "tenantPolicies",
           coalesce((select array_agg(p.policyname::text order by p.policyname) from pg_policies p
             where p.schemaname = 'public' and p.tablename = c.relname
               and (p.roles && array['public', ${runtimeRole}]::name[])
               and (coalesce(p.qual, '') not like '%current_setting(''app.tenant_id''%'
                    or (p.cmd in ('INSERT', 'UPDATE', 'ALL') and coalesce(p.with_check, p.qual, '') not like '%current_setting(''app.tenant_id''%'))), '{}') as "openPolicies"
      from pg_class c
      join pg_namespace n on n.oid = c.relnamespace
     where n.nspname = 'public' and c.relkind in ('r', 'p')
       and (c.relname = 'tenants'
            or exists (select 1 from pg_attribute a where a.attrelid = c.oid and a.attname = 'tenant_id' and a.attnum > 0 and not a.attisdropped))
     order by c.relname`
  const gaps: string[] = []
  for (const r of rows) {
    if (!r.enabled) gaps.push(`${r.table}: row-level security is not enabled`)
    if (!r.forced) gaps.push(`${r.table}: row-level security is not forced`)
    if (r.tenantPolicies === 0) gaps.push(`${r.table}: no policy reads current_setting('app.tenant_id')`)
    for (const p of r.openPolicies) gaps.push(`${r.table}: policy ${p} applies to ${runtimeRole} without reading app.tenant_id`)
  }
  return gaps
}

/** Tenant tables the checker found, so that a broken query cannot pass by finding nothing. */
async function tenantTables(sql: Sql): Promise<string[]> {
  const rows = await sql<{ table: string }[]>`
    select distinct c.relname as table from pg_class c
      join pg_namespace n on n.oid = c.relnamespace
      join pg_attribute a on a.attrelid = c.oid and a.attname = 'tenant_id' and not a.attisdropped
     where n.nspname = 'public' and c.relkind in ('r', 'p') order by 1`
  return rows.map((r) => r.table)
}

describe('row-level security in the catalog', () => {
  let db: TestDatabase
  let sql: Sql

  before(async () => {
    db = await createTestDatabase()
    sql = postgres(db.url, { max: 1, onnotice: () => {} })
    await migrate(sql)
  })
  after(async () => {
    await sql.end()
    await db.drop()
  })

  it('when the migrations have run, then every tenant table (and tenants) has RLS enabled and forced and a policy on app.tenant_id', async () => {
    const tables = await tenantTables(sql)
    for (const expected of ['users', 'projects', 'tasks', 'refresh_tokens', 'revoked_tokens']) assert.ok(tables.includes(expected), `${expected} not found`)
    assert.deepEqual(await findRlsGaps(sql), [])
  })

  it('when the runtime role is inspected, then it is not a superuser, has no BYPASSRLS, cannot log in on its own and owns no table', async () => {
    const [role] = await sql<{ rolsuper: boolean; rolbypassrls: boolean; rolcanlogin: boolean; rolcreaterole: boolean; rolcreatedb: boolean }[]>`
      select rolsuper, rolbypassrls, rolcanlogin, rolcreaterole, rolcreatedb from pg_roles where rolname = ${runtimeRole}`
    assert.ok(role, `role ${runtimeRole} missing`)
    assert.deepEqual(role, { rolsuper: false, rolbypassrls: false, rolcanlogin: false, rolcreaterole: false, rolcreatedb: false })
    const owned = await sql`
      select c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace
       where n.nspname = 'public' and pg_has_role(${runtimeRole}, c.relowner, 'MEMBER')`
    assert.deepEqual([...owned], [])
  })

  it('when the runtime role is inspected, then it cannot change schema_migrations and cannot create in schema public', async () => {
    // SELECT is granted by migrate.ts so that a production start can check, as the runtime role,
    // that no migration is pending or edited; nothing else is.
    for (const privilege of ['INSERT', 'UPDATE', 'DELETE', 'TRUNCATE', 'REFERENCES', 'TRIGGER']) {
      const [row] = await sql<{ ok: boolean }[]>`select has_table_privilege(${runtimeRole}, 'public.schema_migrations', ${privilege}) as ok`
      assert.equal(row?.ok, false, privilege)
    }
    const [create] = await sql<{ ok: boolean }[]>`select has_schema_privilege(${runtimeRole}, 'public', 'CREATE') as ok`
    assert.equal(create?.ok, false)
  })

  it('when the runtime role is inspected, then it cannot TRUNCATE a tenant table (TRUNCATE ignores RLS)', async () => {
    for (const table of await tenantTables(sql)) {
      const [row] = await sql<{ ok: boolean }[]>`select has_table_privilege(${runtimeRole}, ${`public.${table}`}, 'TRUNCATE') as ok`
      assert.equal(row?.ok, false, table)
    }
  })

  it('when a new table with tenant_id is created without RLS, then the checker flags it, and stops once RLS is complete', async () => {
    await sql`create table rls_probe (tenant_id uuid not null, id uuid not null, primary key (tenant_id, id))`
    try {
      const gaps = await findRlsGaps(sql)
      assert.ok(gaps.includes('rls_probe: row-level security is not enabled'), gaps.join('\n'))
      assert.ok(gaps.includes('rls_probe: row-level security is not forced'), gaps.join('\n'))
      assert.ok(gaps.includes("rls_probe: no policy reads current_setting('app.tenant_id')"), gaps.join('\n'))

      await sql`alter table rls_probe enable row level security`
      assert.ok((await findRlsGaps(sql)).includes('rls_probe: row-level security is not forced'))

      await sql`alter table rls_probe force row level security`
      // A policy that lets the runtime role read everything is as bad as none.
      await sql`create policy wide_open on rls_probe to saas_runtime using (true)`
      const open = await findRlsGaps(sql)
      assert.ok(open.includes("rls_probe: no policy reads current_setting('app.tenant_id')"), open.join('\n'))
      assert.ok(open.includes('rls_probe: policy wide_open applies to saas_runtime without reading app.tenant_id'), open.join('\n'))

      await sql`drop policy wide_open on rls_probe`
      await sql`create policy tenant_isolation on rls_probe
        using (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid)
        with check (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid)`
      assert.deepEqual(await findRlsGaps(sql), [])
    } finally {
      await sql`drop table if exists rls_probe`
    }
  })
})
