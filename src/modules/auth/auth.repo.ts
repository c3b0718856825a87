import type { TransactionSql } from 'postgres'
import type { AuthMethod, Role } from '../../platform/auth/access-tokens.ts'
import type { TenantTx } from '../../platform/db/tenant.ts'

export interface LoginRow {
  tenant_id: string
  tenant_status: string
  user_id: string | null
  password_hash: string | null
  role: Role | null
  disabled: boolean | null
}

/**
 * The one query without a tenant context: the SECURITY DEFINER function returns only what a login
 * needs for one (slug, email) pair. `tx` is a withoutTenant() transaction.
 */
export async function loginLookup(tx: TransactionSql, slug: string, email: string): Promise<LoginRow | undefined> {
  const [row] = await tx<LoginRow[]>`
    select tenant_id, tenant_status, user_id, password_hash, role, disabled from auth_login_lookup(${slug}, ${email})`
  return row
}

export async function insertTenant(t: TenantTx, tenant: { slug: string; name: string }): Promise<{ id: string; slug: string; name: string }> {
  const [row] = await t.sql<{ id: string; slug: string; name: string }[]>`
    insert into tenants (id, slug, name) values (${t.tenantId}, ${tenant.slug}, ${tenant.name}) returning id, slug, name`
  if (!row) throw new Error('insert returned no row')
  return row
}

export async function insertUser(t: TenantTx, user: { id: string; email: string; passwordHash: string; role: Role }): Promise<{ id: string; email: string }> {
  const [row] = await t.sql<{ id: string; email: string }[]>`
    insert into users (id, email, password_hash, role) values (${user.id}, ${user.email}, ${user.passwordHash}, ${user.role})
    returning id, email`
  if (!row) throw new Error('insert returned no row')
  return row
}

export async function findUserState(t: TenantTx, userId: string): Promise<{ role: Role; disabled: boolean } | undefined> {
  const [row] = await t.sql<{ role: Role; disabled: boolean }[]>`
    select role, disabled from users where tenant_id = ${t.tenantId} and id = ${userId}`
  return row
}

export interface NewRefreshToken {
  id: string
  familyId: string
  parentId: string | null
  userId: string
  hash: Buffer
  amr: readonly AuthMethod[]
  ttlSec: number
  accessJti: string
}

export async function insertRefreshToken(t: TenantTx, r: NewRefreshToken): Promise<void> {
  await t.sql`
    insert into refresh_tokens (id, family_id, parent_id, user_id, token_hash, amr, expires_at, access_jti)
    values (${r.id}, ${r.familyId}, ${r.parentId}, ${r.userId}, ${r.hash}, ${[...r.amr]},
            now() + make_interval(secs => ${r.ttlSec}), ${r.accessJti})`
}

export interface RefreshRow {
  id: string
  family_id: string
  user_id: string
  amr: string[]
  is_expired: boolean
  is_revoked: boolean
  is_spent: boolean
  /** Spent less than the grace window ago. */
  is_in_grace: boolean
}

/** Locks the row, so two concurrent refreshes of one token are serialised: the second sees it spent. */
export async function findRefreshForUpdate(t: TenantTx, hash: Buffer, graceSec: number): Promise<RefreshRow | undefined> {
  const [row] = await t.sql<RefreshRow[]>`
    select id, family_id, user_id, amr,
           expires_at <= now() as is_expired,
           revoked_at is not null as is_revoked,
           spent_at is not null as is_spent,
           coalesce(spent_at > now() - make_interval(secs => ${graceSec}), false) as is_in_grace
      from refresh_tokens
     where tenant_id = ${t.tenantId} and token_hash = ${hash}
       for update`
  return row
}

export async function findRefreshOwner(t: TenantTx, hash: Buffer): Promise<{ family_id: string; user_id: string } | undefined> {
  const [row] = await t.sql<{ family_id: string; user_id: string }[]>`
    select family_id, user_id from refresh_tokens where tenant_id = ${t.tenantId} and token_hash = ${hash}`
  return row
}

export async function findFamilyByAccessJti(t: TenantTx, jti: string): Promise<string | undefined> {
  const [row] = await t.sql<{ family_id: string }[]>`
    select family_id from refresh_tokens where tenant_id = ${t.tenantId} and access_jti = ${jti} limit 1`
  return row?.family_id
}

/** True when a token issued by rotating parentId is still unused: the client never received it. */
export async function hasLiveChild(t: TenantTx, parentId: string): Promise<boolean> {
  const [row] = await t.sql<{ ok: boolean }[]>`
    select exists (
      select 1 from refresh_tokens
       where tenant_id = ${t.tenantId} and parent_id = ${parentId}
         and spent_at is null and revoked_at is null and expires_at > now()) as ok`
  return row?.ok === true
}

export async function spendToken(t: TenantTx, id: string): Promise<void> {
  await t.sql`update refresh_tokens set spent_at = now() where tenant_id = ${t.tenantId} and id = ${id}`
}

export async function spendChildren(t: TenantTx, parentId: string): Promise<void> {
  await t.sql`
    update refresh_tokens set spent_at = now()
     where tenant_id = ${t.tenantId} and parent_id = ${parentId} and spent_at is null`
}

export interface Revocation {
  jti: string
  expires_at: Date
}

/** Durable revocation of one access token (the Redis copy is written after commit). */
export async function revokeAccessToken(t: TenantTx, jti: string, expiresAtSec: number): Promise<Revocation[]> {
  return t.sql<Revocation[]>`
    insert into revoked_tokens (jti, expires_at) values (${jti}, to_timestamp(${expiresAtSec}))
    on conflict do nothing
    returning jti, expires_at`
}

/** Which logins to end: one family, every login of a user, or a user's logins made without a one-time code. */
export type Logins = { readonly familyId: string } | { readonly userId: string; readonly withoutOtp?: boolean }

/**
 * Ends logins: their refresh tokens are revoked, and so is every access token they issued that
 * could still verify (issued within accessWindowSec). Returns the new access-token revocations,
 * for the Redis cache. The one place that ends sessions: refresh reuse, logout, MFA, disabled users.
 */
export async function revokeLogins(t: TenantTx, which: Logins, accessWindowSec: number): Promise<Revocation[]> {
  const match = () =>
    'familyId' in which
      ? t.sql`family_id = ${which.familyId}`
      : which.withoutOtp
        ? t.sql`user_id = ${which.userId} and not ('otp' = any (amr))`
        : t.sql`user_id = ${which.userId}`
  await t.sql`
    update refresh_tokens set revoked_at = now()
     where tenant_id = ${t.tenantId} and ${match()} and revoked_at is null`
  return t.sql<Revocation[]>`
    insert into revoked_tokens (jti, expires_at)
    select access_jti, created_at + make_interval(secs => ${accessWindowSec})
      from refresh_tokens
     where tenant_id = ${t.tenantId} and ${match()} and access_jti is not null
       and created_at > now() - make_interval(secs => ${accessWindowSec})
    on conflict do nothing
    returning jti, expires_at`
}
