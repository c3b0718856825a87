import { Type } from 'typebox'
import type { Static } from 'typebox'
import { ListQueryBase, Timestamp, Uuid, page, strict, noNul } from '../../platform/schemas.ts'

/** PostgreSQL cannot store U+0000 in text: refuse it here, naming the field. */

const Title = Type.String({ minLength: 1, maxLength: 500, pattern: noNul })
const Description = Type.String({ maxLength: 10_000, pattern: noNul })
const Status = Type.Union([Type.Literal('todo'), Type.Literal('doing'), Type.Literal('done')])
const DueDate = Type.String({ format: 'date', maxLength: 10, pattern: '^(?!0000)[0-9]{4}-', description: 'Calendar date, YYYY-MM-DD (years 0001–9999)' })

export const TaskProjectParams = Type.Object({ tenantId: Uuid, projectId: Uuid }, strict)

export const Task = Type.Object(
  {
    id: Uuid,
    project_id: Uuid,
    title: Title,
    description: Type.Union([Description, Type.Null()]),
    status: Status,
    assignee_id: Type.Union([Uuid, Type.Null()]),
    due_date: Type.Union([DueDate, Type.Null()]),
    created_at: Timestamp,
    updated_at: Timestamp,
  },
  strict,
)
export const TaskPage = page(Task)

export const CreateTask = Type.Object(
  {
    title: Title,
    description: Type.Optional(Type.Union([Description, Type.Null()])),
    status: Type.Optional(Status),
    assignee_id: Type.Optional(Type.Union([Uuid, Type.Null()], { description: 'A user of this tenant (else 422 invalid_reference)' })),
    due_date: Type.Optional(Type.Union([DueDate, Type.Null()])),
  },
  strict,
)
export const UpdateTask = Type.Object(
  {
    project_id: Type.Optional({ ...Uuid, description: 'Moves the task to another project of this tenant (else 422 invalid_reference)' }),
    title: Type.Optional(Title),
    description: Type.Optional(Type.Union([Description, Type.Null()])),
    status: Type.Optional(Status),
    assignee_id: Type.Optional(Type.Union([Uuid, Type.Null()], { description: 'A user of this tenant (else 422 invalid_reference); null unassigns' })),
    due_date: Type.Optional(Type.Union([DueDate, Type.Null()])),
  },
  { ...strict, minProperties: 1 },
)

/** Tasks without a due date sort after every dated task in ascending order (before, descending). */
export const taskSorts = ['created_at', '-created_at', 'due_date', '-due_date'] as const
export const ListTasksQuery = Type.Object(
  {
    ...ListQueryBase,
    status: Type.Optional(Status),
    assignee_id: Type.Optional(Uuid),
    sort: Type.Optional(Type.Union(taskSorts.map((s) => Type.Literal(s)), { default: '-created_at' })),
  },
  strict,
)

export type TaskRow = Static<typeof Task>
export type CreateTaskInput = Static<typeof CreateTask>
export type UpdateTaskInput = Static<typeof UpdateTask>
export type ListTasksInput = Static<typeof ListTasksQuery>
export type TaskSort = (typeof taskSorts)[number]
export type TaskStatus = Static<typeof Status>
