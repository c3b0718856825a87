import postgres from 'postgres'
import type { Sql } from 'postgres'
import { uuidv7 } from 'uuidv7'
import { tenantScope } from '../../platform/access.ts'
import type { Principal, UserPrincipal } from '../../platform/access.ts'
import { recordAudit } from '../../platform/audit.ts'
import type { AuditContext } from '../../platform/audit.ts'
import { hasRole } from '../../platform/auth/access-tokens.ts'
import { clockToleranceSec } from '../../platform/auth/key-ring.ts'
import { hashPassword } from '../../platform/auth/passwords.ts'
import type { Config } from '../../platform/config.ts'
import type { CursorCodec } from '../../platform/cursor.ts'
import { withTenant } from '../../platform/db/tenant.ts'
import type { TenantTx } from '../../platform/db/tenant.ts'
import { errors } from '../../platform/errors.ts'
import { permissions } from '../../platform/permissions.ts'
import type { RateLimiter } from '../../platform/ratelimit/limiter.ts'
import * as repo from './users.repo.ts'
import { revokeLogins } from '../auth/index.ts'
import type { CreateUserInput, ListUsersInput, UpdateUserInput, UserRow } from './users.schemas.ts'

export interface UsersDeps {
  readonly sql: Sql
  readonly cursors: CursorCodec
  readonly limiter: Pick<RateLimiter, 'cacheRevocation'>
  readonly config: Pick<Config, 'jwt'>
}

function toUser(row: repo.DbUser): UserRow {
  return {
    id: row.id,
    email: row.email,
    role: row.role,
    disabled: row.disabled,
    mfa_enabled: row.mfa_enabled,
    created_at: row.created_at.toISOString(),
    updated_at: row.updated_at.toISOString(),
  }
}

/** User management is for people: the permission table already refuses API keys; this is the type-level guard. */
function userActor(actor: Principal): UserPrincipal {
  if (actor.kind !== 'user') throw errors.forbidden('API keys cannot call this endpoint.')
  return actor
}

export async function listUsers(deps: UsersDeps, actor: Principal, q: ListUsersInput) {
  const limit = q.limit ?? 20
  const after = q.cursor ? deps.cursors.decode(actor.tid, 'users:created_at', q.cursor) : undefined
  const rows = await withTenant(deps.sql, tenantScope(actor), (t) => repo.listUsers(t, { limit, after }))
  const items = rows.slice(0, limit)
  const last = items.at(-1)
  const next = rows.length > limit && last ? deps.cursors.encode(actor.tid, 'users:created_at', [last.sort_key, last.id]) : null
  return { items: items.map(toUser), next_cursor: next }
}

export async function getUser(deps: UsersDeps, actor: Principal, id: string): Promise<UserRow> {
  const row = await withTenant(deps.sql, tenantScope(actor), (t) => repo.findUser(t, id))
  if (!row) throw errors.notFound('user')
  return toUser(row)
}

/**
 * Adds a user. The schema allows admin, member and viewer only, and the caller is at least an
 * admin (checked against the database in withTenant), so nobody grants a role above their own here.
 */
export async function createUser(deps: UsersDeps, actor: Principal, input: CreateUserInput, ctx?: AuditContext): Promise<UserRow> {
  userActor(actor)
  const passwordHash = await hashPassword(input.password)
  try {
    const row = await withTenant(deps.sql, tenantScope(actor), async (t) => {
      const created = await repo.insertUser(t, { id: uuidv7(), email: input.email, passwordHash, role: input.role })
      await recordAudit(t, actor, 'user.created', { type: 'user', id: created.id }, ctx, { role: created.role })
      return created
    })
    return toUser(row)
  } catch (err) {
    if (err instanceof postgres.PostgresError && err.code === '23505' && err.constraint_name === 'users_tenant_email_key')
      throw errors.conflict('A user with this email already exists in this tenant.')
    throw err
  }
}

interface Locked {
  me: repo.LockedUser
  target: repo.LockedUser
  enabledOwners: repo.LockedUser[]
}

/**
 * Takes the locks (see repo.lockForChange) and re-reads the actor's role as it is NOW, under the
 * lock: the token's roles claim is never trusted, and a change committed by a concurrent request
 * is seen.
 */
