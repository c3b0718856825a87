import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { userPrincipalOf } from '../../platform/access.ts'
import { auditContext } from '../../platform/audit.ts'
import type { Deps } from '../../platform/deps.ts'
import { TenantItemParams, TenantParams, errorResponses } from '../../platform/schemas.ts'
import { ApiKeyPage, CreateApiKey, CreatedApiKey, ListApiKeysQuery } from './api-keys.schemas.ts'
import * as service from './api-keys.service.ts'

const manage = { access: { kind: 'tenant', permission: 'api-keys:manage' } } as const
const tags = ['api-keys']

export const apiKeysRoutes: FastifyPluginAsyncTypebox<{ deps: Deps }> = async (app, { deps }) => {
  const d = { sql: deps.db.sql, cursors: deps.cursors }

  app.get('/:tenantId/api-keys', {
    config: manage,
    schema: {
      tags,
      summary: 'List API keys',
      description: 'Newest first. Revoked and expired keys are listed too, with revoked_at / expires_at. Never the key or its hash.',
      params: TenantParams,
      querystring: ListApiKeysQuery,
      response: { 200: ApiKeyPage, ...errorResponses('tenant') },
    },
  }, async (req) => service.listApiKeys(d, userPrincipalOf(req), req.query))

  app.post('/:tenantId/api-keys', {
    config: manage,
    schema: {
      tags,
      summary: 'Create an API key',
      description: 'The answer is the only time the key is shown; only a SHA-256 of its secret is stored. Admin action (an otp login when REQUIRE_MFA_FOR_ADMIN=true).',
      params: TenantParams,
      body: CreateApiKey,
      response: { 201: CreatedApiKey, ...errorResponses('tenant') },
    },
  }, async (req, reply) => {
    const created = await service.createApiKey(d, userPrincipalOf(req), req.body, auditContext(req))
    return reply.code(201).header('Location', `/v1/tenants/${req.params.tenantId}/api-keys/${created.id}`).send(created)
  })

  app.delete('/:tenantId/api-keys/:id', {
    config: manage,
    schema: {
      tags,
      summary: 'Revoke an API key',
      description: 'The key is refused from the next request on; it stays listed with revoked_at. Revoking it again answers 404.',
      params: TenantItemParams,
      response: { 204: { type: 'null', description: 'Revoked' }, ...errorResponses('tenant') },
    },
  }, async (req, reply) => {
    await service.revokeApiKey(d, userPrincipalOf(req), req.params.id, auditContext(req))
    return reply.code(204).send(null)
  })
}
