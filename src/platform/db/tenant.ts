import type { ISql, PendingQuery, ReservedSql, Row, Sql, TransactionSql } from 'postgres'
import { hasRole, roles } from '../auth/access-tokens.ts'
import type { Role } from '../auth/access-tokens.ts'
import { errors } from '../errors.ts'
import type { AppError } from '../errors.ts'
import { runtimeRole } from './connect.ts'

declare const tenantTxBrand: unique symbol
/**
 * A transaction whose tenant context is set. Only withTenant(), withTenantRead() and
 * withTenantBatch() make one, and every repo function takes it as its first argument, so a tenant
 * query cannot run outside a tenant transaction.
 * In withTenant(), `sql` runs on the transaction's own (reserved) connection. In withTenantRead()
 * and withTenantBatch() it is the shared pool: their callbacks only build queries, which run inside
 * the batch; a query a callback ran itself would run outside it (see withTenantRead).
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
  /**
   * When set (a request made with an API key), the key must still exist in this tenant, unrevoked
   * and unexpired, when the transaction runs: a key revoked after onRequest verified it serves nothing.
   */
  readonly apiKeyId?: string | undefined
  /** Signup: the tenant row is created inside this transaction, so there is nothing to check yet. */
  readonly isNewTenant?: boolean
}

/**
 * TEST ONLY, never set by the server (nothing outside test/ writes it, no route or variable reaches
 * it): `failBegin` replaces BEGIN with a statement that fails, and `role` replaces the runtime role
 * in set_config (a role that does not exist makes set_config fail), to prove that a transaction
 * whose BEGIN or set_config failed fails closed. Tests reset both in a finally.
 */
export const testOnlyFaults: { failBegin: boolean; role: string | undefined } = { failBegin: false, role: undefined }

/** The roles that pass a route's minimum, from the one role order (hasRole), as a list for SQL. */
const allowedRoles = new Map(roles.map((min) => [min, roles.filter((r) => hasRole(r, min)).join(',')]))

/**
 * The role switch and the tenant setting, both transaction-local (is_local = true), then the actor
 * gate, in one statement: the first after BEGIN, or the first of an implicit transaction. If any
 * part fails, nothing after it in the batch runs. One template with no nested fragments, so the
 * driver builds one query object per request and finds its prepared statement by identity.
 *
 * The gate is one boolean expression that is true or raises (migration 0011): the tenant exists and
 * is active, and when the scope names them, the user exists in it and is enabled, the API key is
 * unrevoked and unexpired, the token is not revoked (the durable copy; Redis holds the cache) and
 * the user's current role is at least the route's minimum.
 * It rides here, after the set_config calls (PostgreSQL evaluates a select list left to right), and
 * never in the work's statement: a planner that proves a statement empty (a constant false
 * condition, a custom plan's parameter) skips its conditions, and the gate with them; a statement
 * without FROM is always evaluated. A statement that raises stops the batch or aborts the
 * transaction, whatever comes after it.
 * Its answer does not depend on RLS or on that order: it selects the actor's rows by explicit ids.
 * Under RLS (a production login role) the rows are visible only once the setting applies; were the
 * gate ever evaluated first, it would refuse (fail closed), never pass. The work's statements, which
 * do depend on RLS, run only after the whole statement succeeded.
 */
const setContext = (c: ISql, scope: TenantScope, readOnly = false) => {
  const role = testOnlyFaults.role ?? runtimeRole
  // Signup: the tenant row is created in this transaction; there is no actor to check yet.
  if (scope.isNewTenant) return c`select set_config('role', ${role}, true), set_config('app.tenant_id', ${scope.tenantId}, true)`
  const userId = scope.userId ?? null
  // 'off' is the default at the start of a transaction: setting it changes nothing for writes (where
  // default_transaction_read_only is on, e.g. a replica, writes fail, as they would anyway).
  return c`
    select set_config('role', ${role}, true), set_config('app.tenant_id', ${scope.tenantId}, true),
           set_config('transaction_read_only', ${readOnly ? 'on' : 'off'}, true),
           (select coalesce((
              select case
                       when ${userId}::uuid is not null and u.disabled is distinct from false then tenant_actor_refuse('invalid_token')
                       when ${scope.apiKeyId ?? null}::uuid is not null
                        and not exists (select 1 from api_keys k
                                         where k.tenant_id = t.id and k.id = ${scope.apiKeyId ?? null}::uuid
                                           and k.revoked_at is null and (k.expires_at is null or k.expires_at > now()))
                         then tenant_actor_refuse('invalid_token')
                       when exists (select 1 from revoked_tokens r where r.tenant_id = t.id and r.jti = ${scope.jti ?? null}::uuid) then tenant_actor_refuse('token_revoked')
                       when ${scope.minRole ?? null}::text is not null
                        and not coalesce(u.role = any (string_to_array(${(scope.minRole && allowedRoles.get(scope.minRole)) ?? null}::text, ',')), false)
                         then tenant_actor_refuse('forbidden')
                       when t.status <> 'active' then tenant_actor_refuse('tenant_suspended')
                       else true
                     end
                from tenants t left join users u on u.tenant_id = t.id and u.id = ${userId}::uuid
               where t.id = ${scope.tenantId}::uuid), tenant_actor_refuse('invalid_token'))) as actor_ok`
}

/** The answer for each SQLSTATE the gate raises (migration 0011). */
const actorRefusals: Readonly<Record<string, () => AppError>> = {
  SA001: errors.invalidToken,
  SA002: errors.tokenRevoked,
  SA003: () => errors.forbidden(),
  SA004: errors.tenantSuspended,
}

