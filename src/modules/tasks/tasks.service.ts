import type { Sql } from 'postgres'
import { uuidv7 } from 'uuidv7'
import { tenantScope } from '../../platform/access.ts'
import type { Principal } from '../../platform/access.ts'
import type { CursorCodec } from '../../platform/cursor.ts'
import { auditInsertFrom, recordAudit } from '../../platform/audit.ts'
import type { AuditContext } from '../../platform/audit.ts'
import { withTenant, withTenantBatch } from '../../platform/db/tenant.ts'
import { errors } from '../../platform/errors.ts'
import * as repo from './tasks.repo.ts'
import type { CreateTaskInput, ListTasksInput, TaskRow, UpdateTaskInput } from './tasks.schemas.ts'

export interface TasksDeps {
  readonly sql: Sql
  readonly cursors: CursorCodec
}


function toTask(row: repo.DbTask): TaskRow {
  return {
    id: row.id,
    project_id: row.project_id,
    title: row.title,
    description: row.description,
    status: row.status,
    assignee_id: row.assignee_id,
    due_date: row.due_date,
    created_at: row.created_at.toISOString(),
    updated_at: row.updated_at.toISOString(),
  }
}

/** A cursor is valid only for the list that issued it: same tenant, project, sort and filters. */
const cursorContext = (projectId: string, sort: string, q: ListTasksInput) => `tasks:${projectId}:${sort}:${q.status ?? ''}:${q.assignee_id ?? ''}`

/** Lists one project's tasks, newest first unless sorted otherwise; an unknown project is 404. */
export async function listTasks(deps: TasksDeps, actor: Principal, projectId: string, q: ListTasksInput) {
  const sort = q.sort ?? '-created_at'
  const limit = q.limit ?? 20
  const context = cursorContext(projectId, sort, q)
  const after = q.cursor ? deps.cursors.decode(actor.tid, context, q.cursor) : undefined
  const [refs, rows] = await withTenant(deps.sql, tenantScope(actor), (t) =>
    // Pipelined: one round trip for the existence check and the page.
    Promise.all([repo.checkReferences(t, { projectId }), repo.listTasks(t, { projectId, limit, status: q.status, assigneeId: q.assignee_id, sort, after })]),
  )
  if (!refs.project) throw errors.notFound('project')
  const items = rows.slice(0, limit)
  const last = items.at(-1)
  const next = rows.length > limit && last ? deps.cursors.encode(actor.tid, context, [last.sort_key, last.id]) : null
  return { items: items.map(toTask), next_cursor: next }
}

export async function getTask(deps: TasksDeps, actor: Principal, id: string): Promise<TaskRow> {
  const row = await withTenant(deps.sql, tenantScope(actor), (t) => repo.findTask(t, id))
  if (!row) throw errors.notFound('task')
  return toTask(row)
}

/** Creates a task in a project of the caller's tenant: unknown project 404, foreign assignee 422. */
export async function createTask(deps: TasksDeps, actor: Principal, projectId: string, input: CreateTaskInput, ctx?: AuditContext): Promise<TaskRow> {
  const id = uuidv7()
  // One round trip, one statement after the actor gate: the insert checks its own references and
  // writes its audit event in the same statement (withTenantBatch commits both at the batch's end).
  const [[created]] = await withTenantBatch(deps.sql, tenantScope(actor), (t) => [
    repo.insertTaskIfReferenced(t, id, projectId, input, (row) => auditInsertFrom(t, actor, 'task.created', { type: 'task', id }, ctx, { project_id: projectId }, row)),
  ])
  if (created) return toTask(created)
  // Nothing was written: say which reference is missing.
  const refs = await withTenant(deps.sql, tenantScope(actor), (t) => repo.checkReferences(t, { projectId, assigneeId: input.assignee_id ?? undefined }))
  if (!refs.project) throw errors.notFound('project')
  throw errors.invalidReference('assignee_id')
}

/** Updates a task; project_id moves it to another project of the same tenant. */
export async function updateTask(deps: TasksDeps, actor: Principal, id: string, input: UpdateTaskInput, ctx?: AuditContext): Promise<TaskRow> {
  const row = await withTenant(deps.sql, tenantScope(actor), async (t) => {
    if (input.project_id !== undefined || input.assignee_id) {
      const refs = await repo.checkReferences(t, { taskId: id, projectId: input.project_id, assigneeId: input.assignee_id ?? undefined })
      // The task's own absence wins: a bad reference must not be reported for a task the caller cannot see.
      if (!refs.task) throw errors.notFound('task')
      if (!refs.project) throw errors.invalidReference('project_id')
      if (!refs.assignee) throw errors.invalidReference('assignee_id')
    }
    const updated = await repo.updateTask(t, id, input)
    if (updated) await recordAudit(t, actor, 'task.updated', { type: 'task', id }, ctx, { fields: Object.keys(input) })
    return updated
  })
  if (!row) throw errors.notFound('task')
  return toTask(row)
}

export async function deleteTask(deps: TasksDeps, actor: Principal, id: string, ctx?: AuditContext): Promise<void> {
  const deleted = await withTenant(deps.sql, tenantScope(actor), async (t) => {
    const gone = await repo.deleteTask(t, id)
    if (gone) await recordAudit(t, actor, 'task.deleted', { type: 'task', id }, ctx)
    return gone
  })
  if (!deleted) throw errors.notFound('task')
}
