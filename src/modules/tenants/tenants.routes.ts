import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { principalOf } from '../../platform/access.ts'
import { auditContext } from '../../platform/audit.ts'
import type { Deps } from '../../platform/deps.ts'
import { TenantParams, errorResponses } from '../../platform/schemas.ts'
import { Tenant, UpdateTenant } from './tenants.schemas.ts'
import * as service from './tenants.service.ts'

// The contract says "member" may read; a viewer reads everything else in the tenant, so the tenant too.
const read = { access: { kind: 'tenant', permission: 'tenant:read' } } as const
const admin = { access: { kind: 'tenant', permission: 'tenant:update' } } as const
const tags = ['tenants']

export const tenantsRoutes: FastifyPluginAsyncTypebox<{ deps: Deps }> = async (app, { deps }) => {
  const d = { sql: deps.db.sql }

  app.get('/:tenantId', {
    config: read,
    schema: { tags, summary: 'Get the tenant', params: TenantParams, response: { 200: Tenant, ...errorResponses('tenant') } },
  }, async (req) => service.getTenant(d, principalOf(req)))

  app.patch('/:tenantId', {
    config: admin,
    schema: {
      tags,
      summary: 'Rename the tenant or replace its settings',
      description: 'Admins only (with an OTP login when REQUIRE_MFA_FOR_ADMIN=true). The slug cannot be changed.',
      params: TenantParams,
      body: UpdateTenant,
      response: { 200: Tenant, ...errorResponses('tenant') },
    },
  }, async (req) => service.updateTenant(d, principalOf(req), req.body, auditContext(req)))
}
