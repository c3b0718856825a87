import type { PendingQuery, Row } from 'postgres'
import type { TenantTx } from '../../platform/db/tenant.ts'
import type { CreateProjectInput, ProjectRow, ProjectSort, UpdateProjectInput } from './projects.schemas.ts'

type DbProject = Omit<ProjectRow, 'created_at' | 'updated_at'> & { created_at: Date; updated_at: Date; sort_key: string }

export interface ListOptions {
  limit: number
  status: 'active' | 'archived' | undefined
  sort: ProjectSort
  /** [sort value, id] of the last row already returned. */
  after: readonly string[] | undefined
}

/** Keyset pagination, one fixed SQL shape per allowed sort: no client text ever becomes SQL. */
function ordering(t: TenantTx, sort: ProjectSort, after: readonly string[] | undefined) {
  const [v, id] = after ?? []
  const has = after !== undefined
  const { sql } = t
  const none = sql``
  switch (sort) {
    case 'created_at':
      return { key: sql`created_at::text`, where: has ? sql`and (created_at, id) > (${v ?? ''}::timestamptz, ${id ?? ''}::uuid)` : none, order: sql`order by created_at, id` }
    case '-created_at':
      return { key: sql`created_at::text`, where: has ? sql`and (created_at, id) < (${v ?? ''}::timestamptz, ${id ?? ''}::uuid)` : none, order: sql`order by created_at desc, id desc` }
    case 'name':
      return { key: sql`name`, where: has ? sql`and (name, id) > (${v ?? ''}, ${id ?? ''}::uuid)` : none, order: sql`order by name, id` }
    case '-name':
      return { key: sql`name`, where: has ? sql`and (name, id) < (${v ?? ''}, ${id ?? ''}::uuid)` : none, order: sql`order by name desc, id desc` }
  }
}

/** Returns the query unrun, so withTenantRead() can send it in the same batch as the tenant setting. */
export function listProjects(t: TenantTx, o: ListOptions) {
  const by = ordering(t, o.sort, o.after)
  const status: PendingQuery<Row[]> = o.status ? t.sql`and status = ${o.status}` : t.sql``
  return t.sql<DbProject[]>`
    select id, name, description, status, created_at, updated_at, ${by.key} as sort_key
      from projects
     where tenant_id = ${t.tenantId} ${status} ${by.where}
     ${by.order}
     limit ${o.limit + 1}`
}

/** Returns the query unrun (one row or none), for withTenantRead(). */
export function findProjectQuery(t: TenantTx, id: string) {
  return t.sql<DbProject[]>`
    select id, name, description, status, created_at, updated_at, '' as sort_key
      from projects where tenant_id = ${t.tenantId} and id = ${id}`
}

export async function findProject(t: TenantTx, id: string): Promise<DbProject | undefined> {
  const [row] = await findProjectQuery(t, id)
  return row
}

export async function insertProject(t: TenantTx, id: string, input: CreateProjectInput): Promise<DbProject> {
  const [row] = await t.sql<DbProject[]>`
    insert into projects (id, name, description, status)
    values (${id}, ${input.name}, ${input.description ?? null}, ${input.status ?? 'active'})
    returning id, name, description, status, created_at, updated_at, '' as sort_key`
  if (!row) throw new Error('insert returned no row')
  return row
}

export async function updateProject(t: TenantTx, id: string, input: UpdateProjectInput): Promise<DbProject | undefined> {
  const [row] = await t.sql<DbProject[]>`
    update projects set
      name = coalesce(${input.name ?? null}, name),
      description = case when ${input.description !== undefined} then ${input.description ?? null} else description end,
      status = coalesce(${input.status ?? null}, status),
      updated_at = now()
    where tenant_id = ${t.tenantId} and id = ${id}
    returning id, name, description, status, created_at, updated_at, '' as sort_key`
  return row
}

export async function deleteProject(t: TenantTx, id: string): Promise<boolean> {
  const rows = await t.sql`delete from projects where tenant_id = ${t.tenantId} and id = ${id}`
  return rows.count > 0
}
