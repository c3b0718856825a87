import type { TenantTx } from '../../platform/db/tenant.ts'
import type { TenantSettings, UpdateTenantInput } from './tenants.schemas.ts'

export interface DbTenant {
  id: string
  slug: string
  name: string
  settings: TenantSettings
  created_at: Date
}

/** The caller's own tenant row; RLS shows no other. */
export async function findTenant(t: TenantTx): Promise<DbTenant | undefined> {
  const [row] = await t.sql<DbTenant[]>`select id, slug, name, settings, created_at from tenants where id = ${t.tenantId}`
  return row
}

/** Updates name and/or settings (settings are replaced whole, not merged). */
export async function updateTenant(t: TenantTx, input: UpdateTenantInput): Promise<DbTenant | undefined> {
  const settings = input.settings === undefined ? null : t.sql.json(input.settings)
  const [row] = await t.sql<DbTenant[]>`
    update tenants set
      name = coalesce(${input.name ?? null}, name),
      settings = coalesce(${settings}::jsonb, settings),
      updated_at = now()
    where id = ${t.tenantId}
    returning id, slug, name, settings, created_at`
  return row
}
