import { createHash, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto'
import type { Sql } from 'postgres'
import type { ApiKeyPrincipal, ApiKeyVerifier } from '../access.ts'
import { withTenant, withoutTenant } from '../db/tenant.ts'
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
  /** The whole key: shown once, at creation, and never stored. */
  readonly key: string
  /** The key's non-secret lookup part (`sk_<tenant hex><key id hex>`), exactly how the key starts. */
  readonly prefix: string
  readonly secretHash: Buffer
}

const hex = (uuid: string) => uuid.replaceAll('-', '').toLowerCase()
const uuidOf = (h: string) => `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`
const sha256 = (text: string) => createHash('sha256').update(text).digest()

/** Compared against when no row exists, so an unknown key id costs the same compare as a known one. */
const noHash = Buffer.alloc(32)

/** Makes a new key for a tenant: the full key is returned once, to be shown once. */
export function generateApiKey(tenantId: string, id: string = randomUUID()): NewApiKey {
  const secret = randomBytes(32).toString('base64url')
  // A prefix cut from a v7 id would be its timestamp (shared by keys made in the same millisecond);
  // the whole lookup part is unique and lets a user match a listed key to the key they hold.
  const prefix = `sk_${hex(tenantId)}${hex(id)}`
  return { id: id.toLowerCase(), key: `${prefix}_${secret}`, prefix, secretHash: sha256(secret) }
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

/** Constant-time equality of the stored and presented hashes; false (after the same work) when no row. */
function sameHash(stored: Buffer | undefined, presented: Buffer): boolean {
  const candidate = stored?.length === presented.length ? stored : noHash
  return timingSafeEqual(candidate, presented) && candidate === stored
}

/** Checks a key against the database on every request, so a revoked or expired key fails at once. */
export function createApiKeyVerifier(sql: Sql): ApiKeyVerifier {
  return {
    async verify(key: string): Promise<ApiKeyPrincipal> {
      const m = keyPattern.exec(key)
      if (!m?.[1] || !m[2] || !m[3]) throw invalidKey()
      const tenantId = uuidOf(m[1])
      const keyId = uuidOf(m[2])
      const presented = sha256(m[3])
      try {
        return await withTenant(sql, { tenantId }, async (t) => {
          const [row] = await t.sql<KeyRow[]>`
            select secret_hash, scopes, coalesce(expires_at <= now(), false) as expired, revoked_at is not null as revoked,
                   coalesce(last_used_at < now() - make_interval(secs => ${lastUsedResolutionSec}), true) as stale
              from api_keys where tenant_id = ${t.tenantId} and id = ${keyId}`
          // The same answer for unknown, wrong, revoked and expired keys.
          if (!sameHash(row?.secret_hash, presented) || !row || row.revoked || row.expired) throw invalidKey()
          if (row.stale) await t.sql`update api_keys set last_used_at = now() where tenant_id = ${t.tenantId} and id = ${keyId}`
          const scopes = row.scopes.filter((s): s is ApiKeyScope => (apiKeyScopes as readonly string[]).includes(s))
          return { kind: 'api_key', tid: tenantId, keyId, scopes }
        })
      } catch (err) {
        // A tenant that does not exist reads like an unknown key.
        if (err instanceof AppError && err.code === 'invalid_token') throw invalidKey()
        // A suspended tenant is 403 for its live keys only: a forged key must not learn the status.
        if (err instanceof AppError && err.code === 'tenant_suspended') {
          const [live] = await withoutTenant(sql, (tx) => tx<{ h: Buffer | null }[]>`select api_key_live_hash(${tenantId}::uuid, ${keyId}::uuid) as h`)
          if (!sameHash(live?.h ?? undefined, presented)) throw invalidKey()
        }
        throw err
      }
    },
  }
}
