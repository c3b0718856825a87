import type { PendingQuery, Row } from 'postgres'
import type { TenantTx } from '../../platform/db/tenant.ts'
import type { CreateTaskInput, TaskRow, TaskSort, TaskStatus, UpdateTaskInput } from './tasks.schemas.ts'

export type DbTask = Omit<TaskRow, 'created_at' | 'updated_at'> & { created_at: Date; updated_at: Date; sort_key: string }

export interface ListOptions {
  projectId: string
  limit: number
  status: TaskStatus | undefined
  assigneeId: string | undefined
  sort: TaskSort
  /** [sort value, id] of the last row already returned. */
  after: readonly string[] | undefined
}

const columns = (t: TenantTx) => t.sql`id, project_id, title, description, status, assignee_id, due_date, created_at, updated_at`

/** Keyset pagination, one fixed SQL shape per allowed sort: no client text ever becomes SQL. */
function ordering(t: TenantTx, sort: TaskSort, after: readonly string[] | undefined) {
  const [v, id] = after ?? []
  const has = after !== undefined
  const { sql } = t
  const none = sql``
  // Undated tasks compare as 'infinity' (matches index tasks_tenant_project_due_idx).
  const due = sql`coalesce(due_date, 'infinity'::date)`
  switch (sort) {
    case 'created_at':
      return { key: sql`created_at::text`, where: has ? sql`and (created_at, id) > (${v ?? ''}::timestamptz, ${id ?? ''}::uuid)` : none, order: sql`order by created_at, id` }
    case '-created_at':
      return { key: sql`created_at::text`, where: has ? sql`and (created_at, id) < (${v ?? ''}::timestamptz, ${id ?? ''}::uuid)` : none, order: sql`order by created_at desc, id desc` }
    case 'due_date':
      return { key: sql`${due}::text`, where: has ? sql`and (${due}, id) > (${v ?? ''}::date, ${id ?? ''}::uuid)` : none, order: sql`order by ${due}, id` }
    case '-due_date':
      return { key: sql`${due}::text`, where: has ? sql`and (${due}, id) < (${v ?? ''}::date, ${id ?? ''}::uuid)` : none, order: sql`order by ${due} desc, id desc` }
  }
}

export async function listTasks(t: TenantTx, o: ListOptions): Promise<DbTask[]> {
  const by = ordering(t, o.sort, o.after)
  const status: PendingQuery<Row[]> = o.status ? t.sql`and status = ${o.status}` : t.sql``
  const assignee: PendingQuery<Row[]> = o.assigneeId ? t.sql`and assignee_id = ${o.assigneeId}::uuid` : t.sql``
  return t.sql<DbTask[]>`
    select ${columns(t)}, ${by.key} as sort_key
      from tasks
     where tenant_id = ${t.tenantId} and project_id = ${o.projectId}::uuid ${status} ${assignee} ${by.where}
     ${by.order}
     limit ${o.limit + 1}`
}

export interface References {
  task: boolean
  project: boolean
  assignee: boolean
}

/**
 * Whether each given id exists in this tenant (an id not given counts as present). Explicit,
 * so the answer names the bad field; the composite foreign keys still hold if a row vanishes meanwhile.
 */
export async function checkReferences(t: TenantTx, ids: { taskId?: string | undefined; projectId?: string | undefined; assigneeId?: string | undefined }): Promise<References> {
  const [row] = await t.sql<References[]>`
    select
      (${ids.taskId ?? null}::uuid is null or exists (select 1 from tasks where tenant_id = ${t.tenantId} and id = ${ids.taskId ?? null}::uuid)) as task,
      (${ids.projectId ?? null}::uuid is null or exists (select 1 from projects where tenant_id = ${t.tenantId} and id = ${ids.projectId ?? null}::uuid)) as project,
      (${ids.assigneeId ?? null}::uuid is null or exists (select 1 from users where tenant_id = ${t.tenantId} and id = ${ids.assigneeId ?? null}::uuid)) as assignee`
  return row ?? { task: false, project: false, assignee: false }
}

export async function findTask(t: TenantTx, id: string): Promise<DbTask | undefined> {
  const [row] = await t.sql<DbTask[]>`select ${columns(t)}, '' as sort_key from tasks where tenant_id = ${t.tenantId} and id = ${id}::uuid`
  return row
}

/**
 * Inserts the task only if its project (and assignee, when given) is in this tenant, and its audit
 * event with it, in one statement: `audit` builds the event's insert from `created`, the CTE that
 * holds the inserted row, so the event is written exactly when the task is. No row back means a
 * reference is missing; checkReferences() then says which (the rare path pays the extra round trip).
 */
export function insertTaskIfReferenced(t: TenantTx, id: string, projectId: string, input: CreateTaskInput, audit: (created: PendingQuery<Row[]>) => PendingQuery<Row[]>) {
  const assigneeId = input.assignee_id ?? null
  return t.sql<DbTask[]>`
    with created as (
      insert into tasks (id, project_id, title, description, status, assignee_id, due_date)
      select ${id}, p.id, ${input.title}, ${input.description ?? null}, ${input.status ?? 'todo'}, ${assigneeId}::uuid, ${input.due_date ?? null}::date
        from projects p
       where p.tenant_id = ${t.tenantId} and p.id = ${projectId}::uuid
         and (${assigneeId}::uuid is null or exists (select 1 from users u where u.tenant_id = ${t.tenantId} and u.id = ${assigneeId}::uuid))
      returning ${columns(t)}, '' as sort_key
    ), audited as (${audit(t.sql`created`)})
    select * from created`
}

/** Changes only the fields given; a field given as null is cleared. */
export async function updateTask(t: TenantTx, id: string, input: UpdateTaskInput): Promise<DbTask | undefined> {
  const [row] = await t.sql<DbTask[]>`
    update tasks set
      project_id = coalesce(${input.project_id ?? null}::uuid, project_id),
      title = coalesce(${input.title ?? null}, title),
      description = case when ${input.description !== undefined} then ${input.description ?? null} else description end,
      status = coalesce(${input.status ?? null}, status),
      assignee_id = case when ${input.assignee_id !== undefined} then ${input.assignee_id ?? null}::uuid else assignee_id end,
      due_date = case when ${input.due_date !== undefined} then ${input.due_date ?? null}::date else due_date end,
      updated_at = now()
    where tenant_id = ${t.tenantId} and id = ${id}::uuid
    returning ${columns(t)}, '' as sort_key`
  return row
}

export async function deleteTask(t: TenantTx, id: string): Promise<boolean> {
  const rows = await t.sql`delete from tasks where tenant_id = ${t.tenantId} and id = ${id}::uuid`
  return rows.count > 0
}
