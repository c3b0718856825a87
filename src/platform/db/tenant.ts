import type { Sql, TransactionSql } from 'postgres'
import { hasRole } from '../auth/access-tokens.ts'
import type { Role } from '../auth/access-tokens.ts'
import { errors } from '../errors.ts'
import { runtimeRole } from './connect.ts'

declare const tenantTxBrand: unique symbol
/**
 * A transaction whose tenant context is set. Only withTenant() makes one, and every repo function
 * takes it as its first argument, so a tenant query cannot run outside a tenant transaction.
 */
export interface TenantTx {
  readonly sql: TransactionSql
  /** Repos filter by it as well: RLS is the wall, the explicit filter is the habit (and the index key). */
  readonly tenantId: string
  readonly [tenantTxBrand]: true
}

function tenantTx(sql: TransactionSql, tenantId: string): TenantTx {
  return { sql, tenantId } as TenantTx
}

/** Who is acting: checked inside the same transaction, before any tenant data is read. */
export interface TenantScope {
  readonly tenantId: string
  /** When set, the user must exist in this tenant and be enabled. */
  readonly userId?: string | undefined
  /** When set, an access token revoked in PostgreSQL (the durable copy) is refused. */
  readonly jti?: string | undefined
  /** When set, the user's current role in the database must be at least this. */
  readonly minRole?: Role | undefined
  /** Signup: the tenant row is created inside this transaction, so there is nothing to check yet. */
  readonly isNewTenant?: boolean
}

interface ActorRow {
  status: string
  user_ok: boolean | null
  user_role: Role | null
  revoked: boolean
}

/**
 * Runs fn in one transaction as the runtime role (no BYPASSRLS, owns nothing) with
 * app.tenant_id set transaction-locally, so a pooled connection never carries one tenant's
 * context into the next request. RLS policies read that setting; unset means no rows.
 * The role switch, the tenant setting and the actor check are pipelined in one round trip.
 */
export async function withTenant<T>(sql: Sql, scope: TenantScope, fn: (tx: TenantTx) => Promise<T>): Promise<T> {
  return (await sql.begin(async (tx) => {
    if (scope.isNewTenant) {
      await tx`select set_config('role', ${runtimeRole}, true), set_config('app.tenant_id', ${scope.tenantId}, true)`
      return fn(tenantTx(tx, scope.tenantId))
    }
    const [, rows] = await Promise.all([
      tx`select set_config('role', ${runtimeRole}, true), set_config('app.tenant_id', ${scope.tenantId}, true)`,
      tx<ActorRow[]>`
        select t.status,
               u.role as user_role, not u.disabled as user_ok,
               exists (select 1 from revoked_tokens r where r.tenant_id = t.id and r.jti = ${scope.jti ?? null}::uuid) as revoked
          from tenants t left join users u on u.tenant_id = t.id and u.id = ${scope.userId ?? null}::uuid
         where t.id = ${scope.tenantId}::uuid`,
    ])
    const actor = rows[0]
    // No row: the tenant does not exist (or the setting failed and RLS hid it): fail closed.
    if (!actor) throw errors.invalidToken()
    if (scope.userId !== undefined && actor.user_ok !== true) throw errors.invalidToken()
    if (actor.revoked) throw errors.tokenRevoked()
    if (scope.minRole && !(actor.user_role && hasRole(actor.user_role, scope.minRole))) throw errors.forbidden()
    if (actor.status !== 'active') throw errors.tenantSuspended()
    return fn(tenantTx(tx, scope.tenantId))
  }))
}

/**
 * Runs fn as the runtime role with no tenant context: every tenant table reads as empty. Only the
 * narrow SECURITY DEFINER functions (login lookup) return anything here.
 */
export async function withoutTenant<T>(sql: Sql, fn: (tx: TransactionSql) => Promise<T>): Promise<T> {
  return (await sql.begin(async (tx) => {
    await tx`select set_config('role', ${runtimeRole}, true)`
    return fn(tx)
  }))
}
