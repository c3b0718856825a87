import { uuidv7 } from 'uuidv7'
import { tenantScope } from '../../platform/access.ts'
import type { Principal } from '../../platform/access.ts'
import type { CursorCodec } from '../../platform/cursor.ts'
import { recordAudit } from '../../platform/audit.ts'
import type { AuditContext } from '../../platform/audit.ts'
import { withTenant, withTenantRead } from '../../platform/db/tenant.ts'
import type { Sql } from 'postgres'
import { errors } from '../../platform/errors.ts'
import * as repo from './projects.repo.ts'
import type { CreateProjectInput, ListProjectsInput, ProjectRow, UpdateProjectInput } from './projects.schemas.ts'

export interface ProjectsDeps {
  readonly sql: Sql
  readonly cursors: CursorCodec
}


function toProject(row: Awaited<ReturnType<typeof repo.findProject>> & object): ProjectRow {
  return {
    id: row.id,
    name: row.name,
    description: row.description,
    status: row.status,
    created_at: row.created_at.toISOString(),
    updated_at: row.updated_at.toISOString(),
  }
}

/** Lists the caller's projects, newest first unless sorted otherwise. */
export async function listProjects(deps: ProjectsDeps, actor: Principal, q: ListProjectsInput) {
  const sort = q.sort ?? '-created_at'
  const limit = q.limit ?? 20
  const after = q.cursor ? deps.cursors.decode(actor.tid, `projects:${sort}:${q.status ?? ''}`, q.cursor) : undefined
  // Reads take one round trip: settings with the actor gate, then the query, in one batch (withTenantRead).
  const rows = await withTenantRead(deps.sql, tenantScope(actor), (t) => repo.listProjects(t, { limit, status: q.status, sort, after }))
  const items = rows.slice(0, limit)
  const last = items.at(-1)
  const next = rows.length > limit && last ? deps.cursors.encode(actor.tid, `projects:${sort}:${q.status ?? ''}`, [last.sort_key, last.id]) : null
  return { items: items.map(toProject), next_cursor: next }
}

export async function getProject(deps: ProjectsDeps, actor: Principal, id: string): Promise<ProjectRow> {
  const [row] = await withTenantRead(deps.sql, tenantScope(actor), (t) => repo.findProjectQuery(t, id))
  if (!row) throw errors.notFound('project')
  return toProject(row)
}

export async function createProject(deps: ProjectsDeps, actor: Principal, input: CreateProjectInput, ctx?: AuditContext): Promise<ProjectRow> {
  const row = await withTenant(deps.sql, tenantScope(actor), async (t) => {
    const created = await repo.insertProject(t, uuidv7(), input)
    await recordAudit(t, actor, 'project.created', { type: 'project', id: created.id }, ctx)
    return created
  })
  return toProject(row)
}

export async function updateProject(deps: ProjectsDeps, actor: Principal, id: string, input: UpdateProjectInput, ctx?: AuditContext): Promise<ProjectRow> {
  const row = await withTenant(deps.sql, tenantScope(actor), async (t) => {
    const updated = await repo.updateProject(t, id, input)
    // Field names only: the values are the tenant's data, not audit facts.
    if (updated) await recordAudit(t, actor, 'project.updated', { type: 'project', id }, ctx, { fields: Object.keys(input) })
    return updated
  })
  if (!row) throw errors.notFound('project')
  return toProject(row)
}

export async function deleteProject(deps: ProjectsDeps, actor: Principal, id: string, ctx?: AuditContext): Promise<void> {
  const deleted = await withTenant(deps.sql, tenantScope(actor), async (t) => {
    const gone = await repo.deleteProject(t, id)
    if (gone) await recordAudit(t, actor, 'project.deleted', { type: 'project', id }, ctx)
    return gone
  })
  if (!deleted) throw errors.notFound('project')
}
