import type { Sql } from 'postgres'

export interface RoleRisks {
  role: string
  superuser: boolean
  bypassRls: boolean
  ownsTable: boolean
}

/** What could let a role read past row-level security: superuser, BYPASSRLS, or owning a table. */
export async function inspectRole(sql: Sql, role?: string): Promise<RoleRisks> {
  const [row] = await sql<RoleRisks[]>`
    select r.rolname as role, r.rolsuper as superuser, r.rolbypassrls as "bypassRls",
           exists (select 1 from pg_class c join pg_namespace n on n.oid = c.relnamespace
                    where n.nspname = 'public' and c.relkind in ('r', 'p')
                      and pg_has_role(r.oid, c.relowner, 'MEMBER')) as "ownsTable"
      from pg_roles r where r.rolname = coalesce(${role ?? null}::text, current_user)`
  if (!row) throw new Error(`role ${role ?? 'current_user'} does not exist`)
  return row
}

export function describeRisks(r: RoleRisks): string | undefined {
  const risks = [r.superuser && 'is a superuser', r.bypassRls && 'has BYPASSRLS', r.ownsTable && 'owns tables'].filter(Boolean)
  return risks.length ? `the database role "${r.role}" ${risks.join(', ')} and could bypass row-level security` : undefined
}
