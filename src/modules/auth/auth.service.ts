import postgres from 'postgres'
import type { Sql } from 'postgres'
import { uuidv7 } from 'uuidv7'
import type { UserPrincipal } from '../../platform/access.ts'
import type { AccessTokens, AuthMethod, Role } from '../../platform/auth/access-tokens.ts'
import type { KeyRing } from '../../platform/auth/key-ring.ts'
import type { SecretBox } from '../../platform/auth/secret-box.ts'
import { clockToleranceSec } from '../../platform/auth/key-ring.ts'
import { hashPassword, verifyPassword } from '../../platform/auth/passwords.ts'
import type { Config } from '../../platform/config.ts'
import { withTenant, withoutTenant } from '../../platform/db/tenant.ts'
import type { TenantTx } from '../../platform/db/tenant.ts'
import { AppError } from '../../platform/errors.ts'
import type { RateLimiter } from '../../platform/ratelimit/limiter.ts'
import { authErrors } from './auth.errors.ts'
import { secondFactor } from './auth.mfa.service.ts'
import * as repo from './auth.repo.ts'
import type { JwksResult, LoginInput, LogoutInput, RefreshInput, SignupInput, SignupResult, TokenPair } from './auth.schemas.ts'
import { mintRefreshToken, parseRefreshToken } from './refresh-tokens.ts'

export interface AuthDeps {
  readonly sql: Sql
  readonly tokens: AccessTokens
  readonly limiter: Pick<RateLimiter, 'cacheRevocation'>
  readonly config: Pick<Config, 'refreshTtlSec' | 'refreshReuseGraceSec' | 'jwt'>
  /** Opens TOTP secrets at login. */
  readonly box: SecretBox
}

/**
 * How long after issue an access token may still verify: its lifetime, the verification leeway,
 * and a minute for clock skew between this process (which sets exp) and PostgreSQL (created_at).
 */
const accessWindowSec = (d: AuthDeps) => d.config.jwt.accessTtlSec + clockToleranceSec + 60

interface Subject {
  userId: string
  role: Role
  amr: readonly AuthMethod[]
}

/** Signs an access token and stores its refresh partner (hash only) in the same transaction. */
async function issuePair(d: AuthDeps, t: TenantTx, s: Subject, lineage: { familyId: string; parentId: string | null }): Promise<TokenPair> {
  const access = await d.tokens.issue({ userId: s.userId, tenantId: t.tenantId, role: s.role, amr: s.amr })
  const refresh = mintRefreshToken(t.tenantId)
  await repo.insertRefreshToken(t, {
    id: uuidv7(),
    ...lineage,
    userId: s.userId,
    hash: refresh.hash,
    amr: s.amr,
    ttlSec: d.config.refreshTtlSec,
    accessJti: access.jti,
  })
  return { access_token: access.token, token_type: 'Bearer', expires_in: access.expiresIn, refresh_token: refresh.token }
}

/** Creates a tenant and its owner in one transaction and logs the owner in. */
export async function signup(d: AuthDeps, input: SignupInput): Promise<SignupResult> {
  const passwordHash = await hashPassword(input.password)
  const tenantId = uuidv7()
  try {
    return await withTenant(d.sql, { tenantId, isNewTenant: true }, async (t) => {
      const tenant = await repo.insertTenant(t, { slug: input.tenant_slug, name: input.tenant_name })
      const user = await repo.insertUser(t, { id: uuidv7(), email: input.email, passwordHash, role: 'owner' })
      const pair = await issuePair(d, t, { userId: user.id, role: 'owner', amr: ['pwd'] }, { familyId: uuidv7(), parentId: null })
      return { tenant, user: { id: user.id, email: user.email, role: 'owner' as const }, ...pair }
    })
  } catch (err) {
    if (err instanceof postgres.PostgresError && err.code === '23505' && err.constraint_name === 'tenants_slug_key') throw authErrors.slugTaken()
    throw err
  }
}

/**
 * Password login. Every failure (unknown tenant, unknown email, wrong password, disabled user,
 * suspended tenant) is the same 401 and costs one password verification, so neither the answer
 * nor its timing tells them apart. Only then, inside the user's tenant transaction (the login
 * lookup function stays narrow: no TOTP column leaves it), a TOTP user's code is checked and used
 * up: mfa_required can only reach someone who knows the password.
 */
export async function login(d: AuthDeps, input: LoginInput): Promise<TokenPair> {
  const row = await withoutTenant(d.sql, (tx) => repo.loginLookup(tx, input.tenant_slug, input.email))
  const isPasswordOk = await verifyPassword(row?.password_hash ?? undefined, input.password)
  if (!isPasswordOk || !row?.user_id || !row.role || row.disabled !== false || row.tenant_status !== 'active') throw authErrors.invalidCredentials()
  const { user_id: userId, role } = row
  try {
    return await withTenant(d.sql, { tenantId: row.tenant_id, userId }, async (t) => {
      const amr = await secondFactor(d, t, userId, input.otp)
      return issuePair(d, t, { userId, role, amr }, { familyId: uuidv7(), parentId: null })
    })
  } catch (err) {
    // Disabled or suspended in the instant since the lookup: still the one login failure.
    if (err instanceof AppError && err.statusCode < 500 && err.code !== 'mfa_required') throw authErrors.invalidCredentials()
    throw err
  }
}