/** The API error for a refusal by the actor gate; undefined for any other error. */
function actorRefusal(error: unknown): AppError | undefined {
  const code = (error as { code?: unknown } | null)?.code
  return typeof code === 'string' && Object.hasOwn(actorRefusals, code) ? actorRefusals[code]?.() : undefined
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
 * Round trips: on a connection of its own, BEGIN, the role and tenant setting and the actor gate go
 * out as one batch (one Sync), and fn's first statements are pipelined right behind it, so a
 * one-query fn costs two round trips (the batch with the query, then COMMIT) instead of four.
 * A write that is a fixed list of statements takes one: withTenantBatch.
 *
 * Fail closed. The answer to the batch arrives before any answer to fn's statements, and the check
 * below is a direct reaction to it, registered before fn runs: it has run before fn sees a result.
 * - If BEGIN or set_config fails, the rest of the batch does not run (one Sync). fn's statements
 *   already sent then fail in the aborted transaction (25P02) or, if BEGIN itself failed, run outside
 *   any transaction without the setting, where RLS shows no rows to a login role that cannot bypass
 *   it (production refuses to start with any other). The connection is handed back at once, so fn's
 *   later statements are refused by the driver, and the pool closes it unless it is idle. The error
 *   is thrown; fn's result is never returned.
 * - If the actor check fails, the gate raises and aborts the transaction before fn's statements run,
 *   so they fail inside it (never outside it); once fn has settled, ROLLBACK: a disabled user's
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
    const setup = conn.batch([begin, setContext(conn, scope)])
    const checked = setup.then(ignore, (error: unknown) => {
      const refused = actorRefusal(error)
      if (refused) {
        // The gate raised: the transaction is open and aborted, fn's statements fail inside it.
        refusal = { error: refused }
        return
      }
      refusal = { error }
      open = false
      release()
    })
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

/** The batch failed: the gate's refusal as its API error, anything else as it is. */
function refusalOrError(error: unknown): unknown {
  return actorRefusal(error) ?? error
}

/**
 * Runs a batch built by `send` on the shared pool, once more if PostgreSQL answered 26000 (a
 * prepared statement that does not exist). Batches of different requests share connections: when
 * one batch fails (a refused actor), the server discards the rest of it up to its Sync, including
 * the Parse of a statement new on that connection, while the driver may already have sent a Bind of
 * that statement in a neighbouring batch. The neighbour then fails through no fault of its own. A
 * failed batch kept nothing (one implicit transaction), so sending it again, rebuilt, is safe; the
 * driver prepares the statement afresh. Any other error, and a refusal, is thrown as it is.
 */
async function batchOnPool<T>(send: () => Promise<T>): Promise<T> {
  try {
    return await send()
  } catch (error) {
    if ((error as { code?: unknown } | null)?.code !== '26000') throw refusalOrError(error)
  }
  try {
    return await send()
  } catch (error) {
    throw refusalOrError(error)
  }
}

/**
 * The one-round-trip read: the setting, the actor gate and fn's query in a single batch with no
 * BEGIN or COMMIT: PostgreSQL runs everything up to the batch's one Sync as one implicit
 * transaction, so the transaction-local setting covers exactly these statements, and if the setting
 * fails or the gate refuses, the query after it does not run at all: a refused actor gets an error,
 * never a row and never an empty answer that would tell whether a row exists. The transaction is
 * read-only (a write in `query` fails).
 *
 * No connection is reserved: the batch keeps its statements together up to its own Sync, so batches
 * of concurrent requests share the pool's connections, pipelined, each its own implicit
 * transaction. A statement from elsewhere never runs inside it, nor it outside its Sync.
 * `query` must return the query without running it (no `async`, no await, no query of its own):
 * run on its own, a query has no tenant setting and no actor gate. Under a production login (no
 * BYPASSRLS, checked at start) it sees no rows; under a superuser development login it would see
 * every tenant's. The types make this hard to do by accident (the callback must return a query).
 */
export async function withTenantRead<R extends readonly Row[]>(
  sql: Sql,
  scope: Omit<TenantScope, 'isNewTenant'>,
  query: (tx: TenantTx) => PendingQuery<R>,
): Promise<Awaited<PendingQuery<R>>> {
  const [, rows] = await batchOnPool(() => sql.batch([setContext(sql, scope, true), query(tenantTx(sql, scope.tenantId))]))
  return rows
}

/**
 * A write in one round trip, for a write that is a fixed list of statements (no statement needs an
 * earlier one's answer in JS; SQL can: a later statement sees the rows an earlier one wrote). The
 * setting, the actor gate and the statements go out as one batch: one implicit transaction that
 * commits at the batch's Sync if every statement succeeded, and keeps nothing if any failed. If the
 * setting or the gate fails, none of the statements runs. Like withTenantRead it reserves no
 * connection. Resolves with the statements' results, in order.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- the driver's own constraint for sql.batch: any row type
export async function withTenantBatch<const Q extends readonly PendingQuery<any>[]>(
  sql: Sql,
  scope: Omit<TenantScope, 'isNewTenant'>,
  statements: (tx: TenantTx) => Q,
): Promise<{ -readonly [K in keyof Q]: Awaited<Q[K]> }> {
  const [, ...results] = await batchOnPool(() => sql.batch([setContext(sql, scope), ...statements(tenantTx(sql, scope.tenantId))]))
  return results
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
