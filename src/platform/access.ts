import fp from 'fastify-plugin'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { hasRole } from './auth/access-tokens.ts'
import type { AccessClaims, AccessTokens, Role } from './auth/access-tokens.ts'
import type { TenantScope } from './db/tenant.ts'
import { permissions } from './permissions.ts'
import type { ApiKeyScope, Permission, PermissionRule } from './permissions.ts'
import type { Config } from './config.ts'
import { AppError, errors } from './errors.ts'
import type { Metrics } from './metrics.ts'
import { isExceeded } from './ratelimit/counters.ts'
import type { Limit, LimitState } from './ratelimit/counters.ts'
import type { CredentialAttempt, CredentialOutcome } from './ratelimit/credentials.ts'
import type { RateLimiter } from './ratelimit/limiter.ts'

/**
 * Who may call a route, declared once in its config and enforced here for every route:
 * - public: anyone (health, docs, JWKS); no rate limit
 * - credentials: signup/login/refresh; limited per client IP (every attempt) and per account
 *   (failed attempts), with per-(account, address) locks on password login (ratelimit/credentials.ts)
 * - user: any valid user access token (logout, MFA enrolment); API keys are refused
 * - tenant: a token or API key of the tenant in the path, allowed by the permission table
 */
export type Access =
  | { readonly kind: 'public' }
  | { readonly kind: 'credentials'; readonly account: (body: unknown) => string }
  | { readonly kind: 'user' }
  | { readonly kind: 'tenant'; readonly permission: Permission }

export interface UserPrincipal extends AccessClaims {
  readonly kind: 'user'
  readonly role: Role
  /** The route's minimum role, checked again against the user's current role in the database. */
  readonly minRole?: Role | undefined
}

export interface ApiKeyPrincipal {
  readonly kind: 'api_key'
  readonly tid: string
  readonly keyId: string
  readonly scopes: readonly ApiKeyScope[]
}

export type Principal = UserPrincipal | ApiKeyPrincipal

/** Verifies an `sk_` API key against the database; throws a 401 AppError when it does not hold. */
export interface ApiKeyVerifier {
  verify(key: string): Promise<ApiKeyPrincipal>
}

export const apiKeyPrefix = 'sk_'

declare module 'fastify' {
  interface FastifyContextConfig {
    access?: Access
  }
  interface FastifyRequest {
    principal: Principal | undefined
    /** Set by the credentials gate, so the outcome of the attempt can be reported. */
    credentialAttempt: CredentialAttempt | undefined
  }
}


/** The principal of a route whose access is 'user' or 'tenant'; the hooks guarantee it exists. */
export function principalOf(request: FastifyRequest): Principal {
  if (!request.principal) throw errors.unauthenticated()
  return request.principal
}

/** The user behind a 'user' route (API keys never get there). */
export function userPrincipalOf(request: FastifyRequest): UserPrincipal {
  const p = principalOf(request)
  if (p.kind !== 'user') throw errors.forbidden('API keys cannot call this endpoint.')
  return p
}

/** Decides from the permission table alone; throws 403 forbidden or mfa_step_up_required. */
export function authorize(p: Principal, permission: Permission, requireMfaForAdmin: boolean): void {
  const rule: PermissionRule = permissions[permission]
  if (p.kind === 'api_key') {
    if (!rule.apiKeyScope) throw errors.forbidden('API keys cannot call this endpoint.')
    if (!p.scopes.includes(rule.apiKeyScope)) throw errors.forbidden(`This API key lacks the ${rule.apiKeyScope} scope.`)
    return
  }
  if (!hasRole(p.role, rule.minRole)) throw errors.forbidden()
  if (rule.adminAction && requireMfaForAdmin && !p.amr.includes('otp'))
    throw new AppError('mfa_step_up_required', 'This admin action needs a login with a one-time code (TOTP). Log in again with otp.', 403)
}

interface AccessOptions {
  config: Config
  tokens: AccessTokens
  apiKeys: ApiKeyVerifier
  limiter: RateLimiter
  metrics: Metrics
}

function bearer(request: FastifyRequest): string {
  const header = request.headers.authorization
  if (!header) throw errors.unauthenticated()
  const match = /^Bearer ([A-Za-z0-9._~+/-]+=*)$/i.exec(header)
  if (!match?.[1]) throw new AppError('invalid_token', 'Send the token as "Authorization: Bearer <token>".', 401, undefined, { 'WWW-Authenticate': 'Bearer error="invalid_token"' })
  return match[1]
}

function setLimitHeaders(reply: FastifyReply, states: readonly LimitState[]): LimitState | undefined {
  // Report the limit closest to exhaustion.
  const closest = [...states].sort((a, b) => a.limit.max - a.count - (b.limit.max - b.count))[0]
  if (!closest) return undefined
  void reply.headers({
    'RateLimit-Limit': closest.limit.max,
    'RateLimit-Remaining': Math.max(0, closest.limit.max - closest.count),
    'RateLimit-Reset': Math.ceil(closest.resetMs / 1000),
  })
  // Several limits may be exhausted at once: the client must wait for the last of them.
  return states.filter(isExceeded).sort((a, b) => b.resetMs - a.resetMs)[0]
}

