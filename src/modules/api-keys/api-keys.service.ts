import type { Sql } from 'postgres'
import { uuidv7 } from 'uuidv7'
import { tenantScope } from '../../platform/access.ts'
import type { UserPrincipal } from '../../platform/access.ts'
import { recordAudit } from '../../platform/audit.ts'
import type { AuditContext } from '../../platform/audit.ts'
import { generateApiKey } from '../../platform/auth/api-keys.ts'
import type { CursorCodec } from '../../platform/cursor.ts'
import { withTenant } from '../../platform/db/tenant.ts'
import { errors } from '../../platform/errors.ts'
import * as repo from './api-keys.repo.ts'
import type { DbApiKey } from './api-keys.repo.ts'
import type { ApiKeyView, CreateApiKeyInput, CreatedApiKeyView, ListApiKeysInput } from './api-keys.schemas.ts'

export interface ApiKeysDeps {
  readonly sql: Sql
  readonly cursors: CursorCodec
}

const iso = (d: Date | null) => (d ? d.toISOString() : null)

function toApiKey(row: DbApiKey): ApiKeyView {
  return {
    id: row.id,
    name: row.name,
    scopes: row.scopes,
    prefix: row.prefix,
    expires_at: iso(row.expires_at),
    created_at: row.created_at.toISOString(),
    last_used_at: iso(row.last_used_at),
    revoked_at: iso(row.revoked_at),
  }
}

/** An expiry must be a real instant in the future; checked here because "now" is not a schema. */
function expiryOf(expiresAt: string | null | undefined): Date | null {
  if (expiresAt === undefined || expiresAt === null) return null
  const at = new Date(expiresAt)
  if (!(at.getTime() > Date.now())) throw errors.validation([{ path: '/body/expires_at', message: 'must be in the future' }])
  return at
}

/** Creates a key; the answer is the only place the whole key ever appears. */
export async function createApiKey(deps: ApiKeysDeps, actor: UserPrincipal, input: CreateApiKeyInput, ctx: AuditContext): Promise<CreatedApiKeyView> {
  const expiresAt = expiryOf(input.expires_at)
  const fresh = generateApiKey(actor.tid, uuidv7())
  const row = await withTenant(deps.sql, tenantScope(actor), async (t) => {
    const created = await repo.insertApiKey(t, { id: fresh.id, name: input.name, scopes: input.scopes, prefix: fresh.prefix, secretHash: fresh.secretHash, expiresAt, createdBy: actor.sub })
    await recordAudit(t, actor, 'api_key.created', { type: 'api_key', id: created.id }, ctx, { scopes: created.scopes, expires_at: iso(created.expires_at) })
    return created
  })
  const view = toApiKey(row)
  return { id: view.id, name: view.name, scopes: view.scopes, prefix: view.prefix, key: fresh.key, expires_at: view.expires_at, created_at: view.created_at }
}

/** Lists every key of the tenant, revoked and expired ones included (they say when they stopped). */
export async function listApiKeys(deps: ApiKeysDeps, actor: UserPrincipal, q: ListApiKeysInput) {
  const limit = q.limit ?? 20
  const [afterId] = q.cursor ? deps.cursors.decode(actor.tid, 'api-keys', q.cursor) : []
  const rows = await withTenant(deps.sql, tenantScope(actor), (t) => repo.listApiKeys(t, limit, afterId))
  const items = rows.slice(0, limit)
  const last = items.at(-1)
  const next = rows.length > limit && last ? deps.cursors.encode(actor.tid, 'api-keys', [last.id]) : null
  return { items: items.map(toApiKey), next_cursor: next }
}

/** Revokes a key: it is refused from the next request on. An already revoked key is 404, like a deleted one. */
export async function revokeApiKey(deps: ApiKeysDeps, actor: UserPrincipal, id: string, ctx: AuditContext): Promise<void> {
  const revoked = await withTenant(deps.sql, tenantScope(actor), async (t) => {
    const done = await repo.revokeApiKey(t, id)
    if (done) await recordAudit(t, actor, 'api_key.revoked', { type: 'api_key', id }, ctx)
    return done
  })
  if (!revoked) throw errors.notFound('API key')
}
