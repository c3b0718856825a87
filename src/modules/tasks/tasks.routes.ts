import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { principalOf } from '../../platform/access.ts'
import { auditContext } from '../../platform/audit.ts'
import type { Deps } from '../../platform/deps.ts'
import { TenantItemParams, errorResponses } from '../../platform/schemas.ts'
import { CreateTask, ListTasksQuery, Task, TaskPage, TaskProjectParams, UpdateTask } from './tasks.schemas.ts'
import * as service from './tasks.service.ts'

const read = { access: { kind: 'tenant', permission: 'tasks:read' } } as const
const write = { access: { kind: 'tenant', permission: 'tasks:write' } } as const
const tags = ['tasks']
const invalidReference = { 422: 'A referenced id (project_id, assignee_id) is not in this tenant (invalid_reference)' }

export const tasksRoutes: FastifyPluginAsyncTypebox<{ deps: Deps }> = async (app, { deps }) => {
  const d = { sql: deps.db.sql, cursors: deps.cursors }

  app.get('/:tenantId/projects/:projectId/tasks', {
    config: read,
    schema: { tags, summary: "List a project's tasks", params: TaskProjectParams, querystring: ListTasksQuery, response: { 200: TaskPage, ...errorResponses('tenant') } },
  }, async (req) => service.listTasks(d, principalOf(req), req.params.projectId, req.query))

  app.post('/:tenantId/projects/:projectId/tasks', {
    config: write,
    schema: { tags, summary: 'Create a task in a project', params: TaskProjectParams, body: CreateTask, response: { 201: Task, ...errorResponses('tenant', invalidReference) } },
  }, async (req, reply) => {
    const task = await service.createTask(d, principalOf(req), req.params.projectId, req.body, auditContext(req))
    return reply.code(201).header('Location', `/v1/tenants/${req.params.tenantId}/tasks/${task.id}`).send(task)
  })

  app.get('/:tenantId/tasks/:id', {
    config: read,
    schema: { tags, summary: 'Get a task', params: TenantItemParams, response: { 200: Task, ...errorResponses('tenant') } },
  }, async (req) => service.getTask(d, principalOf(req), req.params.id))

  app.patch('/:tenantId/tasks/:id', {
    config: write,
    schema: { tags, summary: 'Update or move a task', params: TenantItemParams, body: UpdateTask, response: { 200: Task, ...errorResponses('tenant', invalidReference) } },
  }, async (req) => service.updateTask(d, principalOf(req), req.params.id, req.body, auditContext(req)))

  app.delete('/:tenantId/tasks/:id', {
    config: write,
    schema: { tags, summary: 'Delete a task', params: TenantItemParams, response: { 204: { type: 'null', description: 'Deleted' }, ...errorResponses('tenant') } },
  }, async (req, reply) => {
    await service.deleteTask(d, principalOf(req), req.params.id, auditContext(req))
    return reply.code(204).send(null)
  })
}
