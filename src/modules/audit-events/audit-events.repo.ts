import type { TenantTx } from '../../platform/db/tenant.ts'

export interface DbAuditEvent {
  id: string
  at: Date
  at_key: string
  actor_type: 'user' | 'api_key' | 'operator' | 'system'
  actor_id: string | null
  action: string
  target_type: string | null
  target_id: string | null
  request_id: string | null
  ip: string | null
  details: Record<string, unknown>
}

export interface ListOptions {
  limit: number
  action: string | undefined
  since: string | undefined
  /** [at as text, id] of the last row already returned. */
  after: readonly string[] | undefined
}

/** Newest first, keyset on (at, id); filters are bound parameters. */
export async function listAuditEvents(t: TenantTx, o: ListOptions): Promise<DbAuditEvent[]> {
  const { sql } = t
  const [at, id] = o.after ?? []
  const action = o.action !== undefined ? sql`and action = ${o.action}` : sql``
  const since = o.since !== undefined ? sql`and at >= ${o.since}::timestamptz` : sql``
  const after = o.after !== undefined ? sql`and (at, id) < (${at ?? ''}::timestamptz, ${id ?? ''}::uuid)` : sql``
  return sql<DbAuditEvent[]>`
    select id, at, to_char(at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') as at_key, actor_type, actor_id, action,
           target_type, target_id, request_id, host(ip) as ip, details
      from audit_events
     where tenant_id = ${t.tenantId} ${action} ${since} ${after}
     order by at desc, id desc
     limit ${o.limit + 1}`
}
