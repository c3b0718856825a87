import { Type } from 'typebox'
import type { Static } from 'typebox'
import { apiKeyScopes } from '../../platform/permissions.ts'
import type { ApiKeyScope } from '../../platform/permissions.ts'
import { ListQueryBase, Timestamp, Uuid, noNul, page, strict } from '../../platform/schemas.ts'

const Name = Type.String({ minLength: 1, maxLength: 100, pattern: noNul, description: 'What the key is for, 1–100 characters' })
const Scope = Type.Union(
  [Type.Literal('projects:read'), Type.Literal('projects:write'), Type.Literal('tasks:read'), Type.Literal('tasks:write')],
  { description: 'Each exact: a write scope does not imply read' },
)
const Scopes = Type.Array(Scope, { minItems: 1, maxItems: apiKeyScopes.length, uniqueItems: true })
const Prefix = Type.String({ maxLength: 67, pattern: '^sk_[0-9a-f]{64}$', description: 'The non-secret start of the key (before the last "_"), to recognise it' })
const NullableTimestamp = Type.Union([Timestamp, Type.Null()])

/** A key as listed: never the key itself nor its hash. */
export const ApiKey = Type.Object(
  {
    id: Uuid,
    name: Name,
    scopes: Scopes,
    prefix: Prefix,
    expires_at: NullableTimestamp,
    created_at: Timestamp,
    last_used_at: Type.Union([Timestamp, Type.Null()], { description: 'Last successful authentication, to the minute' }),
    revoked_at: NullableTimestamp,
  },
  strict,
)
export const ApiKeyPage = page(ApiKey)

/** The creation answer: the only time the key is shown. */
export const CreatedApiKey = Type.Object(
  {
    id: Uuid,
    name: Name,
    scopes: Scopes,
    prefix: Prefix,
    key: Type.String({ maxLength: 120, pattern: '^sk_[0-9a-f]{64}_[A-Za-z0-9_-]{43}$', description: 'Send as "Authorization: Bearer <key>". Shown only now: store it safely.' }),
    expires_at: NullableTimestamp,
    created_at: Timestamp,
  },
  strict,
)

export const CreateApiKey = Type.Object(
  {
    name: Name,
    scopes: Scopes,
    expires_at: Type.Optional(Type.Union([Timestamp, Type.Null()], { description: 'When the key stops working (in the future); omitted or null: never' })),
  },
  strict,
)

export const ListApiKeysQuery = Type.Object({ ...ListQueryBase }, strict)

export type ApiKeyView = Static<typeof ApiKey>
export type CreatedApiKeyView = Static<typeof CreatedApiKey>
export type CreateApiKeyInput = Static<typeof CreateApiKey>
export type ListApiKeysInput = Static<typeof ListApiKeysQuery>

// The schema's scopes are the permission table's scopes, no more and no fewer.
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false
const scopesMatch: Same<Static<typeof Scope>, ApiKeyScope> = true
void scopesMatch
