import { createHash, randomBytes } from 'node:crypto'

/**
 * Refresh tokens are opaque: "rt_<tenant id, 32 hex>.<32 random bytes, base64url>". Refresh runs
 * before any tenant context exists, so the token names its tenant; the lookup then runs inside
 * that tenant's transaction by hash, and a forged tenant part simply finds nothing. Only the
 * SHA-256 of the whole token is stored (the secret has 256 bits of entropy, so a fast hash is
 * enough: there is nothing to brute-force).
 */
export interface MintedRefreshToken {
  readonly token: string
  readonly hash: Buffer
}

export interface ParsedRefreshToken {
  readonly tenantId: string
  readonly hash: Buffer
}

const tokenPattern = /^rt_([0-9a-f]{32})\.[A-Za-z0-9_-]{43}$/

export function hashRefreshToken(token: string): Buffer {
  return createHash('sha256').update(token).digest()
}

export function mintRefreshToken(tenantId: string): MintedRefreshToken {
  const token = `rt_${tenantId.replaceAll('-', '').toLowerCase()}.${randomBytes(32).toString('base64url')}`
  return { token, hash: hashRefreshToken(token) }
}

/** The tenant and hash of a well-formed token; undefined for anything else. */
export function parseRefreshToken(token: string): ParsedRefreshToken | undefined {
  const hex = tokenPattern.exec(token)?.[1]
  if (!hex) return undefined
  const tenantId = `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`
  return { tenantId, hash: hashRefreshToken(token) }
}

/** Rate-limit account key: a short hash, so the token itself never reaches Redis. */
export function refreshAccountKey(token: string): string {
  return hashRefreshToken(token).subarray(0, 12).toString('base64url')
}
