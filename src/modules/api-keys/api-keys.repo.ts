import type { TenantTx } from '../../platform/db/tenant.ts'
import type { ApiKeyScope } from '../../platform/permissions.ts'

export interface DbApiKey {
  id: string
  name: string
  scopes: ApiKeyScope[]
  prefix: string
  expires_at: Date | null
  created_at: Date
  last_used_at: Date | null
  revoked_at: Date | null
}

export interface NewApiKeyRow {
  id: string
  name: string
  scopes: readonly ApiKeyScope[]
  prefix: string
  secretHash: Buffer
  expiresAt: Date | null
  createdBy: string | null
}

/** Newest first: ids are UUIDv7, so the primary key (tenant_id, id) serves the order and the cursor. */
export async function listApiKeys(t: TenantTx, limit: number, afterId: string | undefined): Promise<DbApiKey[]> {
  const after = afterId === undefined ? t.sql`` : t.sql`and id < ${afterId}::uuid`
  return t.sql<DbApiKey[]>`
    select id, name, scopes, prefix, expires_at, created_at, last_used_at, revoked_at
      from api_keys
     where tenant_id = ${t.tenantId} ${after}
     order by id desc
     limit ${limit + 1}`
}

export async function insertApiKey(t: TenantTx, k: NewApiKeyRow): Promise<DbApiKey> {
  const [row] = await t.sql<DbApiKey[]>`
    insert into api_keys (id, name, scopes, prefix, secret_hash, expires_at, created_by)
    values (${k.id}, ${k.name}, ${[...k.scopes]}::text[], ${k.prefix}, ${k.secretHash}, ${k.expiresAt}, ${k.createdBy})
    returning id, name, scopes, prefix, expires_at, created_at, last_used_at, revoked_at`
  if (!row) throw new Error('insert returned no row')
  return row
}

/** Revokes a live key; false when there is none (absent, another tenant's, or already revoked). */
export async function revokeApiKey(t: TenantTx, id: string): Promise<boolean> {
  const rows = await t.sql`update api_keys set revoked_at = now() where tenant_id = ${t.tenantId} and id = ${id} and revoked_at is null`
  return rows.count > 0
}
