import type { Sql } from 'postgres'
import type { UserPrincipal } from '../../platform/access.ts'
import type { AuthMethod } from '../../platform/auth/access-tokens.ts'
import { clockToleranceSec } from '../../platform/auth/key-ring.ts'
import type { SecretBox } from '../../platform/auth/secret-box.ts'
import { matchTotp, newTotpSecret, totpUri } from '../../platform/auth/totp.ts'
import type { Config } from '../../platform/config.ts'
import { recordAudit } from '../../platform/audit.ts'
import { withTenant } from '../../platform/db/tenant.ts'
import type { TenantTx } from '../../platform/db/tenant.ts'
import type { RateLimiter } from '../../platform/ratelimit/limiter.ts'
import { authErrors } from './auth.errors.ts'
import * as repo from './auth.mfa.repo.ts'
import { revokeAccessToken, revokeLogins } from './auth.repo.ts'
import type { Revocation } from './auth.repo.ts'
import type { ConfirmTotpInput, TotpEnrolment } from './auth.schemas.ts'

export interface MfaDeps {
  readonly sql: Sql
  readonly box: SecretBox
  readonly limiter: Pick<RateLimiter, 'cacheRevocation'>
  readonly config: Pick<Config, 'jwt'>
}

/** Authenticated data: a sealed secret opens only in its own user's row. */
const sealContext = (tenantId: string, userId: string) => `totp:${tenantId}:${userId}`

function openSecret(box: SecretBox, sealed: string, kekId: string | null, t: TenantTx, userId: string): string {
  // A secret sealed under another key-encryption key cannot be opened: say which, never guess.
  if (kekId !== box.keyId) throw new Error(`TOTP secret of user ${userId} is sealed with key ${kekId ?? 'none'}, not the configured ${box.keyId}`)
  return box.open(sealed, sealContext(t.tenantId, userId)).toString('utf8')
}

/** The issuer shown in authenticator apps: the service's host name. */
function issuerName(config: Pick<Config, 'jwt'>): string {
  try {
    return new URL(config.jwt.issuer).host || 'saas-api'
  } catch {
    return 'saas-api'
  }
}

/**
 * Starts an enrolment: a new secret, stored sealed as PENDING (MFA is not on until a code from it
 * is confirmed). The secret is returned here once and never again. When TOTP is already on, only
 * a login that used the current code (amr has otp) may start a new enrolment, and the active
 * secret stays in force until the new one is confirmed.
 */
export async function enrolTotp(d: MfaDeps, actor: UserPrincipal): Promise<TotpEnrolment> {
  const secret = newTotpSecret()
  return withTenant(d.sql, { tenantId: actor.tid, userId: actor.sub, jti: actor.jti }, async (t) => {
    const state = await repo.lockTotpState(t, actor.sub)
    // withTenant has just checked that the user exists and is enabled.
    if (!state) throw new Error('user row vanished inside its own transaction')
    if (state.totp_enabled && !actor.amr.includes('otp')) throw authErrors.reenrolNeedsOtp()
    await repo.savePending(t, actor.sub, d.box.seal(secret, sealContext(t.tenantId, actor.sub)), d.box.keyId)
    // Enrolment is what a thief with a password would do first: leave a trace admins can see.
    await recordAudit(t, actor, 'auth.mfa_enrolment_started', { type: 'user', id: actor.sub }, undefined, { amr: [...actor.amr], replacing: state.totp_enabled })
    return { secret, otpauth_url: totpUri({ issuer: issuerName(d.config), account: `${state.email} (${state.tenant_slug})`, secret }) }
  })
}

/**
 * Confirms the pending enrolment with a code from it: TOTP is on from now, and every login of this
 * user made without a code ends (the caller's included), so a session opened with a stolen
 * password before MFA was switched on does not outlive it. A wrong code changes nothing.
 */
export async function confirmTotp(d: MfaDeps, actor: UserPrincipal, input: ConfirmTotpInput): Promise<void> {
  const accessWindowSec = d.config.jwt.accessTtlSec + clockToleranceSec + 60
  const revoked = await withTenant(d.sql, { tenantId: actor.tid, userId: actor.sub, jti: actor.jti }, async (t) => {
    const state = await repo.lockTotpState(t, actor.sub)
    if (!state?.totp_pending_enc) throw authErrors.noPendingEnrolment()
    const secret = openSecret(d.box, state.totp_pending_enc, state.totp_pending_kek_id, t, actor.sub)
    // No code of a pending secret was ever accepted, so there is no earlier step to refuse
    // (the row lock makes a second confirmation find no pending secret: 409).
    const step = await matchTotp(secret, input.otp, null)
    if (step === undefined) throw authErrors.invalidOtp()
    await repo.activatePending(t, actor.sub, step)
    await recordAudit(t, actor, 'auth.mfa_enabled', { type: 'user', id: actor.sub }, undefined, { amr: [...actor.amr] })
    const out: Revocation[] = await revokeLogins(t, { userId: actor.sub, withoutOtp: true }, accessWindowSec)
    if (!actor.amr.includes('otp')) out.push(...(await revokeAccessToken(t, actor.jti, actor.exp + clockToleranceSec)))
    return out
  })
  await Promise.all(revoked.map((r) => d.limiter.cacheRevocation(r.jti, Math.ceil(r.expires_at.getTime() / 1000))))
}

/**
 * The second factor of a login, inside the login's tenant transaction and only after the password
 * was verified. No TOTP: the login is password-only (an otp sent anyway is ignored, so it reveals
 * nothing). TOTP on: the code must match a step later than the last one accepted, and that step is
 * then used up; no code, a wrong code or a replayed one is 401 mfa_required.
 */
export async function secondFactor(d: Pick<MfaDeps, 'box'>, t: TenantTx, userId: string, otp: string | undefined): Promise<AuthMethod[]> {
  const state = await repo.lockTotpState(t, userId)
  if (!state?.totp_enabled) return ['pwd']
  if (otp === undefined || !state.totp_secret_enc) throw authErrors.mfaRequired()
  const secret = openSecret(d.box, state.totp_secret_enc, state.totp_secret_kek_id, t, userId)
  const step = await matchTotp(secret, otp, state.last_step)
  if (step === undefined || !(await repo.acceptStep(t, userId, step))) throw authErrors.mfaRequired()
  return ['pwd', 'otp']
}
