import type { ISql, PendingQuery, ReservedSql, Row, Sql, TransactionSql } from 'postgres'
import { hasRole } from '../auth/access-tokens.ts'
import type { Role } from '../auth/access-tokens.ts'
import { errors } from '../errors.ts'
import { runtimeRole } from './connect.ts'

declare const tenantTxBrand: unique symbol
/**
 * A transaction whose tenant context is set. Only withTenant() makes one, and every repo function
 * takes it as its first argument, so a tenant query cannot run outside a tenant transaction.
 * `sql` runs on the transaction's own (reserved) connection; it has no begin/release of its own.
 */
export interface TenantTx {
  readonly sql: ISql
  /** Repos filter by it as well: RLS is the wall, the explicit filter is the habit (and the index key). */
  readonly tenantId: string
  readonly [tenantTxBrand]: true
}

function tenantTx(sql: ISql, tenantId: string): TenantTx {
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
 * TEST ONLY, never set by the server (nothing outside test/ writes it, no route or variable reaches
 * it): `failBegin` replaces BEGIN with a statement that fails, and `role` replaces the runtime role
 * in set_config (a role that does not exist makes set_config fail), to prove that a transaction
 * whose BEGIN or set_config failed fails closed. Tests reset both in a finally.
 */
export const testOnlyFaults: { failBegin: boolean; role: string | undefined } = { failBegin: false, role: undefined }

/** The role switch and the tenant setting, both transaction-local (is_local = true). */
const setContext = (c: ISql, tenantId: string, readOnly = false) => {
  const role = testOnlyFaults.role ?? runtimeRole
  return readOnly
    ? c`select set_config('role', ${role}, true), set_config('app.tenant_id', ${tenantId}, true), set_config('transaction_read_only', 'on', true)`
    : c`select set_config('role', ${role}, true), set_config('app.tenant_id', ${tenantId}, true)`
}

/** Runs under RLS after setContext: no row when the tenant does not exist or the setting did not apply. */
const actorCheck = (c: ISql, scope: TenantScope) => c<ActorRow[]>`
  select t.status,
         u.role as user_role, not u.disabled as user_ok,
         exists (select 1 from revoked_tokens r where r.tenant_id = t.id and r.jti = ${scope.jti ?? null}::uuid) as revoked
    from tenants t left join users u on u.tenant_id = t.id and u.id = ${scope.userId ?? null}::uuid
   where t.id = ${scope.tenantId}::uuid`

function checkActor(scope: TenantScope, rows: readonly ActorRow[]): void {
  const actor = rows[0]
  // No row: the tenant does not exist (or the setting failed and RLS hid it): fail closed.
  if (!actor) throw errors.invalidToken()
  if (scope.userId !== undefined && actor.user_ok !== true) throw errors.invalidToken()
  if (actor.revoked) throw errors.tokenRevoked()
  if (scope.minRole && !(actor.user_role && hasRole(actor.user_role, scope.minRole))) throw errors.forbidden()
  if (actor.status !== 'active') throw errors.tenantSuspended()
}

const ignore = () => {}

/** Ends the transaction without keeping anything; a connection that cannot roll back is closed by release(). */
async function rollbackQuietly(conn: ReservedSql): Promise<void> {
  try {
    await conn`rollback`
  } catch {
    // The connection is broken or gone: release() closes any connection that is not idle ('I').
  }
}

/**
 * Runs fn in one transaction as the runtime role (no BYPASSRLS, owns nothing) with app.tenant_id set
 * transaction-locally, so a pooled connection never carries one tenant's context into the next
 * request. RLS policies read that setting; unset means no rows.
 *
 * Round trips: on a connection of its own, BEGIN, the role and tenant setting and the actor check go
 * out as one batch (one Sync), and fn's first statements are pipelined right behind it, so a
 * one-query fn costs two round trips (the batch with the query, then COMMIT) instead of four.
 *
 * Fail closed. The answer to the batch arrives before any answer to fn's statements, and the check
 * below is a direct reaction to it, registered before fn runs: it has run before fn can see a row.
 * - If BEGIN or set_config fails, the rest of the batch does not run (one Sync). fn's statements
 *   already sent then fail in the aborted transaction (25P02) or, if BEGIN itself failed, run outside
 *   any transaction without the setting, where RLS shows no rows to a login role that cannot bypass
 *   it (production refuses to start with any other). The connection is handed back at once, so fn's
 *   later statements are refused by the driver, and the pool closes it unless it is idle. The error
 *   is thrown; fn's result is never returned.
 * - If the actor check fails, a statement that raises aborts the transaction first, so fn's later
 *   statements fail inside it (never outside it); once fn has settled, ROLLBACK: a disabled user's
 *   write never commits.
 * - A connection that is not idle after ROLLBACK or COMMIT (or that broke) is closed on release.
 */
export async function withTenant<T>(sql: Sql, scope: TenantScope, fn: (tx: TenantTx) => Promise<T>): Promise<T> {
  const conn = await sql.reserve()
  let released = false
  const release = () => {
    if (released) return
    released = true
    conn.release()
  }
  let open = true
  let refusal: { error: unknown } | undefined
  try {
    const begin = testOnlyFaults.failBegin ? conn`select 1/0 as begin_failed_for_test` : conn`begin`
    const setup = scope.isNewTenant
      ? conn.batch([begin, setContext(conn, scope.tenantId)])
      : conn.batch([begin, setContext(conn, scope.tenantId), actorCheck(conn, scope)])
    const checked = setup.then(
      ([, , actorRows]) => {
        if (scope.isNewTenant) return
        try {
          checkActor(scope, actorRows ?? [])
        } catch (error) {
          refusal = { error }
          conn`do $$ begin raise exception 'tenant transaction refused: the actor check failed'; end $$`.execute().catch(ignore)
        }
      },
      (error: unknown) => {
        refusal = { error }
        open = false
        release()
      },
    )
    // Called now (synchronously up to its first await), so that its first statements join the pipeline.
    const work = (async () => fn(tenantTx(conn, scope.tenantId)))()
    work.catch(ignore)
    await checked
    if (refusal) {
      // fn's statements fail in the aborted transaction (or are refused): let it finish, then ROLLBACK.
      await work.catch(ignore)
      throw refusal.error
    }
    const result = await work
    open = false
    const done = await conn`commit`
    // An aborted transaction (fn swallowed an error) answers COMMIT with ROLLBACK: nothing was kept.
    if (done.command !== 'COMMIT') throw new Error('the tenant transaction was rolled back instead of committed')
    return result
  } catch (error) {
    if (open) await rollbackQuietly(conn)
    throw error
  } finally {
    release()
  }
}

/**
 * The one-round-trip read: the setting, the actor check and one query of fn's in a single batch, with
 * no BEGIN or COMMIT: PostgreSQL runs everything up to the batch's one Sync as one implicit
 * transaction, so the transaction-local setting covers exactly these statements, and if the setting
 * fails, the query after it does not run at all. The transaction is read-only (a write in `query`
 * fails), so a failed actor check needs nothing undone: its rows are simply never returned.
 *
 * No connection is reserved: the batch keeps its statements together up to its own Sync, so batches
 * of concurrent requests share the pool's connections, pipelined, each its own implicit
 * transaction. A statement from elsewhere never runs inside it, nor it outside its Sync.
 * `query` must return the query without running it (no `async`, no await); run on its own it would
 * have no tenant setting and see no rows.
 */
export async function withTenantRead<R extends readonly Row[]>(
  sql: Sql,
  scope: Omit<TenantScope, 'isNewTenant'>,
  query: (tx: TenantTx) => PendingQuery<R>,
): Promise<Awaited<PendingQuery<R>>> {
  const [, actorRows, rows] = await sql.batch([setContext(sql, scope.tenantId, true), actorCheck(sql, scope), query(tenantTx(sql, scope.tenantId))])
  checkActor(scope, actorRows)
  return rows
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
