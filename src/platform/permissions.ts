import type { Role } from './auth/access-tokens.ts'

/** Scopes an API key may carry; each exact (a write scope does not imply read). */
export const apiKeyScopes = ['projects:read', 'projects:write', 'tasks:read', 'tasks:write'] as const
export type ApiKeyScope = (typeof apiKeyScopes)[number]

export interface PermissionRule {
  /** Lowest user role allowed (owner > admin > member > viewer). */
  readonly minRole: Role
  /** Admin action: needs an `otp` login when REQUIRE_MFA_FOR_ADMIN=true, and no API key reaches it. */
  readonly adminAction: boolean
  /** The scope an API key needs; null: API keys are refused (403 forbidden). */
  readonly apiKeyScope: ApiKeyScope | null
}

/**
 * THE permission table: every tenant route names one of these in its config, and the access
 * plugin decides from this table alone. A test walks every route × role against it.
 */
export const permissions = {
  'tenant:read': { minRole: 'member', adminAction: false, apiKeyScope: null },
  'tenant:update': { minRole: 'admin', adminAction: true, apiKeyScope: null },
  'users:read': { minRole: 'member', adminAction: false, apiKeyScope: null },
  'users:manage': { minRole: 'admin', adminAction: true, apiKeyScope: null },
  'projects:read': { minRole: 'viewer', adminAction: false, apiKeyScope: 'projects:read' },
  'projects:write': { minRole: 'member', adminAction: false, apiKeyScope: 'projects:write' },
  'tasks:read': { minRole: 'viewer', adminAction: false, apiKeyScope: 'tasks:read' },
  'tasks:write': { minRole: 'member', adminAction: false, apiKeyScope: 'tasks:write' },
  'api-keys:manage': { minRole: 'admin', adminAction: true, apiKeyScope: null },
  'audit:read': { minRole: 'admin', adminAction: true, apiKeyScope: null },
} as const satisfies Record<string, PermissionRule>

export type Permission = keyof typeof permissions
