import type { Role } from '../../platform/auth/access-tokens.ts'
import type { TenantTx } from '../../platform/db/tenant.ts'

export interface DbUser {
  id: string
  email: string
  role: Role
  disabled: boolean
  mfa_enabled: boolean
  created_at: Date
  updated_at: Date
  sort_key: string
}

/** The only columns ever read for the API: password_hash and MFA secrets are not even selected. */
const columns = (t: TenantTx) => t.sql`id, email, role, disabled, totp_enabled as mfa_enabled, created_at, updated_at`

/** Keyset pagination in creation order; `after` is [created_at, id] of the last row already returned. */
export async function listUsers(t: TenantTx, o: { limit: number; after: readonly string[] | undefined }): Promise<DbUser[]> {
  const [v, id] = o.after ?? []
  const after = o.after ? t.sql`and (created_at, id) > (${v ?? ''}::timestamptz, ${id ?? ''}::uuid)` : t.sql``
  return t.sql<DbUser[]>`
    select ${columns(t)}, created_at::text as sort_key
      from users
     where tenant_id = ${t.tenantId} ${after}
     order by created_at, id
     limit ${o.limit + 1}`
}

export async function findUser(t: TenantTx, id: string): Promise<DbUser | undefined> {
  const [row] = await t.sql<DbUser[]>`select ${columns(t)}, '' as sort_key from users where tenant_id = ${t.tenantId} and id = ${id}`
  return row
}

export async function insertUser(t: TenantTx, u: { id: string; email: string; passwordHash: string; role: Role }): Promise<DbUser> {
  const [row] = await t.sql<DbUser[]>`
    insert into users (id, email, password_hash, role) values (${u.id}, ${u.email}, ${u.passwordHash}, ${u.role})
    returning ${columns(t)}, '' as sort_key`
  if (!row) throw new Error('insert returned no row')
  return row
}

export interface LockedUser {
  id: string
  role: Role
  disabled: boolean
}

/**
 * Locks, in id order (so two changes never deadlock), the actor, the target and every enabled
 * owner of the tenant. Every role change, disable and delete takes these locks first, so two
 * concurrent changes are serialised and the second sees the first's result: two owners demoting
 * each other cannot both pass the last-owner check. A row changed by a transaction we waited for
 * is re-read by PostgreSQL before it is returned (READ COMMITTED re-check), so a just-demoted
 * owner drops out of the owner set. NO KEY UPDATE, not UPDATE: it still excludes a concurrent
 * change, but not the key-share lock a refresh takes when it inserts a token for the same user,
 * which would otherwise deadlock with the session revocation of a disable.
 */
export async function lockForChange(t: TenantTx, actorId: string, targetId: string): Promise<LockedUser[]> {
  return t.sql<LockedUser[]>`
    select id, role, disabled
      from users
     where tenant_id = ${t.tenantId}
       and (id = ${actorId} or id = ${targetId} or (role = 'owner' and not disabled))
     order by id
       for no key update`
}

export async function updateUser(t: TenantTx, id: string, change: { role?: Role | undefined; disabled?: boolean | undefined }): Promise<DbUser | undefined> {
  const [row] = await t.sql<DbUser[]>`
    update users set
      role = coalesce(${change.role ?? null}, role),
      disabled = coalesce(${change.disabled ?? null}::boolean, disabled),
      updated_at = now()
    where tenant_id = ${t.tenantId} and id = ${id}
    returning ${columns(t)}, '' as sort_key`
  return row
}

/** Refresh tokens go with the user (FK cascade); tasks assigned to them become unassigned (FK set null). */
export async function deleteUser(t: TenantTx, id: string): Promise<boolean> {
  const rows = await t.sql`delete from users where tenant_id = ${t.tenantId} and id = ${id}`
  return rows.count > 0
}

