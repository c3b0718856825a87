import { isIP } from 'node:net'
import type { FastifyRequest } from 'fastify'
import type { ISql, PendingQuery, Row, Sql, TransactionSql } from 'postgres'
import { uuidv7 } from 'uuidv7'
import type { Principal } from './access.ts'
import type { TenantTx } from './db/tenant.ts'

/**
 * The audit log (table audit_events, migration 0009). Every event is one insert inside the
 * caller's own tenant transaction, so it commits or rolls back with the change it records: a
 * change without its event, or an event without its change, cannot happen.
 *
 * Where to call it (modules not wired here; their owners add the line in the same withTenant):
 *   users:    recordAudit(t, actor, 'user.created' | 'user.updated' | 'user.deleted', { type: 'user', id }, ctx, { role, disabled })
 *   api-keys: recordAudit(t, actor, 'api_key.created' | 'api_key.revoked', { type: 'api_key', id }, ctx, { scopes })
 *   auth:     recordAudit(t, { type: 'user', id: userId }, 'auth.mfa_enabled' | 'auth.logout', { type: 'user', id: userId }, ctx)
 * Never put secrets, hashes, tokens or passwords in details.
 */

export type ActorType = 'user' | 'api_key' | 'operator' | 'system'

export interface AuditActor {
  readonly type: ActorType
  readonly id: string | null
}

export interface AuditTarget {
  readonly type: string
  readonly id: string
}

/** Where the request came from; routes pass auditContext(req) to their service. */
export interface AuditContext {
  readonly requestId?: string | undefined
  readonly ip?: string | undefined
}

export interface AuditEvent {
  readonly actor: AuditActor
  /** `<resource>.<verb>`, lower case: project.created, tenant.suspended. */
  readonly action: string
  readonly target?: AuditTarget | undefined
  readonly context?: AuditContext | undefined
  /** Small, non-secret facts (changed field names, new role). Capped at maxDetailsBytes. */
  readonly details?: Readonly<Record<string, unknown>> | undefined
}

export const actionPattern = /^[a-z][a-z0-9_-]*(\.[a-z][a-z0-9_-]*)+$/
/** The column's check constraint allows 4096 bytes of jsonb; stay well inside it. */
export const maxDetailsBytes = 2048

/** The actor behind a request principal: a user (by id) or an API key (by key id). */
export function actorOf(p: Principal): AuditActor {
  return p.kind === 'user' ? { type: 'user', id: p.sub } : { type: 'api_key', id: p.keyId }
}

/** The request id and client IP (already resolved through TRUSTED_PROXIES) of a request. */
export function auditContext(request: FastifyRequest): AuditContext {
  return { requestId: request.id, ip: request.ip }
}

/** Details are for facts, not payloads: anything too large is replaced by a marker, not cut mid-JSON. */
function boundedDetails(details: Readonly<Record<string, unknown>> | undefined): Record<string, unknown> {
  if (!details) return {}
  const json = JSON.stringify(details)
  return Buffer.byteLength(json) <= maxDetailsBytes ? (JSON.parse(json) as Record<string, unknown>) : { truncated: true }
}

function check(event: AuditEvent): void {
  // A bad action name is a programming error: fail the transaction rather than log garbage.
  if (!actionPattern.test(event.action) || event.action.length > 64) throw new Error(`audit action "${event.action}" is not <resource>.<verb>`)
}

const ipOrNull = (ip: string | undefined) => (ip && isIP(ip) ? ip : null)

/**
 * The insert, unrun. `from` (a relation of the same statement, e.g. a data-modifying CTE's name)
 * makes it one event per row of that relation: none if the change it records wrote nothing.
 */
