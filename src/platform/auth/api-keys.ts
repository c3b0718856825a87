import { createHash, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto'
import type { Sql } from 'postgres'
import type { ApiKeyPrincipal, ApiKeyVerifier } from '../access.ts'
import { withTenant } from '../db/tenant.ts'
import { AppError } from '../errors.ts'
import { apiKeyScopes } from '../permissions.ts'
import type { ApiKeyScope } from '../permissions.ts'

/**
 * API keys look like `sk_<tenant id hex><key id hex>_<secret>`: the tenant and key ids let the
 * server find the row inside that tenant's RLS context; only SHA-256 of the 256-bit secret is
 * stored (a fast hash is right for a random secret; argon2 is for passwords).
 */
const keyPattern = /^sk_([0-9a-f]{32})([0-9a-f]{32})_([A-Za-z0-9_-]{43})$/

/** last_used_at is written at most this often per key, so a busy key costs no write per request. */
const lastUsedResolutionSec = 60

export interface NewApiKey {
  readonly id: string
  readonly key: string
  readonly prefix: string
  readonly secretHash: Buffer
}

const hex = (uuid: string) => uuid.replaceAll('-', '')
const uuidOf = (h: string) => `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`
const sha256 = (text: string) => createHash('sha256').update(text).digest()

/** Makes a new key for a tenant: the full key is returned once, to be shown once. */
export function generateApiKey(tenantId: string, id: string = randomUUID()): NewApiKey {
  const secret = randomBytes(32).toString('base64url')
  const key = `sk_${hex(tenantId)}${hex(id)}_${secret}`
  return { id, key, prefix: `sk_${hex(id).slice(0, 12)}`, secretHash: sha256(secret) }
}

interface KeyRow {
  secret_hash: Buffer
  scopes: string[]
  expired: boolean
  revoked: boolean
  stale: boolean
}

const invalidKey = () =>
  new AppError('invalid_token', 'The API key is not valid (unknown, revoked or expired).', 401, undefined, { 'WWW-Authenticate': 'Bearer error="invalid_token"' })

/** Checks a key against the database on every request, so a revoked or expired key fails at once. */
export function createApiKeyVerifier(sql: Sql): ApiKeyVerifier {
  return {
    async verify(key: string): Promise<ApiKeyPrincipal> {
      const m = keyPattern.exec(key)
      if (!m?.[1] || !m[2] || !m[3]) throw invalidKey()
      const tenantId = uuidOf(m[1])
      const keyId = uuidOf(m[2])
      const presented = sha256(m[3])
      let row: KeyRow | undefined
      try {
        row = await withTenant(sql, { tenantId }, async (t) => {
          const [found] = await t.sql<KeyRow[]>`
            select secret_hash, scopes, coalesce(expires_at <= now(), false) as expired, revoked_at is not null as revoked,
                   coalesce(last_used_at < now() - make_interval(secs => ${lastUsedResolutionSec}), true) as stale
              from api_keys where tenant_id = ${t.tenantId} and id = ${keyId}`
          if (found?.stale && !found.revoked && !found.expired && timingSafeEqual(found.secret_hash, presented))
            await t.sql`update api_keys set last_used_at = now() where tenant_id = ${t.tenantId} and id = ${keyId}`
          return found
        })
      } catch (err) {
        // A tenant that does not exist reads like an unknown key; a suspended one stays 403.
        if (err instanceof AppError && err.code === 'invalid_token') throw invalidKey()
        throw err
      }
      // Compared in constant time; the same answer for unknown, wrong, revoked and expired keys.
      const matches = row !== undefined && row.secret_hash.length === presented.length && timingSafeEqual(row.secret_hash, presented)
      if (!row || !matches || row.revoked || row.expired) throw invalidKey()
      const scopes = row.scopes.filter((s): s is ApiKeyScope => (apiKeyScopes as readonly string[]).includes(s))
      return { kind: 'api_key', tid: tenantId, keyId, scopes }
    },
  }
}
