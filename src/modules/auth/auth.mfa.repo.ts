import type { TenantTx } from '../../platform/db/tenant.ts'

export interface TotpState {
  email: string
  tenant_slug: string
  totp_enabled: boolean
  totp_secret_enc: string | null
  totp_secret_kek_id: string | null
  totp_pending_enc: string | null
  totp_pending_kek_id: string | null
  /** Last accepted 30 s step; null before the first code. */
  last_step: number | null
}

/**
 * The user's TOTP state, row locked until the transaction ends: two requests presenting the same
 * code are serialised, and the second sees the step the first accepted.
 */
export async function lockTotpState(t: TenantTx, userId: string): Promise<TotpState | undefined> {
  const [row] = await t.sql<(Omit<TotpState, 'last_step'> & { last_step: string | null })[]>`
    select u.email, tn.slug as tenant_slug, u.totp_enabled, u.totp_secret_enc, u.totp_secret_kek_id,
           u.totp_pending_enc, u.totp_pending_kek_id, u.totp_last_step as last_step
      from users u join tenants tn on tn.id = u.tenant_id
     where u.tenant_id = ${t.tenantId} and u.id = ${userId}
       for update of u`
  // bigint arrives as a string; steps (~6e7 today) are far inside Number's exact range.
  return row && { ...row, last_step: row.last_step === null ? null : Number(row.last_step) }
}

/** Stores a new enrolment; the active secret (if any) stays in force until this one is confirmed. */
export async function savePending(t: TenantTx, userId: string, sealed: string, kekId: string): Promise<void> {
  await t.sql`
    update users set totp_pending_enc = ${sealed}, totp_pending_kek_id = ${kekId}
     where tenant_id = ${t.tenantId} and id = ${userId}`
}

/**
 * The pending secret becomes the active one, and the confirming code's step counts as used: that
 * code cannot log in afterwards. (The previous secret's last step does not apply to a new secret.)
 */
export async function activatePending(t: TenantTx, userId: string, step: number): Promise<void> {
  await t.sql`
    update users
       set totp_secret_enc = totp_pending_enc, totp_secret_kek_id = totp_pending_kek_id,
           totp_pending_enc = null, totp_pending_kek_id = null,
           totp_enabled = true, totp_last_step = ${step}, updated_at = now()
     where tenant_id = ${t.tenantId} and id = ${userId} and totp_pending_enc is not null`
}

/** Marks a step used; false when it (or a later one) already was, i.e. a replay. */
export async function acceptStep(t: TenantTx, userId: string, step: number): Promise<boolean> {
  const rows = await t.sql`
    update users set totp_last_step = ${step}
     where tenant_id = ${t.tenantId} and id = ${userId} and totp_enabled
       and (totp_last_step is null or totp_last_step < ${step})
    returning id`
  return rows.length === 1
}

