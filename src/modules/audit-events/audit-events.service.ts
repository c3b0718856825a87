import type { Sql } from 'postgres'
import { tenantScope } from '../../platform/access.ts'
import type { Principal } from '../../platform/access.ts'
import type { CursorCodec } from '../../platform/cursor.ts'
import { withTenant } from '../../platform/db/tenant.ts'
import * as repo from './audit-events.repo.ts'
import type { AuditEventRow, ListAuditEventsInput } from './audit-events.schemas.ts'

export interface AuditEventsDeps {
  readonly sql: Sql
  readonly cursors: CursorCodec
}

function toEvent(row: repo.DbAuditEvent): AuditEventRow {
  return {
    id: row.id,
    at: row.at.toISOString(),
    actor_type: row.actor_type,
    actor_id: row.actor_id,
    action: row.action,
    target_type: row.target_type,
    target_id: row.target_id,
    request_id: row.request_id,
    ip: row.ip,
    details: row.details,
  }
}

/** The tenant's audit log, newest first; a cursor is bound to the filters that issued it. */
export async function listAuditEvents(deps: AuditEventsDeps, actor: Principal, q: ListAuditEventsInput) {
  const limit = q.limit ?? 20
  const context = `audit:${q.action ?? ''}:${q.since ?? ''}`
  const after = q.cursor ? deps.cursors.decode(actor.tid, context, q.cursor) : undefined
  const rows = await withTenant(deps.sql, tenantScope(actor), (t) => repo.listAuditEvents(t, { limit, action: q.action, since: q.since, after }))
  const items = rows.slice(0, limit)
  const last = items.at(-1)
  // The cursor keeps microseconds (at_key): a millisecond Date would skip or repeat rows.
  const next = rows.length > limit && last ? deps.cursors.encode(actor.tid, context, [last.at_key, last.id]) : null
  return { items: items.map(toEvent), next_cursor: next }
}
