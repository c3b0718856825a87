import { Type } from 'typebox'
import type { Static } from 'typebox'
import { Timestamp, Uuid, strict, noNul } from '../../platform/schemas.ts'

/** PostgreSQL cannot store U+0000 in text or jsonb: refuse it here, naming the field. */

const Name = Type.String({ minLength: 1, maxLength: 200, pattern: noNul })
const Slug = Type.String({ minLength: 3, maxLength: 63, pattern: '^[a-z0-9-]{3,63}$' })

/** Bounds of tenant settings; a flat object so that it cannot grow without limit or nest. */
export const settingsLimits = { maxKeys: 50, keyPattern: '^[A-Za-z0-9_.-]{1,64}$', maxStringLength: 1000 } as const

const SettingValue = Type.Union([
  Type.String({ maxLength: settingsLimits.maxStringLength, pattern: noNul }),
  // Bounded so that 1e400 (Infinity after JSON.parse) is refused, not stored as null.
  Type.Number({ minimum: -Number.MAX_VALUE, maximum: Number.MAX_VALUE }),
  Type.Boolean(),
  Type.Null(),
])
export const Settings = Type.Record(Type.String({ pattern: settingsLimits.keyPattern }), SettingValue, {
  additionalProperties: false,
  maxProperties: settingsLimits.maxKeys,
  description:
    'Flat JSON object of at most 50 keys; a key is 1–64 characters of [A-Za-z0-9_.-]; a value is a string (at most 1000 characters, no U+0000), a finite number, a boolean or null. PATCH replaces the whole object.',
})

export const Tenant = Type.Object({ id: Uuid, slug: Slug, name: Name, settings: Settings, created_at: Timestamp }, strict)

export const UpdateTenant = Type.Object(
  { name: Type.Optional(Name), settings: Type.Optional(Settings) },
  { ...strict, minProperties: 1, description: 'The slug cannot be changed: it names the tenant at login.' },
)

export type TenantRow = Static<typeof Tenant>
export type TenantSettings = Static<typeof Settings>
export type UpdateTenantInput = Static<typeof UpdateTenant>
