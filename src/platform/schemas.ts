import { Type } from 'typebox'
import type { TSchema } from 'typebox'

/** Shared schema pieces: every route declares params, query, body and every response. */
export const Uuid = Type.String({ format: 'uuid', maxLength: 36, description: 'UUID' })
export const Timestamp = Type.String({ format: 'date-time', maxLength: 40, description: 'RFC 3339, UTC' })

export const strict = { additionalProperties: false } as const

/** PostgreSQL text cannot hold U+0000: refuse it in the schema, with the field named, not in the database. */
export const noNul = '^[^\\u0000]*$'

/**
 * Cursors carry the last row's sort value (a name of up to 200 characters, JSON-escaped, base64url)
 * and a MAC; 4096 leaves room for the worst case, so a next_cursor always fits its own schema.
 */
export const cursorMaxLength = 4096

export const TenantParams = Type.Object({ tenantId: Uuid }, strict)
export const TenantItemParams = Type.Object({ tenantId: Uuid, id: Uuid }, strict)

export const Problem = Type.Object(
  {
    type: Type.String({ maxLength: 200 }),
    title: Type.String({ maxLength: 200 }),
    status: Type.Integer({ minimum: 400, maximum: 599 }),
    detail: Type.String({ maxLength: 1000 }),
    code: Type.String({ maxLength: 64, pattern: '^[a-z_]+$' }),
    request_id: Type.String({ maxLength: 128 }),
    errors: Type.Optional(
      Type.Array(Type.Object({ path: Type.String({ maxLength: 500 }), message: Type.String({ maxLength: 500 }) }, strict), { maxItems: 100 }),
    ),
  },
  { ...strict, $id: 'Problem', description: 'RFC 9457 problem details (application/problem+json)' },
)

const problemRef = (description: string) => ({ ...Type.Unsafe({ $ref: 'Problem#' }), description })

/** Error responses every route may give; documented so the OpenAPI tells clients what to expect. */
export function errorResponses(kind: 'public' | 'authenticated' | 'tenant', extra: Record<number, string> = {}) {
  const base: Record<number, string> = {
    400: 'Validation failed (validation_failed, malformed_json)',
    413: 'Body larger than 1 MiB (payload_too_large)',
    415: 'Body is not application/json (unsupported_media_type)',
    429: 'Rate limit exceeded (rate_limited); see Retry-After',
    500: 'Unexpected error (internal_error); always a bug',
    503: 'A dependency is down (unavailable)',
  }
  if (kind !== 'public') base[401] = 'Missing, invalid, expired or revoked token'
  if (kind === 'tenant') {
    base[403] = 'Wrong tenant (tenant_mismatch), role too low (forbidden) or tenant suspended'
    base[404] = 'Not found, or belongs to another tenant (not_found)'
  }
  const all = { ...base, ...extra }
  return Object.fromEntries(Object.entries(all).map(([status, description]) => [status, problemRef(description)])) as Record<string, TSchema>
}

export const ListQueryBase = {
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 100, default: 20, description: 'Page size, 1–100' })),
  cursor: Type.Optional(Type.String({ minLength: 1, maxLength: cursorMaxLength, pattern: '^[A-Za-z0-9_-]+\\.[A-Za-z0-9_-]+$', description: 'Opaque cursor from next_cursor' })),
}

export function page<T extends TSchema>(item: T) {
  return Type.Object({ items: Type.Array(item, { maxItems: 100 }), next_cursor: Type.Union([Type.String({ maxLength: cursorMaxLength }), Type.Null()]) }, strict)
}