type Rotation = { kind: 'ok'; pair: TokenPair } | { kind: 'invalid'; revoked: repo.Revocation[] } | { kind: 'reused'; revoked: repo.Revocation[] }

const amrOf = (amr: string[]): AuthMethod[] => amr.filter((m): m is AuthMethod => m === 'pwd' || m === 'otp')

/**
 * One rotation inside the tenant transaction. Decisions that revoke a family are returned, not
 * thrown, so that the revocation commits before the client hears 401.
 */
async function rotate(d: AuthDeps, t: TenantTx, hash: Buffer): Promise<Rotation> {
  const grace = d.config.refreshReuseGraceSec
  const row = await repo.findRefreshForUpdate(t, hash, grace)
  if (!row || row.is_revoked || row.is_expired) return { kind: 'invalid', revoked: [] }
  // A retry is only a retry if the token this rotation issued was never used; otherwise it is theft.
  const isRetry = row.is_spent && grace > 0 && row.is_in_grace && (await repo.hasLiveChild(t, row.id))
  if (row.is_spent && !isRetry) return { kind: 'reused', revoked: await repo.revokeLogins(t, { familyId: row.family_id }, accessWindowSec(d)) }
  const user = await repo.findUserState(t, row.user_id)
  if (!user || user.disabled) return { kind: 'invalid', revoked: await repo.revokeLogins(t, { familyId: row.family_id }, accessWindowSec(d)) }
  if (isRetry) await repo.spendChildren(t, row.id)
  else await repo.spendToken(t, row.id)
  // The new access token carries the login's amr and the user's role as it is now.
  const pair = await issuePair(d, t, { userId: row.user_id, role: user.role, amr: amrOf(row.amr) }, { familyId: row.family_id, parentId: row.id })
  return { kind: 'ok', pair }
}

async function cacheRevocations(d: AuthDeps, revoked: readonly repo.Revocation[]): Promise<void> {
  await Promise.all(revoked.map((r) => d.limiter.cacheRevocation(r.jti, Math.ceil(r.expires_at.getTime() / 1000))))
}

/**
 * Exchanges a refresh token for a new pair; the presented one is spent. A spent token presented
 * again ends the whole login (refresh_token_reused), unless it comes within
 * REFRESH_REUSE_GRACE_SECONDS of its rotation and the token that rotation issued is still unused:
 * then the client lost the answer, so that unused token is spent in turn and a fresh pair of the
 * same login is issued.
 */
export async function refresh(d: AuthDeps, input: RefreshInput): Promise<TokenPair> {
  const parsed = parseRefreshToken(input.refresh_token)
  if (!parsed) throw authErrors.invalidRefreshToken()
  let outcome: Rotation
  try {
    outcome = await withTenant(d.sql, { tenantId: parsed.tenantId }, (t) => rotate(d, t, parsed.hash))
  } catch (err) {
    // No such tenant, or a suspended one: the same 401 as an unknown token, so that a forged
    // tenant part cannot tell which tenants exist or are suspended (login hides it the same way).
    if (err instanceof AppError && (err.code === 'invalid_token' || err.code === 'tenant_suspended')) throw authErrors.invalidRefreshToken()
    throw err
  }
  if (outcome.kind === 'ok') return outcome.pair
  await cacheRevocations(d, outcome.revoked)
  throw outcome.kind === 'reused' ? authErrors.refreshTokenReused() : authErrors.invalidRefreshToken()
}

/**
 * Ends the caller's login: the presented access token is revoked (until it would have expired,
 * leeway included), and so is the login it came from (found by its jti: every refresh token and
 * every still-valid access token of that family). A refresh_token in the body ends its login too,
 * if it is the caller's own; anyone else's, or a malformed one, is ignored, so logout is no oracle.
 */
export async function logout(d: AuthDeps, actor: UserPrincipal, input: LogoutInput): Promise<void> {
  const given = input.refresh_token ? parseRefreshToken(input.refresh_token) : undefined
  const revoked = await withTenant(d.sql, { tenantId: actor.tid, userId: actor.sub, jti: actor.jti }, async (t) => {
    const out = await repo.revokeAccessToken(t, actor.jti, actor.exp + clockToleranceSec)
    const families = new Set<string>()
    const ownFamily = await repo.findFamilyByAccessJti(t, actor.jti)
    if (ownFamily) families.add(ownFamily)
    if (given && given.tenantId === t.tenantId) {
      const owner = await repo.findRefreshOwner(t, given.hash)
      if (owner && owner.user_id === actor.sub) families.add(owner.family_id)
    }
    for (const family of families) out.push(...(await repo.revokeLogins(t, { familyId: family }, accessWindowSec(d))))
    return out
  })
  await cacheRevocations(d, revoked)
}

/** The JWKS: every public key that can verify a token now (none with HS256), each with its kid. */
export function publicKeys(ring: Pick<KeyRing, 'jwks'>): JwksResult {
  const keys = ring.jwks().keys.flatMap(({ kty, crv, x, y, n, e, kid, alg, use }) => (kty && kid ? [{ kty, crv, x, y, n, e, kid, alg, use }] : []))
  return { keys }
}