async function accessPlugin(app: FastifyInstance, opts: AccessOptions): Promise<void> {
  const { config, tokens, apiKeys, limiter, metrics } = opts
  app.decorateRequest('principal', undefined)
  app.decorateRequest('credentialAttempt', undefined)

  function refuseIfExceeded(reply: FastifyReply, states: readonly LimitState[]): void {
    const exceeded = setLimitHeaders(reply, states)
    if (exceeded) {
      metrics.rateLimited.inc({ limit: exceeded.limit.name })
      const retry = String(Math.max(1, Math.ceil(exceeded.resetMs / 1000)))
      throw new AppError('rate_limited', `Too many requests (${exceeded.limit.name} limit). Retry after ${retry} s.`, 429, undefined, { 'Retry-After': retry })
    }
  }

  async function enforceLimits(reply: FastifyReply, limits: Limit[], jti?: string): Promise<boolean> {
    const result = await limiter.check(limits, jti)
    refuseIfExceeded(reply, result.states)
    return result.revoked
  }

  // Authentication runs first, before the body is even read.
  app.addHook('onRequest', async (request) => {
    const access = request.routeOptions.config.access
    if (!access || access.kind === 'public' || access.kind === 'credentials') return
    const token = bearer(request)
    if (token.startsWith(apiKeyPrefix)) {
      if (access.kind !== 'tenant') throw errors.forbidden('API keys cannot call this endpoint.')
      request.principal = await apiKeys.verify(token)
      return
    }
    const claims = await tokens.verify(token)
    request.principal = { ...claims, kind: 'user', role: claims.roles[0] ?? 'viewer' }
  })

  // Token routes are counted before validation, so malformed floods spend the caller's budget too.
  app.addHook('preValidation', async (request, reply) => {
    const access = request.routeOptions.config.access
    if (access?.kind !== 'user' && access?.kind !== 'tenant') return
    const p = principalOf(request)
    const limits = limiter.limitsFor(p.tid)
    const revoked = await enforceLimits(
      reply,
      [
        { name: 'tenant', key: `t:${p.tid}`, max: limits.tenantPerMinute },
        { name: 'principal', key: p.kind === 'user' ? `u:${p.sub}` : `k:${p.keyId}`, max: limits.principalPerMinute },
      ],
      p.kind === 'user' ? p.jti : undefined,
    )
    if (revoked) throw errors.tokenRevoked()
  })

  // The outcome of a credentials attempt, reported before the answer leaves, so that the client's
  // next attempt already sees it. The status says it all; the auth module needs no hook of its own.
  app.addHook('onSend', (request, reply, payload, done) => {
    const attempt = request.credentialAttempt
    if (!attempt) return done(null, payload)
    request.credentialAttempt = undefined
    limiter.reportCredentials(attempt, credentialOutcome(reply.statusCode)).then(
      () => done(null, payload),
      (error: unknown) => done(error instanceof Error ? error : new Error(String(error))),
    )
  })

  // After validation (path parameters are checked first), before any handler reads data.
  app.addHook('preHandler', async (request, reply) => {
    const access = request.routeOptions.config.access
    if (access?.kind === 'credentials') {
      // Credentials routes key their account limit on the validated body.
      const attempt: CredentialAttempt = {
        account: access.account(request.body),
        ip: request.ip,
        max: config.rateLimit.authPerMinute,
        lockout: passwordLoginRoutes.has(request.routeOptions.url ?? ''),
      }
      const states = await limiter.checkCredentials(attempt)
      // Set before a refusal, so that a refused attempt is refunded like any other non-failure.
      request.credentialAttempt = attempt
      refuseIfExceeded(reply, states)
      return
    }
    if (access?.kind !== 'tenant') return
    const p = principalOf(request)
    const { tenantId } = request.params as { tenantId?: string }
    if (tenantId?.toLowerCase() !== p.tid) throw errors.tenantMismatch()
    authorize(p, access.permission, config.requireMfaForAdmin)
    // The database re-checks the user's current role in the tenant transaction (a demotion takes effect at once).
    if (p.kind === 'user') request.principal = { ...p, minRole: permissions[access.permission].minRole }
  })
}

/**
 * Routes where a password is guessed: failures lock the (account, address) pair, and an address
 * that logged in successfully stays exempt from the account-wide limit (ratelimit/credentials.ts).
 */
const passwordLoginRoutes = new Set(['/v1/auth/login'])

/**
 * 401 (invalid_credentials, mfa_required, invalid_token, refresh_token_reused) and 409 (signup:
 * slug taken) are failed attempts; 2xx a success; anything else (429, 403, 5xx) neither, and refunded.
 */
function credentialOutcome(status: number): CredentialOutcome {
  if (status === 401 || status === 409) return 'failure'
  return status >= 200 && status < 300 ? 'success' : 'neither'
}

/** The tenant transaction scope of a principal: its tenant, user, token and the route's minimum role. */
export function tenantScope(p: Principal): TenantScope {
  // An API key was verified in onRequest; the gate checks again, in the transaction, that it is
  // still unrevoked and unexpired (a revocation in between must not serve the request).
  if (p.kind === 'api_key') return { tenantId: p.tid, apiKeyId: p.keyId }
  return { tenantId: p.tid, userId: p.sub, jti: p.jti, minRole: p.minRole }
}

export const access = fp(accessPlugin, { name: 'access' })