function insertStatement(sql: ISql, tenantId: string, event: AuditEvent, from?: PendingQuery<Row[]>) {
  check(event)
  return sql`
    insert into audit_events (tenant_id, id, actor_type, actor_id, action, target_type, target_id, request_id, ip, details)
    select ${tenantId}::uuid, ${uuidv7()}::uuid, ${event.actor.type}, ${event.actor.id}, ${event.action},
           ${event.target?.type ?? null}, ${event.target?.id ?? null}, ${event.context?.requestId?.slice(0, 128) ?? null},
           ${ipOrNull(event.context?.ip)}::inet, ${sql.json(boundedDetails(event.details))}
      ${from ? sql`from ${from}` : sql``}`
}

async function insert(sql: ISql, tenantId: string, event: AuditEvent): Promise<void> {
  await insertStatement(sql, tenantId, event)
}

/** Records one event in the caller's tenant transaction (RLS: only into that tenant). */
export async function record(t: TenantTx, event: AuditEvent): Promise<void> {
  await insert(t.sql, t.tenantId, event)
}

/** The one-line form for services: recordAudit(t, actor, 'project.created', { type: 'project', id }, ctx). */
export async function recordAudit(
  t: TenantTx,
  actor: Principal | AuditActor,
  action: string,
  target?: AuditTarget,
  context?: AuditContext,
  details?: Readonly<Record<string, unknown>>,
): Promise<void> {
  const who: AuditActor = 'kind' in actor ? actorOf(actor) : actor
  await record(t, { actor: who, action, target, context, details })
}

/**
 * recordAudit's insert, unrun, as the body of a data-modifying CTE: one event per row of `from`, the
 * CTE that made the change (e.g. `with created as (insert … returning …), audited as (<this>)`).
 * Change and event are one statement: the event exists exactly when the change does, and the write
 * costs one statement instead of two (no second statement to bind and run, no probe for the row).
 */
export function auditInsertFrom(
  t: TenantTx,
  actor: Principal,
  action: string,
  target: AuditTarget,
  context: AuditContext | undefined,
  details: Readonly<Record<string, unknown>> | undefined,
  from: PendingQuery<Row[]>,
) {
  return insertStatement(t.sql, t.tenantId, { actor: actorOf(actor), action, target, context, details }, from)
}

/**
 * Operator commands (npm run admin) run as the owner role, outside any request. An event about a
 * tenant goes into that tenant's audit log (the tenant sees that it was suspended, and by whom in
 * operator terms) and into operator_events; an event about no tenant (keys rotate) only into
 * operator_events, which tenants cannot read (no grant to the runtime role).
 * `owner` must be a transaction of the owner role; app.tenant_id is set in it for the tenant insert.
 */
export async function recordOperatorEvent(
  owner: TransactionSql,
  event: { operator: string; action: string; tenantId?: string | undefined; target?: AuditTarget | undefined; details?: Readonly<Record<string, unknown>> | undefined },
): Promise<void> {
  const e: AuditEvent = { actor: { type: 'operator', id: event.operator }, action: event.action, target: event.target, details: event.details }
  check(e)
  await owner`
    insert into operator_events (id, operator, action, target_type, target_id, details)
    values (${uuidv7()}, ${event.operator}, ${event.action}, ${event.target?.type ?? null}, ${event.target?.id ?? null},
            ${owner.json(boundedDetails(event.details))})`
  if (event.tenantId) {
    // Forced RLS applies to the owner too; the tenant policy admits the row once the setting names it.
    await owner`select set_config('app.tenant_id', ${event.tenantId}, true)`
    await insert(owner, event.tenantId, e)
  }
}

/** Who ran an operator command: the OS user, so the log names a person or a deploy account. */
export function operatorName(env: NodeJS.ProcessEnv = process.env): string {
  const name = env.SUDO_USER ?? env.USER ?? env.LOGNAME ?? 'unknown'
  return name.slice(0, 200) || 'unknown'
}

/** Reads operator events (owner role only): for operators and tests, not exposed over HTTP. */
export async function listOperatorEvents(owner: Sql, limit = 100) {
  return owner<{ id: string; at: Date; operator: string; action: string; target_type: string | null; target_id: string | null; details: Record<string, unknown> }[]>`
    select id, at, operator, action, target_type, target_id, details from operator_events order by at desc, id desc limit ${limit}`
}