async function lockActorAndTarget(t: TenantTx, actorId: string, targetId: string): Promise<Locked> {
  const rows = await repo.lockForChange(t, actorId, targetId)
  const me = rows.find((r) => r.id === actorId)
  const target = rows.find((r) => r.id === targetId)
  // Disabled or deleted since withTenant's check: the same answer as a token of a disabled user.
  if (!me || me.disabled) throw errors.invalidToken()
  if (!hasRole(me.role, permissions['users:manage'].minRole)) throw errors.forbidden()
  if (!target) throw errors.notFound('user')
  return { me, target, enabledOwners: rows.filter((r) => r.role === 'owner' && !r.disabled) }
}

/** The tenant must keep at least one enabled owner after the change. */
function assertKeepsAnOwner({ target, enabledOwners }: Locked, after: { isEnabledOwner: boolean }): void {
  const targetIsEnabledOwner = target.role === 'owner' && !target.disabled
  if (!targetIsEnabledOwner || after.isEnabledOwner) return
  if (!enabledOwners.some((o) => o.id !== target.id)) throw errors.conflict('This is the last enabled owner of the tenant: make another user owner first.')
}

/** An admin may act on admins, members and viewers; only an owner acts on an owner. */
function assertOutranks({ me, target }: Locked): void {
  if (!hasRole(me.role, target.role)) throw errors.forbidden('You cannot change a user whose role is above yours.')
}

const accessWindowSec = (d: UsersDeps) => d.config.jwt.accessTtlSec + clockToleranceSec + 60

/**
 * Changes a user's role and/or disabled flag. Refused: any change of one's own role (raising AND
 * lowering, 403) and disabling oneself (403); leaving the tenant without an enabled owner (409);
 * acting on a user whose role is above one's own, or granting a role above one's own (403).
 * Disabling a user also ends their logins (refresh tokens and the access tokens those logins
 * issued are revoked), so re-enabling them does not revive a session: they log in again.
 */
export async function updateUser(deps: UsersDeps, actor: Principal, id: string, input: UpdateUserInput, ctx?: AuditContext): Promise<UserRow> {
  const me = userActor(actor)
  id = id.toLowerCase()
  const { row, revoked } = await withTenant(deps.sql, tenantScope(actor), async (t) => {
    const locked = await lockActorAndTarget(t, me.sub.toLowerCase(), id)
    const { target } = locked
    const role = input.role ?? target.role
    const disabled = input.disabled ?? target.disabled
    if (target.id === locked.me.id) {
      if (role !== target.role) throw errors.forbidden('You cannot change your own role; another owner or admin must do it.')
      if (disabled) throw errors.forbidden('You cannot disable yourself.')
    }
    // Checked before rank, so that the loser of two concurrent demotions hears why: 409, not 403.
    assertKeepsAnOwner(locked, { isEnabledOwner: role === 'owner' && !disabled })
    assertOutranks(locked)
    if (!hasRole(locked.me.role, role)) throw errors.forbidden('You cannot grant a role above your own.')
    const updated = await repo.updateUser(t, id, { role: input.role, disabled: input.disabled })
    if (!updated) throw errors.notFound('user')
    await recordAudit(t, actor, 'user.updated', { type: 'user', id }, ctx, { from: { role: target.role, disabled: target.disabled }, to: { role, disabled } })
    const newlyDisabled = disabled && !target.disabled
    return { row: updated, revoked: newlyDisabled ? await revokeLogins(t, { userId: id }, accessWindowSec(deps)) : [] }
  })
  // After commit: the fast copy of the revocations (PostgreSQL holds the durable one).
  await Promise.all(revoked.map((r) => deps.limiter.cacheRevocation(r.jti, Math.ceil(r.expires_at.getTime() / 1000))))
  return toUser(row)
}

/**
 * Deletes a user: their refresh tokens go with them (FK cascade), tasks assigned to them become
 * unassigned (FK set null), and their access tokens fail on the next request (the user is gone).
 * Refused: deleting oneself (403; another owner or admin must do it), the last enabled owner
 * (409), a user whose role is above one's own (403).
 */
export async function deleteUser(deps: UsersDeps, actor: Principal, id: string, ctx?: AuditContext): Promise<void> {
  const me = userActor(actor)
  id = id.toLowerCase()
  if (id === me.sub.toLowerCase()) throw errors.forbidden('You cannot delete yourself; another owner or admin must do it.')
  await withTenant(deps.sql, tenantScope(actor), async (t) => {
    const locked = await lockActorAndTarget(t, me.sub.toLowerCase(), id)
    assertKeepsAnOwner(locked, { isEnabledOwner: false })
    assertOutranks(locked)
    if (!(await repo.deleteUser(t, id))) throw errors.notFound('user')
    await recordAudit(t, actor, 'user.deleted', { type: 'user', id }, ctx, { role: locked.target.role })
  })
}
