import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { principalOf } from '../../platform/access.ts'
import { auditContext } from '../../platform/audit.ts'
import type { Deps } from '../../platform/deps.ts'
import { TenantItemParams, TenantParams, errorResponses } from '../../platform/schemas.ts'
import { CreateProject, ListProjectsQuery, Project, ProjectPage, UpdateProject } from './projects.schemas.ts'
import * as service from './projects.service.ts'

const read = { access: { kind: 'tenant', permission: 'projects:read' } } as const
const write = { access: { kind: 'tenant', permission: 'projects:write' } } as const
const tags = ['projects']

export const projectsRoutes: FastifyPluginAsyncTypebox<{ deps: Deps }> = async (app, { deps }) => {
  const d = { sql: deps.db.sql, cursors: deps.cursors }

  app.get('/:tenantId/projects', {
    config: read,
    schema: { tags, summary: 'List projects', params: TenantParams, querystring: ListProjectsQuery, response: { 200: ProjectPage, ...errorResponses('tenant') } },
  }, async (req) => service.listProjects(d, principalOf(req), req.query))

  app.post('/:tenantId/projects', {
    config: write,
    schema: { tags, summary: 'Create a project', params: TenantParams, body: CreateProject, response: { 201: Project, ...errorResponses('tenant') } },
  }, async (req, reply) => {
    const project = await service.createProject(d, principalOf(req), req.body, auditContext(req))
    return reply.code(201).header('Location', `/v1/tenants/${req.params.tenantId}/projects/${project.id}`).send(project)
  })

  app.get('/:tenantId/projects/:id', {
    config: read,
    schema: { tags, summary: 'Get a project', params: TenantItemParams, response: { 200: Project, ...errorResponses('tenant') } },
  }, async (req) => service.getProject(d, principalOf(req), req.params.id))

  app.patch('/:tenantId/projects/:id', {
    config: write,
    schema: { tags, summary: 'Update a project', params: TenantItemParams, body: UpdateProject, response: { 200: Project, ...errorResponses('tenant') } },
  }, async (req) => service.updateProject(d, principalOf(req), req.params.id, req.body, auditContext(req)))

  app.delete('/:tenantId/projects/:id', {
    config: write,
    schema: { tags, summary: 'Delete a project and its tasks', params: TenantItemParams, response: { 204: { type: 'null', description: 'Deleted' }, ...errorResponses('tenant') } },
  }, async (req, reply) => {
    await service.deleteProject(d, principalOf(req), req.params.id, auditContext(req))
    return reply.code(204).send(null)
  })
}
