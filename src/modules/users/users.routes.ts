import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { principalOf } from '../../platform/access.ts'
import { auditContext } from '../../platform/audit.ts'
import type { Deps } from '../../platform/deps.ts'
import { TenantItemParams, TenantParams, errorResponses } from '../../platform/schemas.ts'
import { CreateUser, ListUsersQuery, UpdateUser, User, UserPage } from './users.schemas.ts'
import * as service from './users.service.ts'

const read = { access: { kind: 'tenant', permission: 'users:read' } } as const
const manage = { access: { kind: 'tenant', permission: 'users:manage' } } as const
const tags = ['users']
const adminNote = 'Admins and owners only, with an OTP login when REQUIRE_MFA_FOR_ADMIN=true.'

export const usersRoutes: FastifyPluginAsyncTypebox<{ deps: Deps }> = async (app, { deps }) => {
  const d = { sql: deps.db.sql, cursors: deps.cursors, limiter: deps.limiter, config: deps.config }

  app.get('/:tenantId/users', {
    config: read,
    schema: { tags, summary: 'List users', description: 'Oldest first. Never returns a password hash or MFA secret.', params: TenantParams, querystring: ListUsersQuery, response: { 200: UserPage, ...errorResponses('tenant') } },
  }, async (req) => service.listUsers(d, principalOf(req), req.query))

  app.post('/:tenantId/users', {
    config: manage,
    schema: {
      tags,
      summary: 'Add a user',
      description: `${adminNote} The role is admin, member or viewer; owner is granted afterwards by an owner.`,
      params: TenantParams,
      body: CreateUser,
      response: { 201: User, ...errorResponses('tenant', { 409: 'A user with this email (case-insensitive) already exists (conflict)' }) },
    },
  }, async (req, reply) => {
    const user = await service.createUser(d, principalOf(req), req.body, auditContext(req))
    return reply.code(201).header('Location', `/v1/tenants/${req.params.tenantId}/users/${user.id}`).send(user)
  })

  app.get('/:tenantId/users/:id', {
    config: read,
    schema: { tags, summary: 'Get a user', params: TenantItemParams, response: { 200: User, ...errorResponses('tenant') } },
  }, async (req) => service.getUser(d, principalOf(req), req.params.id))

  app.patch('/:tenantId/users/:id', {
    config: manage,
    schema: {
      tags,
      summary: "Change a user's role or disable them",
      description: `${adminNote} Disabling ends the user's logins at once; re-enabled, they log in again.`,
      params: TenantItemParams,
      body: UpdateUser,
      response: { 200: User, ...errorResponses('tenant', { 409: 'Would leave the tenant without an enabled owner (conflict)' }) },
    },
  }, async (req) => service.updateUser(d, principalOf(req), req.params.id, req.body, auditContext(req)))

  app.delete('/:tenantId/users/:id', {
    config: manage,
    schema: {
      tags,
      summary: 'Delete a user',
      description: `${adminNote} Nobody deletes themselves. Their tasks become unassigned.`,
      params: TenantItemParams,
      response: { 204: { type: 'null', description: 'Deleted' }, ...errorResponses('tenant', { 409: 'The last enabled owner cannot be deleted (conflict)' }) },
    },
  }, async (req, reply) => {
    await service.deleteUser(d, principalOf(req), req.params.id, auditContext(req))
    return reply.code(204).send(null)
  })
}
