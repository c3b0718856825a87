import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { principalOf } from '../../platform/access.ts'
import type { Deps } from '../../platform/deps.ts'
import { TenantParams, errorResponses } from '../../platform/schemas.ts'
import { AuditEventPage, ListAuditEventsQuery } from './audit-events.schemas.ts'
import * as service from './audit-events.service.ts'

const read = { access: { kind: 'tenant', permission: 'audit:read' } } as const
const tags = ['audit']

export const auditEventsRoutes: FastifyPluginAsyncTypebox<{ deps: Deps }> = async (app, { deps }) => {
  const d = { sql: deps.db.sql, cursors: deps.cursors }

  app.get('/:tenantId/audit-events', {
    config: read,
    schema: {
      tags,
      summary: 'List the tenant\'s audit events, newest first',
      description: 'Changes made through the API (projects, tasks, tenant settings, users, API keys) and operator actions on the tenant (suspension, resumption). Append-only. Filters: `action` (exact), `since` (inclusive).',
      params: TenantParams,
      querystring: ListAuditEventsQuery,
      response: { 200: AuditEventPage, ...errorResponses('tenant') },
    },
  }, async (req) => service.listAuditEvents(d, principalOf(req), req.query))
}
