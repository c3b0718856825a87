import type { Sql } from 'postgres'
import { tenantScope } from '../../platform/access.ts'
import type { Principal } from '../../platform/access.ts'
import { recordAudit } from '../../platform/audit.ts'
import type { AuditContext } from '../../platform/audit.ts'
import { withTenant } from '../../platform/db/tenant.ts'
import { errors } from '../../platform/errors.ts'
import * as repo from './tenants.repo.ts'
import type { TenantRow, UpdateTenantInput } from './tenants.schemas.ts'

export interface TenantsDeps {
  readonly sql: Sql
  /** REQUIRE_MFA_FOR_ADMIN: changing tenant settings is an admin action. */
}


function toTenant(row: repo.DbTenant): TenantRow {
  return { id: row.id, slug: row.slug, name: row.name, settings: row.settings, created_at: row.created_at.toISOString() }
}

/** Reads the caller's tenant. */
export async function getTenant(deps: TenantsDeps, actor: Principal): Promise<TenantRow> {
  const row = await withTenant(deps.sql, tenantScope(actor), (t) => repo.findTenant(t))
  if (!row) throw errors.notFound('tenant')
  return toTenant(row)
}

/** Renames the tenant and/or replaces its settings (admins, with the step-up the permission table asks for). */
export async function updateTenant(deps: TenantsDeps, actor: Principal, input: UpdateTenantInput, ctx?: AuditContext): Promise<TenantRow> {
  const row = await withTenant(deps.sql, tenantScope(actor), async (t) => {
    const updated = await repo.updateTenant(t, input)
    if (updated) await recordAudit(t, actor, 'tenant.updated', { type: 'tenant', id: t.tenantId }, ctx, { fields: Object.keys(input) })
    return updated
  })
  if (!row) throw errors.notFound('tenant')
  return toTenant(row)
}
