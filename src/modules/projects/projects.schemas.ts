import { Type } from 'typebox'
import type { Static } from 'typebox'
import { ListQueryBase, Timestamp, Uuid, noNul, page, strict } from '../../platform/schemas.ts'

const Name = Type.String({ minLength: 1, maxLength: 200, pattern: noNul })
const Description = Type.String({ maxLength: 10_000, pattern: noNul })
const Status = Type.Union([Type.Literal('active'), Type.Literal('archived')])

export const Project = Type.Object(
  {
    id: Uuid,
    name: Name,
    description: Type.Union([Description, Type.Null()]),
    status: Status,
    created_at: Timestamp,
    updated_at: Timestamp,
  },
  strict,
)
export const ProjectPage = page(Project)

export const CreateProject = Type.Object({ name: Name, description: Type.Optional(Type.Union([Description, Type.Null()])), status: Type.Optional(Status) }, strict)
export const UpdateProject = Type.Object(
  { name: Type.Optional(Name), description: Type.Optional(Type.Union([Description, Type.Null()])), status: Type.Optional(Status) },
  { ...strict, minProperties: 1 },
)
export const projectSorts = ['created_at', '-created_at', 'name', '-name'] as const
export const ListProjectsQuery = Type.Object(
  {
    ...ListQueryBase,
    status: Type.Optional(Status),
    sort: Type.Optional(Type.Union(projectSorts.map((s) => Type.Literal(s)), { default: '-created_at' })),
  },
  strict,
)

export type ProjectRow = Static<typeof Project>
export type CreateProjectInput = Static<typeof CreateProject>
export type UpdateProjectInput = Static<typeof UpdateProject>
export type ListProjectsInput = Static<typeof ListProjectsQuery>
export type ProjectSort = (typeof projectSorts)[number]
